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
    add_job_module_paths,
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
