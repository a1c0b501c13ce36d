"""The package as a user gets it: `python -m build` makes the sdist and, from it, the wheel; a
fresh venv (outside the checkout) installs the wheel with both extras; there, with nothing of
the checkout on sys.path, no Docker and no AWS credentials:

- every module of the four packages imports from site-packages, migrations and all;
- a five-line app synthesizes with the user's VPC as the only VPC, and with one of its own;
- `examples/my-app`, copied to a folder of its own, synthesizes with its job types shipped
  and cdk-nag clean;
- `taskmill-local` (what `make run` starts) runs a job, and the `taskmill` CLI answers.

`slow` (`make test-slow`): installing aws-cdk-lib and moto into a fresh venv takes about a
minute even from pip's cache, and each app synthesis starts jsii again. The tests share one
venv, made once per test session: under a file lock, so parallel workers wait for it rather
than building in the same source tree at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, stack_env, wait_until_healthy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Installed:
    venv: Path
    wheel: Path
    home: Path  # a directory outside the checkout to run things from

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def clean_env(self) -> dict[str, str]:
        """No AWS credentials or profile, no Docker, nothing of the checkout on the path:
        only PATH (node, for jsii), HOME (pip's cache, for the dependency layer) and the
        jsii banner switch."""
        return {
            "PATH": os.pathsep.join(
                [str(self.venv / "bin"), str(Path(shutil.which("node") or "/usr/bin/node").parent)]
            ),
            "HOME": os.environ.get("HOME", str(self.home)),
            "AWS_CONFIG_FILE": str(self.home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "no-aws-credentials"),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }

    def run(self, *args: str, cwd: Path, timeout: float = 600) -> str:
        # Our own interpreter and arguments, no shell.
        result = subprocess.run(
            [self.python, *args],
            cwd=cwd,
            env=self.clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        return result.stdout


def _timed(arguments: list[str]) -> float:
    start = time.monotonic()
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, (arguments, (result.stdout + result.stderr)[-4000:])
    return time.monotonic() - start


def _build_and_install(base: Path) -> Installed:
    dist, venv, home = base / "dist", base / "venv", base / "home"
    home.mkdir(parents=True, exist_ok=True)
    build = _timed([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
    [wheel] = dist.glob("taskmill-*.whl")
    [sdist] = dist.glob("taskmill-*.tar.gz")
    _timed([sys.executable, "-m", "venv", str(venv)])
    # The dev venv's pins (constraints.txt) let pip take every wheel from its cache.
    install = _timed(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{wheel}[cdk,local]",
            "-c",
            str(ROOT / "constraints.txt"),
        ]
    )
    print(
        f"python -m build (sdist, then the wheel from it): {build:.1f} s; "
        f"wheel {wheel.stat().st_size // 1024} KiB, sdist {sdist.stat().st_size // 1024} KiB; "
        f"pip install of the wheel with [cdk,local] into a fresh venv: {install:.1f} s"
    )
    return Installed(venv, wheel, home)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    # One venv per test session: xdist workers share their basetemp's parent.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with (shared / "wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        ready = shared / "wheel" / "ready"
        if not ready.exists():
            _build_and_install(shared / "wheel")
            ready.touch()
    wheel = shared / "wheel"
    [built] = (wheel / "dist").glob("taskmill-*.whl")
    return Installed(wheel / "venv", built, wheel / "home")


IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
from importlib.resources import files
found = {}
for top in ("taskmill", "taskmill_cdk", "taskmill_local", "taskmill_functions"):
    package = importlib.import_module(top)
    names = [top] + [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
    for name in names:
        importlib.import_module(name)
    found[top] = {"file": package.__file__, "modules": names}
migrations = sorted(
    p.name for p in files("taskmill").joinpath("migrations").iterdir() if p.name.endswith(".sql")
)
extras = [str(files(p).joinpath(f)) for p, f in (("taskmill", "py.typed"),
          ("taskmill_cdk", "requirements.txt"), ("taskmill_cdk", "compile_bytecode.mjs"))]
print(json.dumps({"packages": found, "migrations": migrations, "extras": extras,
                  "path": sys.path}))
"""


def test_the_wheel_installs_every_module_of_the_four_packages(installed: Installed) -> None:
    answer = json.loads(installed.run("-c", IMPORT_EVERYTHING, cwd=installed.home))
    site_packages = str(installed.venv / "lib")
    for top, package in answer["packages"].items():
        assert package["file"].startswith(site_packages), top  # not the checkout
    # Each of the checkout's modules is in the wheel (the bug this issue began with: a
    # wheel of the top-level modules only).
    for top, source in (
        ("taskmill", ROOT / "layers" / "taskmill"),
        ("taskmill_cdk", ROOT / "infra" / "taskmill_cdk"),
        ("taskmill_local", ROOT / "local" / "taskmill_local"),
        ("taskmill_functions", ROOT / "functions"),
    ):
        expected = {
            ".".join([top, *path.relative_to(source).with_suffix("").parts]).removesuffix(
                ".__init__"
            )
            for path in source.rglob("*.py")
            if "__pycache__" not in path.parts
        }
        assert expected == set(answer["packages"][top]["modules"]), top
    assert answer["migrations"] == sorted(
        p.name for p in (ROOT / "layers" / "taskmill" / "migrations").glob("*.sql")
    )
    assert all(Path(extra).is_file() for extra in answer["extras"])
    assert not any(entry.startswith(str(ROOT)) for entry in answer["path"])
    shipped = installed.venv.glob("lib/python*/site-packages/taskmill_cdk/requirements.txt")
    assert next(shipped).read_bytes() == (ROOT / "requirements.txt").read_bytes()


FIVE_LINE_APP = """
import sys
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from taskmill_cdk import Taskmill, TaskmillConfig

app = cdk.App(outdir="cdk.out")
stack = cdk.Stack(app, "MyStack")
my_vpc = ec2.Vpc(stack, "MyVpc") if sys.argv[1] == "passed" else None
Taskmill(stack, "Jobs", config=TaskmillConfig(), vpc=my_vpc)
app.synth()
"""


def _template(app_dir: Path, stack: str) -> dict[str, Any]:
    return dict(json.loads((app_dir / "cdk.out" / f"{stack}.template.json").read_text()))


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


@pytest.mark.parametrize("vpc", ["passed", "own"])
def test_a_five_line_app_synthesizes_from_the_installed_wheel(
    installed: Installed, tmp_path: Path, vpc: str
) -> None:
    app_dir = tmp_path / "five-lines"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(FIVE_LINE_APP)
    installed.run("app.py", vpc, cwd=app_dir)
    template = _template(app_dir, "MyStack")
    [vpc_id] = _of_type(template, "AWS::EC2::VPC")
    # The user's VPC (MyVpc...) is the only one; without one, Taskmill's own (Jobs/Network).
    assert vpc_id.startswith("MyVpc" if vpc == "passed" else "JobsNetworkVpc")
    functions = _of_type(template, "AWS::Lambda::Function")
    handlers = {f["Properties"].get("Handler") for f in functions.values()}
    assert {"handler.handler", "authorizer.handler", "sweep.handler"} <= handlers
    # The assets were bundled from the installed package: the handlers, both layers.
    assets = app_dir / "cdk.out"
    assert list(assets.glob("asset.*/handler.py"))
    assert list(assets.glob("asset.*/python/taskmill/migrations/0001_initial.sql"))
    assert list(assets.glob("asset.*/python/pydantic/__init__.py"))


def test_the_example_app_synthesizes_in_a_folder_of_its_own(
    installed: Installed, tmp_path: Path
) -> None:
    app_dir = tmp_path / "my-app"
    shutil.copytree(
        ROOT / "examples" / "my-app", app_dir, ignore=shutil.ignore_patterns("cdk.out", ".venv")
    )
    # The app's own node_modules (here the repository's, from `npm ci`) holds Pyodide: the
    # installed compiler script must load it from there to compile the runtime's bytecode.
    (app_dir / "node_modules").symlink_to(ROOT / "node_modules")
    installed.run("app.py", cwd=app_dir)  # cdk-nag runs in it: a finding fails the synth
    template = _template(app_dir, "MyApp")
    [vpc_id] = _of_type(template, "AWS::EC2::VPC")
    assert vpc_id.startswith("Vpc")  # the app's own
    worker = next(
        f
        for f in _of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == "myapp-jobs-worker"
    )
    assert worker["Properties"]["Environment"]["Variables"]["TASKMILL_JOB_MODULES"] == (
        "my_jobs.invoices"
    )
    # The app's job package travels in the package layer beside taskmill.
    assert list((app_dir / "cdk.out").glob("asset.*/python/my_jobs/invoices.py"))
    compiled = "asset.*/python/my_jobs/__pycache__/invoices.cpython-314.pyc"
    assert list((app_dir / "cdk.out").glob(compiled))
    report = json.loads((app_dir / "cdk.out" / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []


@pytest.fixture
def local_stack(installed: Installed, tmp_path: Path) -> Iterator[str]:
    data_dir = tmp_path / "data"
    env = {**stack_env(data_dir), **installed.clean_env(), "PYTHONPATH": ""}
    env["HOME"] = str(installed.home)
    log_path = tmp_path / "stack.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "taskmill-local")],
            cwd=installed.home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield wait_until_healthy(process, data_dir, log_path)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_taskmill_local_and_the_cli_run_from_the_installed_package(
    installed: Installed, local_stack: str, tmp_path: Path
) -> None:
    http = Http(local_stack)
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, job = http.call("POST", "/v1/jobs", {"type": "sleep", "payload": {"seconds": 0}})
    assert status == 201, job
    assert http.wait_for(job["id"], {"succeeded"})["status"] == "succeeded"
    # The web console's static files travel in the wheel (setup.py copies console/).
    with urllib.request.urlopen(local_stack + "/console/", timeout=10) as page:  # noqa: S310
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"<script" in page.read()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**installed.clean_env(), "TASKMILL_CONFIG_DIR": str(tmp_path / "cli")}
        return subprocess.run(
            [str(installed.venv / "bin" / "taskmill"), "--url", local_stack, *args],
            env=env,
            cwd=installed.home,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert cli("--version").stdout.strip() == "taskmill 0.1.0"
    login = cli("login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert login.returncode == 0, login.stderr
    created = cli("--json", "jobs", "create", "noop", "--watch", "--interval", "0.1")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "succeeded"
