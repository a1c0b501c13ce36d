"""What the Lambda assets hold, without CDK: the dependency layer's `pip install`, the
package layer's copy of `layers/`, a function directory's handler modules.

`infra.bundling` plugs these into CDK's local bundling; `bench/bench_cold_start.py` uses the
same functions to lay out what Lambda would see (`/var/task`, `/opt/python`) and time cold
starts from it. Nothing here imports `aws_cdk` (its jsii start-up costs seconds).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
LAYERS_DIR = ROOT / "layers"
FUNCTIONS_DIR = ROOT / "functions"
NODE_MODULES = ROOT / "node_modules"
PYODIDE_COMPILER = ROOT / "infra" / "compile_bytecode.mjs"
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


@dataclass(frozen=True)
class BytecodeCompiler:
    """Something that compiles bytecode the runtime's Python will load: an interpreter of
    exactly that version (this one, or `python<X.Y>` on PATH), or Pyodide's CPython of that
    version run by Node (`npm ci` installs it; CDK needs Node anyway)."""

    description: str  # part of the asset hashes: a different compiler, a different asset
    command: tuple[str, ...]  # the directory (and for Pyodide the version) are appended
    pyodide: bool = False

    def compile(self, directory: Path, python_version: str) -> None:
        arguments = [*self.command, str(directory)]
        if self.pyodide:
            arguments.append(python_version)
        # Our own arguments (no shell): an interpreter or node, and a directory we built.
        subprocess.run(arguments, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        tag = f"cpython-{python_version.replace('.', '')}"
        foreign = [p for p in directory.rglob("*.pyc") if f".{tag}." not in p.name]
        if foreign:
            raise RuntimeError(f"bytecode for another Python than {python_version}: {foreign[:3]}")


def _is_version(interpreter: str, python_version: str) -> bool:
    """Whether `interpreter` runs and is that version (a pyenv shim may be neither)."""
    probe = "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"
    try:
        # The interpreter found on PATH under the version's own name; no shell.
        answer = subprocess.run(  # noqa: S603
            [interpreter, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answer.returncode == 0 and answer.stdout.strip() == python_version


def _compileall(interpreter: str) -> tuple[str, ...]:
    return (interpreter, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")


def bytecode_compiler(
    python_version: str, *, node_modules: Path = NODE_MODULES
) -> BytecodeCompiler | None:
    """The compiler for `python_version`'s bytecode this machine has, or None (the assets
    then ship sources only, and every cold start compiles them)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return BytecodeCompiler(f"CPython {python_version}", _compileall(sys.executable))
    interpreter = shutil.which(f"python{python_version}")
    if interpreter and _is_version(interpreter, python_version):
        return BytecodeCompiler(f"CPython {python_version}", _compileall(interpreter))
    node = shutil.which("node")
    manifest = node_modules / "pyodide" / "package.json"
    if node and manifest.is_file():
        version = str(json.loads(manifest.read_text())["version"])
        # Pyodide numbers its releases after the CPython they carry: 314.x is Python 3.14.
        if version.split(".")[0] == python_version.replace(".", ""):
            return BytecodeCompiler(
                f"Pyodide {version} (CPython {python_version})",
                (node, str(PYODIDE_COMPILER)),
                pyodide=True,
            )
    return None


def compile_bytecode(directory: Path, python_version: str) -> str:
    """Bytecode beside every source under `directory` if a compiler for `python_version`
    exists here; returns what compiled it, or "none"."""
    compiler = bytecode_compiler(python_version)
    if compiler is None:
        print(
            f"warning: no compiler for Python {python_version} bytecode (run `npm ci` for "
            "Pyodide): the assets ship sources only, and cold starts compile them",
            file=sys.stderr,
        )
        return "none"
    compiler.compile(directory, python_version)
    return compiler.description


def bytecode_description(python_version: str) -> str:
    """What `compile_bytecode` would use, for the asset hashes."""
    compiler = bytecode_compiler(python_version)
    return compiler.description if compiler else "none"
