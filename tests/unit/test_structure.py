"""The package's layering, as the architecture document describes it: checked on the
source, so a change that breaks it fails here rather than in a review."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "taskmill"


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        trees[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return trees


def _imports(tree: ast.Module) -> set[str]:
    """Every module imported anywhere in the file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _unit(module: str) -> str:
    """`taskmill.jobs.store` -> `jobs`; `taskmill.errors` -> `errors`."""
    return module.split(".")[1] if module.count(".") else module


def test_no_import_cycles_between_the_packages_of_taskmill() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in _modules().items():
        for imported in _imports(tree):
            if imported.startswith("taskmill.") and _unit(imported) != _unit(name):
                graph[_unit(name)].add(_unit(imported))
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif len(path) < 20:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def test_the_api_layer_never_touches_botocore() -> None:
    offenders = {
        name
        for name, tree in _modules().items()
        if name.startswith("taskmill.api")
        and any(m.split(".")[0] in ("botocore", "boto3") for m in _imports(tree))
    }
    assert offenders == set()


def test_retry_decisions_are_applied_in_one_module() -> None:
    callers = {
        name
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "decide_retry"
    }
    assert callers == {"taskmill.lifecycle.outcomes"}


def test_importing_the_authorizer_loads_no_database_code() -> None:
    script = (
        "import sys, json\n"
        "import functions.api.authorizer\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert not {m for m in loaded if m.split(".")[0] == "psycopg"}
    assert not {m for m in loaded if m.startswith(("taskmill.api", "taskmill.jobs", "taskmill.db"))}
    assert "taskmill.users.store" not in loaded
