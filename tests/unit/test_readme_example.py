"""The README's workflow example is the module the tests run, word for word."""

from __future__ import annotations

from pathlib import Path

from taskmill.jobtypes.defaults import build_registry
from taskmill.settings import JobTypeSettings

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "tests" / "support" / "fanout_jobs.py"


def test_the_readme_shows_the_fan_out_module_the_tests_run() -> None:
    source = MODULE.read_text()
    code = source[source.index("from pydantic") :]
    assert f"```python\n{code}```\n" in (ROOT / "README.md").read_text()


def test_the_fan_out_module_registers_its_three_types() -> None:
    registry = build_registry(JobTypeSettings(job_modules="tests.support.fanout_jobs"))
    assert {"example.fanout", "example.square", "example.sum"} <= {t.name for t in registry.all()}
