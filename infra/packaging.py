"""What the Lambda assets hold, without CDK: the dependency layer's `pip install`, the
package layer's copy of `layers/`, a function directory's handler modules.

`infra.bundling` plugs these into CDK's local bundling; `bench/bench_cold_start.py` uses the
same functions to lay out what Lambda would see (`/var/task`, `/opt/python`) and time cold
starts from it. Nothing here imports `aws_cdk` (its jsii start-up costs seconds).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
LAYERS_DIR = ROOT / "layers"
FUNCTIONS_DIR = ROOT / "functions"
IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "*.egg-info")

# The Lambda Python runtime ships boto3 and what it depends on. A copy in a layer would come
# first on sys.path and pair the runtime's boto3 with a botocore it was not released with, so
# these distributions are removed when a dependency pulls them in.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python_dateutil",
    "six",
    "urllib3",
)


def pip_arguments(
    requirements: Path, target: Path, *, python_version: str, platform: str
) -> list[str]:
    """pip for another interpreter and platform: Linux wheels only, no bytecode."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # the host's bytecode is useless to another Python version
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--platform",
        platform,
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]


def install_layer(
    target: Path, requirements: Path = REQUIREMENTS, *, python_version: str, platform: str
) -> None:
    """What goes under a dependency layer's `python/`: the pinned requirements' Linux wheels
    minus what the Lambda runtime already ships."""
    arguments = pip_arguments(
        requirements, target, python_version=python_version, platform=platform
    )
    # Arguments are ours (no shell); the requirements file is the repository's pinned list.
    subprocess.run(arguments, check=True)  # noqa: S603
    remove_distributions(target, RUNTIME_PROVIDED)
    shutil.rmtree(target / "bin", ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def remove_distributions(target: Path, names: tuple[str, ...]) -> None:
    """Uninstall distributions from a `pip --target` directory using their RECORD files."""
    for name in names:
        for dist_info in target.glob(f"{name}-*.dist-info"):
            for line in (dist_info / "RECORD").read_text().splitlines():
                path = target / line.split(",", 1)[0]
                if path.is_file():
                    path.unlink()
            shutil.rmtree(dist_info, ignore_errors=True)
    for directory in sorted(target.iterdir()):
        if directory.is_dir() and not any(f.is_file() for f in directory.rglob("*")):
            shutil.rmtree(directory)


def layer_packages(layers_dir: Path = LAYERS_DIR) -> list[Path]:
    """The Python packages under `layers/`: `taskmill`, and any package of your own job
    types placed beside it (named in a job_modules setting)."""
    return sorted(
        path
        for path in layers_dir.iterdir()
        if path.is_dir()
        and (path / "__init__.py").is_file()
        and not path.name.endswith(".egg-info")
    )


def copy_package_layer(layers_dir: Path, target: Path) -> None:
    """Each package under `layers/` to `<target>/<package>`, minus caches."""
    for package in layer_packages(layers_dir):
        shutil.copytree(
            package,
            target / package.name,
            ignore=shutil.ignore_patterns(*IGNORED),
            dirs_exist_ok=True,
        )


def copy_function(function_dir: Path, target: Path) -> None:
    """A function asset: the directory's handler modules, minus caches."""
    shutil.copytree(
        function_dir, target, ignore=shutil.ignore_patterns(*IGNORED), dirs_exist_ok=True
    )


def package_layer_fingerprint(layers_dir: Path = LAYERS_DIR) -> str:
    """A hash of what the package layer ships (migrations included): the migrations resource
    runs again whenever the code deployed with it changes."""
    digest = hashlib.sha256()
    for package in layer_packages(layers_dir):
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(layers_dir)
            ignored = any(fnmatch(part, p) for part in relative.parts for p in IGNORED)
            if path.is_file() and not ignored:
                digest.update(str(relative).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()
