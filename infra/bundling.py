"""Lambda packaging without Docker: CDK local bundling (`ILocalBundling`).

Three kinds of asset:
- the dependency layer: `pip install` of requirements.txt for the Lambda runtime's Python
  and platform (Linux wheels only, none of pip's host bytecode), under `python/`;
- the package layer: `taskmill` (and packages of your own job types beside it in `layers/`)
  copied under `python/`;
- both layers with bytecode for the runtime's Python (`infra.packaging.compile_bytecode`:
  Lambda cannot write `__pycache__`, so a layer without .pyc files is compiled again at every
  cold start; with them, cold starts as deployed take about half the time), when this machine
  can compile for that version (the same interpreter, or Pyodide's from `npm ci`);
- one asset per function directory holding only its handler modules.

What each asset holds is decided in `infra.packaging` (no CDK there, so the cold-start bench
lays out the same directories); this module plugs it into CDK. The bundler objects are not
part of CDK's asset hash, so every input that changes an output
(the pinned requirements, pip's arguments, the runtime) is hashed here instead: a cached
layer is rebuilt exactly when one of them changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import packaging
from infra.packaging import (
    FUNCTIONS_DIR,
    IGNORED,
    LAYERS_DIR,
    REQUIREMENTS,
    RUNTIME_PROVIDED,
    bytecode_description,
    compile_bytecode,
    copy_package_layer,
    layer_packages,
    package_layer_fingerprint,
)
from infra.runtime import PIP_PLATFORM, PYTHON_VERSION

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
    "pip_arguments",
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
    """pip for the Lambda runtime's Python and platform (`infra.runtime`) unless told."""
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
    """Copies each package under `layers/` to `<output>/python/<package>`, minus caches."""

    def __init__(self, layers_dir: Path) -> None:
        self.layers_dir = layers_dir

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        copy_package_layer(self.layers_dir, Path(output_dir) / "python")
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


def package_layer_code(layers_dir: Path = LAYERS_DIR) -> lambda_.Code:
    asset_hash = _hash_inputs(
        package_layer_fingerprint(layers_dir).encode(),
        bytecode_description(PYTHON_VERSION).encode(),
    )
    return lambda_.Code.from_asset(
        str(layers_dir),
        exclude=list(IGNORED),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_NO_DOCKER, local=PackageLayerBundling(layers_dir)),
    )


def function_code(name: str) -> lambda_.Code:
    """One function directory (`functions/<name>`): handler modules only."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=list(IGNORED))
