"""The registry a function runs with: built-in types, user modules, declared external types."""

from __future__ import annotations

import json

from taskmill.errors import SettingsError
from taskmill.jobtypes import builtin
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.settings import JobTypeSettings


def build_registry(settings: JobTypeSettings, *, check: bool = False) -> JobTypeRegistry:
    """`check`: also refuse what the registry could not serve (`JobTypeRegistry.check`), as
    the synth and `make run` do once, before any function builds it at its cold start."""
    registry = JobTypeRegistry()
    builtin.register(registry)
    registry.load_modules(settings.job_module_names)
    try:
        declarations = json.loads(settings.external_types)
    except ValueError as exc:
        raise SettingsError("TASKMILL_EXTERNAL_TYPES is not valid JSON") from exc
    if not isinstance(declarations, list):
        raise SettingsError("TASKMILL_EXTERNAL_TYPES must be a JSON list")
    registry.load_external(declarations)
    if check:
        registry.check()
    return registry
