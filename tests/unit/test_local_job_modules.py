"""`TASKMILL_JOB_MODULES` under `make run`: imported from where README's "Adding a job type"
says to put them (in this repository `layers/`, beside `taskmill`, as the package layer ships
them), and checked before anything starts, one line naming the module and what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from taskmill.jobtypes.defaults import build_registry
from taskmill.settings import JobTypeSettings

from taskmill_local.preflight import (
    PreflightError,
    add_job_module_paths,
    check_job_types,
    job_module_paths,
)

ROOT = Path(__file__).resolve().parents[2]


def test_job_modules_are_imported_from_layers_and_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(ROOT))])
    assert job_module_paths(tmp_path) == [ROOT / "layers", tmp_path.resolve()]
    add_job_module_paths(tmp_path)
    add_job_module_paths(tmp_path)  # once each
    assert sys.path.count(str(ROOT / "layers")) == 1
    assert sys.path.count(str(tmp_path.resolve())) == 1


def test_a_module_in_the_current_directory_registers_its_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "hnew_acme_jobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "resize.py").write_text(
        "def register(registry):\n"
        "    @registry.register('image.resize')\n"
        "    def resize(context, payload):\n"
        "        return {}\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    add_job_module_paths()
    registry = build_registry(JobTypeSettings(job_modules="hnew_acme_jobs.resize"))
    assert "image.resize" in registry


def test_a_module_that_cannot_be_imported_is_one_line_saying_where_to_put_it() -> None:
    with pytest.raises(PreflightError) as refused:
        check_job_types({"TASKMILL_JOB_MODULES": "no_such_package.jobs"})
    message = str(refused.value)
    assert "\n" not in message
    assert "TASKMILL_JOB_MODULES='no_such_package.jobs'" in message
    assert "No module named 'no_such_package'" in message
    assert str(ROOT / "layers") in message


def test_a_module_whose_registration_fails_names_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hnew_bad_jobs.py").write_text(
        "def register(registry):\n    registry.register('not a name!')(lambda c, p: None)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PreflightError) as refused:
        check_job_types({"TASKMILL_JOB_MODULES": "hnew_bad_jobs"})
    message = str(refused.value)
    assert "\n" not in message
    assert "ValueError: job type name 'not a name!'" in message
    assert f"({tmp_path / 'hnew_bad_jobs.py'}, line 2)" in message


def test_a_missing_dependency_of_a_module_is_not_taken_for_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hnew_needs_pil.py").write_text("import hnew_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PreflightError) as refused:
        check_job_types({"TASKMILL_JOB_MODULES": "hnew_needs_pil"})
    message = str(refused.value)
    assert "No module named 'hnew_not_installed'" in message
    assert f"({tmp_path / 'hnew_needs_pil.py'}, line 1)" in message
    assert "put its package" not in message


def test_a_bad_external_declaration_is_one_line() -> None:
    with pytest.raises(
        PreflightError, match=r"^TASKMILL_EXTERNAL_TYPES cannot be loaded: .*'name'"
    ):
        check_job_types({"TASKMILL_EXTERNAL_TYPES": '[{"schema": {}}]'})


def test_an_external_schema_that_is_not_a_json_schema_is_one_line() -> None:
    # It was accepted, and every create of the type answered 500 once the stack ran.
    with pytest.raises(
        PreflightError,
        match=r"^TASKMILL_EXTERNAL_TYPES cannot be loaded: external job type 'render': its "
        r"schema is not a valid JSON Schema at type: .*; fix or unset it$",
    ):
        check_job_types(
            {"TASKMILL_EXTERNAL_TYPES": '[{"name": "render", "schema": {"type": "nonsense"}}]'}
        )


def test_a_payload_model_without_a_json_schema_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was accepted, and GET /v1/job-types answered 500 for every type once the stack ran.
    (tmp_path / "hauthor_opaque.py").write_text(
        "from pydantic import BaseModel, ConfigDict\n"
        "class Opaque:\n"
        "    pass\n"
        "class Payload(BaseModel):\n"
        "    model_config = ConfigDict(arbitrary_types_allowed=True)\n"
        "    thing: Opaque | None = None\n"
        "def register(registry):\n"
        "    registry.register('opaque', payload=Payload)(lambda context, payload: None)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        PreflightError,
        match=r"^TASKMILL_JOB_MODULES='hauthor_opaque' cannot be loaded: ValueError: job type "
        r"'opaque': its payload model Payload has no JSON schema",
    ):
        check_job_types({"TASKMILL_JOB_MODULES": "hauthor_opaque"})
