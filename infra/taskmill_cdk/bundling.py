"""Lambda packaging without Docker: CDK local bundling (`ILocalBundling`).

Three kinds of asset:
- the dependency layer: `pip install` of requirements.txt for the Lambda runtime's Python
  and platform (Linux wheels only, none of pip's host bytecode), under `python/`;
- the package layer: `taskmill` and the package of each of your job modules (wherever the
  synth imports them from) copied under `python/`;
- both layers with bytecode for the runtime's Python (`taskmill_cdk.packaging.compile_bytecode`:
  Lambda cannot write `__pycache__`, so a layer without .pyc files is compiled again at every
  cold start; with them, cold starts as deployed take about half the time), when this machine
  can compile for that version (the same interpreter, or Pyodide's from `npm ci`);
- one asset per function directory holding only its handler modules.

What each asset holds is decided in `taskmill_cdk.packaging` (no CDK there, so the cold-start bench
lays out the same directories); this module plugs it into CDK. The bundler objects are not
part of CDK's asset hash, so every input that changes an output
(the pinned requirements, pip's arguments, the runtime) is hashed here instead: a cached
layer is rebuilt exactly when one of them changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from taskmill_cdk import packaging
from taskmill_cdk.packaging import (
    FUNCTIONS_DIR,
    IGNORED,
    LAYERS_DIR,
    REQUIREMENTS,
    RUNTIME_PROVIDED,
    bytecode_description,
    compile_bytecode,
    copy_packages,
    layer_packages,
    package_layer_fingerprint,
    packages_fingerprint,
    shipped_packages,
)
from taskmill_cdk.runtime import PIP_PLATFORM, PYTHON_VERSION

__all__ = [
    "FUNCTIONS_DIR",
    "IGNORED",
    "LAYERS_DIR",
    "REQUIREMENTS",
    "RUNTIME_PROVIDED",
    "PackageLayerBundling",
    "PipLayerBundling",
    "dependency_layer_code",
    "function_code",
    "install_layer",
    "layer_packages",
    "package_layer_code",
    "package_layer_fingerprint",
    "packages_fingerprint",
    "pip_arguments",
    "shipped_packages",
]

# Docker is never used: local bundling always succeeds or raises. CDK still wants an image.
_NO_DOCKER = DockerImage.from_registry("local-bundling-only")


def pip_arguments(
    requirements: Path,
    target: Path,
    *,
    python_version: str = PYTHON_VERSION,
    platform: str = PIP_PLATFORM,
) -> list[str]:
    """pip for the Lambda runtime's Python and platform (`taskmill_cdk.runtime`) unless told."""
    return packaging.pip_arguments(
        requirements, target, python_version=python_version, platform=platform
    )


def install_layer(
    target: Path,
    requirements: Path = REQUIREMENTS,
    *,
    python_version: str = PYTHON_VERSION,
    platform: str = PIP_PLATFORM,
) -> None:
    packaging.install_layer(target, requirements, python_version=python_version, platform=platform)


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    def __init__(self, requirements: Path) -> None:
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        install_layer(Path(output_dir) / "python", self.requirements)
        compile_bytecode(Path(output_dir) / "python", PYTHON_VERSION)
        return True


@jsii.implements(ILocalBundling)
class PackageLayerBundling:
    """Copies each package to `<output>/python/<package>`, minus caches."""

    def __init__(self, packages: Sequence[Path]) -> None:
        self.packages = list(packages)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        copy_packages(self.packages, Path(output_dir) / "python")
        compile_bytecode(Path(output_dir) / "python", PYTHON_VERSION)
        return True


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
        bytecode_description(PYTHON_VERSION).encode(),
    )
    return lambda_.Code.from_asset(
        str(requirements.parent),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_NO_DOCKER, local=PipLayerBundling(requirements)),
    )


def package_layer_code(packages: Sequence[Path]) -> lambda_.Code:
    """`packages`: `shipped_packages(config.job_modules)`, taskmill first."""
    asset_hash = _hash_inputs(
        packages_fingerprint(packages).encode(),
        bytecode_description(PYTHON_VERSION).encode(),
    )
    return lambda_.Code.from_asset(
        str(packages[0].parent),
        exclude=list(IGNORED),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_NO_DOCKER, local=PackageLayerBundling(packages)),
    )


def function_code(name: str) -> lambda_.Code:
    """One function directory (`functions/<name>`): handler modules only."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=list(IGNORED))
