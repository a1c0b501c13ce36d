"""Lambda packaging without Docker: CDK local bundling (`ILocalBundling`).

Three kinds of asset:
- the dependency layer: `pip install` of requirements.txt for the Lambda runtime's Python
  and platform (Linux wheels only, no bytecode), under `python/`;
- the package layer: `taskmill` (and packages of your own job types beside it in `layers/`)
  copied under `python/`;
- one asset per function directory holding only its handler modules.

The bundler objects are not part of CDK's asset hash, so every input that changes an output
(the pinned requirements, pip's arguments, the runtime) is hashed here instead: a cached
layer is rebuilt exactly when one of them changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.runtime import PIP_PLATFORM, PYTHON_VERSION

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
LAYERS_DIR = ROOT / "layers"
FUNCTIONS_DIR = ROOT / "functions"
IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "*.egg-info")

# The Lambda Python runtime ships boto3 and what it depends on. A copy in a layer would come
# first on sys.path and pair the runtime's boto3 with a botocore it was not released with, so
# these distributions are removed when a dependency (aws-xray-sdk -> botocore) pulls them in.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python_dateutil",
    "six",
    "urllib3",
)

# Docker is never used: local bundling always succeeds or raises. CDK still wants an image.
_NO_DOCKER = DockerImage.from_registry("local-bundling-only")


def pip_arguments(
    requirements: Path,
    target: Path,
    *,
    python_version: str = PYTHON_VERSION,
    platform: str = PIP_PLATFORM,
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


def install_layer(target: Path, requirements: Path = REQUIREMENTS, **pip_options: str) -> None:
    """What goes under a dependency layer's `python/`: the pinned requirements' Linux wheels
    minus what the Lambda runtime already ships."""
    # Arguments are ours (no shell); the requirements file is the repository's pinned list.
    subprocess.run(pip_arguments(requirements, target, **pip_options), check=True)  # noqa: S603
    remove_distributions(target, RUNTIME_PROVIDED)
    shutil.rmtree(target / "bin", ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    def __init__(self, requirements: Path) -> None:
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        install_layer(Path(output_dir) / "python", self.requirements)
        return True


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


@jsii.implements(ILocalBundling)
class PackageLayerBundling:
    """Copies each package under `layers/` to `<output>/python/<package>`, minus caches."""

    def __init__(self, layers_dir: Path) -> None:
        self.layers_dir = layers_dir

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        for package in layer_packages(self.layers_dir):
            shutil.copytree(
                package,
                Path(output_dir) / "python" / package.name,
                ignore=shutil.ignore_patterns(*IGNORED),
                dirs_exist_ok=True,
            )
        return True


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


def _hash_inputs(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def dependency_layer_code(requirements: Path = REQUIREMENTS) -> lambda_.Code:
    asset_hash = _hash_inputs(
        requirements.read_bytes(),
        " ".join(pip_arguments(Path("requirements.txt"), Path("python"))[3:]).encode(),
        " ".join(RUNTIME_PROVIDED).encode(),
    )
    return lambda_.Code.from_asset(
        str(requirements.parent),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_NO_DOCKER, local=PipLayerBundling(requirements)),
    )


def package_layer_code(layers_dir: Path = LAYERS_DIR) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(layers_dir),
        exclude=list(IGNORED),
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(image=_NO_DOCKER, local=PackageLayerBundling(layers_dir)),
    )


def function_code(name: str) -> lambda_.Code:
    """One function directory (`functions/<name>`): handler modules only."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=list(IGNORED))
