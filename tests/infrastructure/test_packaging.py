"""Docker-less packaging: the dependency layer's wheels, the package layer, the function
assets, and a proof that each handler imports from exactly what is deployed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import RUNTIME_PROVIDED, install_layer, pip_arguments
from infra.runtime import PYTHON_VERSION
from tests.infrastructure.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]


def asset_dirs(synthesized: Synthesized) -> dict[str, Path]:
    """Layer/function logical id -> its asset directory in the cloud assembly (the asset
    metadata the app writes, as the CDK CLI does)."""
    return {
        logical: synthesized.outdir / resource["Metadata"]["aws:asset:path"]
        for logical, resource in synthesized.resources.items()
        if "aws:asset:path" in resource.get("Metadata", {})
    }


@pytest.fixture(scope="module")
def assets(dev: Synthesized) -> dict[str, Path]:
    stack = dev.stack
    dirs = asset_dirs(dev)
    return {
        "dependencies": dirs[dev.logical_id(stack.functions.layers.dependencies)],
        "package": dirs[dev.logical_id(stack.functions.layers.package)],
        "api": dirs[dev.logical_id(stack.api.function)],
        "worker": dirs[dev.logical_id(stack.workers.function)],
        "retry": dirs[dev.logical_id(stack.recovery.sweep_function)],
        "migrations": dirs[dev.logical_id(stack.database.migrations_function)],
    }


def wheel_tags(layer: Path, distribution: str) -> list[str]:
    [dist_info] = (layer / "python").glob(f"{distribution}-*.dist-info")
    return [
        line.split(": ", 1)[1]
        for line in (dist_info / "WHEEL").read_text().splitlines()
        if line.startswith("Tag: ")
    ]


@pytest.mark.parametrize(
    ("distribution", "module", "extension"),
    [
        ("psycopg_binary", "psycopg_binary", "_psycopg"),
        ("pydantic_core", "pydantic_core", "_pydantic_core"),
    ],
)
def test_dependency_layer_has_linux_x86_64_wheels_for_the_runtime_python(
    assets: dict[str, Path], distribution: str, module: str, extension: str
) -> None:
    layer = assets["dependencies"]
    tags = wheel_tags(layer, distribution)
    assert tags
    assert all(t.startswith("cp314-cp314-manylinux") for t in tags), tags
    assert all(t.endswith("x86_64") for t in tags)
    assert (layer / "python" / module / f"{extension}.cpython-314-x86_64-linux-gnu.so").is_file()


def runtime_bytecode_only(tree: Path) -> None:
    """Bytecode for the runtime's Python beside the sources (Lambda cannot write it), and
    none for any other Python (this machine's would be dead weight)."""
    tag = f"cpython-{PYTHON_VERSION.replace('.', '')}"
    compiled = list(tree.rglob("*.pyc"))
    assert compiled, f"no bytecode under {tree}"
    assert all(f".{tag}." in p.name for p in compiled), [p.name for p in compiled[:3]]
    for source in tree.rglob("*.py"):
        if source.parent.name != "__pycache__":
            assert (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").is_file(), source


def test_dependency_layer_leaves_out_the_runtime_sdk_and_ships_runtime_bytecode(
    assets: dict[str, Path],
) -> None:
    layer = assets["dependencies"] / "python"
    for name in RUNTIME_PROVIDED:
        assert not list(layer.glob(f"{name}-*.dist-info")), name
    assert not (layer / "botocore").exists()
    runtime_bytecode_only(layer / "pydantic")
    runtime_bytecode_only(layer / "psycopg")
    # Tracing is Lambda's active tracing: the X-Ray SDK (and its cold start) is not shipped.
    assert not (layer / "aws_xray_sdk").exists()
    for required in (
        "aws_lambda_powertools",
        "pydantic",
        "psycopg",
        "jwt",
        "argon2",
        "cronsim",
        "tzdata",
    ):
        assert (layer / required).is_dir(), required


def test_dependency_layer_has_argon2_for_the_runtime_python(assets: dict[str, Path]) -> None:
    """argon2's bindings are one abi3 wheel for every Python 3; the cffi they load at run
    time must be the runtime Python's own build."""
    layer = assets["dependencies"]
    tags = wheel_tags(layer, "argon2_cffi_bindings")
    assert tags
    assert all("-abi3-manylinux" in t and t.endswith("x86_64") for t in tags), tags
    assert all(t.startswith("cp314-cp314-manylinux") for t in wheel_tags(layer, "cffi"))
    assert (layer / "python" / "_cffi_backend.cpython-314-x86_64-linux-gnu.so").is_file()


def test_package_layer_and_function_assets_hold_only_their_code(assets: dict[str, Path]) -> None:
    package = assets["package"]
    assert sorted(p.name for p in package.iterdir()) == ["python"]
    assert (package / "python" / "taskmill" / "__init__.py").is_file()
    assert list((package / "python" / "taskmill" / "migrations").glob("0001_*.sql"))
    runtime_bytecode_only(package / "python")
    expected = {
        "api": {"__init__.py", "authorizer.py", "handler.py"},
        "worker": {"__init__.py", "handler.py"},
        "retry": {"__init__.py", "sweep.py", "redrive.py", "ecs_events.py"},
        "migrations": {"__init__.py", "handler.py"},
    }
    for name, files in expected.items():
        assert {p.name for p in assets[name].iterdir()} == files, name
        assert not list(assets[name].rglob("__pycache__")), name


def test_layer_hash_changes_with_the_pinned_requirements(tmp_path: Path) -> None:
    from infra.bundling import dependency_layer_code

    def asset_hash(requirements: Path) -> Any:
        import aws_cdk as cdk
        from aws_cdk import aws_lambda as lambda_

        stack = cdk.Stack(cdk.App(context={"aws:cdk:bundling-stacks": []}), "probe")
        layer = lambda_.LayerVersion(stack, "L", code=dependency_layer_code(requirements))
        child = layer.node.default_child
        return stack.resolve(child.content)  # type: ignore[union-attr]

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==2.14.3\n")
    first = asset_hash(requirements)
    assert asset_hash(requirements) == first
    requirements.write_text("pydantic==2.14.2\n")
    assert asset_hash(requirements) != first


HANDLERS = {
    "api": ["handler", "authorizer"],
    "worker": ["handler"],
    "retry": ["sweep", "redrive", "ecs_events"],
    "migrations": ["handler"],
}


def test_every_handler_imports_from_the_deployed_layout_alone(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """The same requirements.txt installed for this Python (the layer's wheels are for the
    runtime's), the package layer and each function asset as they were bundled, plus only
    what the Lambda runtime ships (boto3): each handler module must import and expose
    `handler`. A dependency missing from requirements.txt fails here."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    deps = tmp_path / "deps"
    install_layer(deps, python_version=version)
    runtime = tmp_path / "runtime"
    boto3_pin = next(
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("boto3==")
    )
    runtime_requirements = tmp_path / "runtime.txt"
    runtime_requirements.write_text(boto3_pin + "\n")
    subprocess.run(pip_arguments(runtime_requirements, runtime, python_version=version), check=True)
    for asset, modules in HANDLERS.items():
        path = [str(assets[asset]), str(assets["package"] / "python"), str(deps), str(runtime)]
        script = (
            "import sys, json; sys.path[:0] = json.loads(sys.argv[1]);\n"
            "import importlib\n"
            "for name in json.loads(sys.argv[2]):\n"
            "    module = importlib.import_module(name)\n"
            "    assert callable(module.handler), name\n"
            "import taskmill\n"
            "assert taskmill.__file__.startswith(sys.path[1]), taskmill.__file__\n"
            # argon2 is imported when a password is first hashed, not with the handler.
            "from taskmill.auth.passwords import Argon2Params, Passwords\n"
            "assert Passwords(Argon2Params(1, 8, 1)).hash('0123456789').startswith('$argon2id')\n"
            # Schedule time zones from the layer's tzdata alone: no system zoneinfo directory.
            "import zoneinfo; zoneinfo.reset_tzpath(to=[])\n"
            "from datetime import UTC, datetime\n"
            "from taskmill.schedules.cron import CronExpression\n"
            "cron = CronExpression.parse('30 2 * * *', 'America/New_York')\n"
            "fire = cron.next_after(datetime(2026, 3, 7, 12, tzinfo=UTC))\n"
            "assert fire == datetime(2026, 3, 8, 7, tzinfo=UTC), fire\n"
        )
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", script, json.dumps(path), json.dumps(modules)],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
        )
        assert result.returncode == 0, f"{asset}: {result.stderr}"
