"""What the Lambda assets hold, without CDK: the dependency layer's `pip install`, the
package layer's copy of `taskmill` and your job-type packages, a function directory's handler
modules.

Where the sources are: in a checkout of the repository, its `requirements.txt`, `functions/`
and `layers/`; installed from the wheel, the same files shipped inside it (`requirements.txt`
inside `taskmill_cdk`, the handlers as the `taskmill_functions` package, `taskmill` itself).
Both give the same bytes, so the same asset hashes.

`taskmill_cdk.bundling` plugs these into CDK's local bundling; `bench/bench_cold_start.py` uses the
same functions to lay out what Lambda would see (`/var/task`, `/opt/python`) and time cold
starts from it. Nothing here imports `aws_cdk` (its jsii start-up costs seconds).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The repository when this runs from a checkout (infra/taskmill_cdk/), else site-packages.
ROOT = HERE.parents[1]
CHECKOUT = (ROOT / "functions" / "__init__.py").is_file() and (ROOT / "requirements.txt").is_file()


def _package_dir(name: str) -> Path:
    """Where an installed top-level package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {name} package is not installed: pip install taskmill[cdk]")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


# The wheel carries a copy of requirements.txt (setup.py puts it there): the same pins, the
# same dependency layer, the same asset hash as a checkout.
REQUIREMENTS = ROOT / "requirements.txt" if CHECKOUT else HERE / "requirements.txt"
# Only in a checkout: where this repository keeps `taskmill` and any job-type packages.
LAYERS_DIR = ROOT / "layers"
FUNCTIONS_DIR = ROOT / "functions" if CHECKOUT else _package_dir("taskmill_functions")
# Pyodide (the optional bytecode compiler) from `npm ci`: the repository's node_modules, or
# the CDK app's own (where its `aws-cdk` CLI is installed) for an installed Taskmill.
NODE_MODULES = (ROOT if CHECKOUT else Path.cwd()) / "node_modules"
# The Pyodide that package.json pins (a test keeps them equal): what an installed Taskmill's
# warning tells your app to install, since the wheel carries no package.json to `npm ci`.
PYODIDE_VERSION = "314.0.7"
PYODIDE_COMPILER = HERE / "compile_bytecode.mjs"
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


def shipped_packages(job_modules: Iterable[str]) -> list[Path]:
    """What the package layer holds: `taskmill`, and the top-level package (or module) of
    each of your job modules, found where this Python imports it from (your CDK app's
    folder, `layers/` in this repository, or site-packages)."""
    packages = [_package_dir("taskmill")]
    for module in job_modules:
        top = module.split(".")[0]
        spec = importlib.util.find_spec(top)
        if spec is None:
            raise ValueError(
                f"job module {module!r} is not in the package layer: {top!r} cannot be "
                "imported here (put its package beside your CDK app, or in layers/)"
            )
        if spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            path = Path(spec.origin)
        else:  # a namespace package spread over directories: nothing single to copy
            raise ValueError(f"job module {module!r}: {top!r} is not a regular package")
        if path.resolve() not in packages:
            packages.append(path.resolve())
    return packages


def copy_packages(packages: Iterable[Path], target: Path) -> None:
    """Each package (directory or single module) to `<target>/<name>`, minus caches."""
    target.mkdir(parents=True, exist_ok=True)
    for package in packages:
        if package.is_file():
            shutil.copy2(package, target / package.name)
            continue
        shutil.copytree(
            package,
            target / package.name,
            ignore=shutil.ignore_patterns(*IGNORED),
            dirs_exist_ok=True,
        )


def copy_package_layer(layers_dir: Path, target: Path) -> None:
    """Each package under `layers/` to `<target>/<package>`, minus caches."""
    copy_packages(layer_packages(layers_dir), target)


def copy_function(function_dir: Path, target: Path) -> None:
    """A function asset: the directory's handler modules, minus caches."""
    shutil.copytree(
        function_dir, target, ignore=shutil.ignore_patterns(*IGNORED), dirs_exist_ok=True
    )


def packages_fingerprint(packages: Iterable[Path]) -> str:
    """A hash of what the package layer ships (migrations included): the migrations resource
    runs again whenever the code deployed with it changes. Paths count from each package's
    parent, so a checkout and an installed wheel give the same hash for the same code."""
    digest = hashlib.sha256()
    for package in sorted(packages, key=lambda p: p.name):
        files = [package] if package.is_file() else sorted(package.rglob("*"))
        for path in files:
            relative = path.relative_to(package.parent)
            ignored = any(fnmatch(part, p) for part in relative.parts for p in IGNORED)
            if path.is_file() and not ignored:
                digest.update(str(relative).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def package_layer_fingerprint(layers_dir: Path = LAYERS_DIR) -> str:
    """`packages_fingerprint` of every package under a `layers/` directory."""
    return packages_fingerprint(layer_packages(layers_dir))


@dataclass(frozen=True)
class BytecodeCompiler:
    """Something that compiles bytecode the runtime's Python will load: an interpreter of
    exactly that version (this one, or `python<X.Y>` on PATH), or Pyodide's CPython of that
    version run by Node (`npm ci` installs it; CDK needs Node anyway)."""

    description: str  # part of the asset hashes: a different compiler, a different asset
    command: tuple[str, ...]  # the directory (and for Pyodide the version) are appended
    pyodide: bool = False
    pyodide_dir: Path | None = None  # the `pyodide` package the compiler script loads

    def compile(self, directory: Path, python_version: str) -> None:
        arguments = [*self.command, str(directory)]
        if self.pyodide:
            arguments.append(python_version)
            if self.pyodide_dir is not None:
                arguments.append(str(self.pyodide_dir))
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
                pyodide_dir=manifest.parent,
            )
    return None


def no_compiler_warning(python_version: str, *, checkout: bool = CHECKOUT) -> str:
    """What to do when no compiler is found: `npm ci` in this repository; in your own CDK
    app (an installed Taskmill, no package.json of ours) Pyodide beside it, or the Python."""
    if checkout:
        fix = "run `npm ci` for Pyodide"
    else:
        fix = (
            f"put python{python_version} on PATH, or run `npm install pyodide@{PYODIDE_VERSION}`"
            f" in {NODE_MODULES.parent}"
        )
    return (
        f"warning: no compiler for Python {python_version} bytecode ({fix}): the assets ship "
        "sources only, and cold starts compile them"
    )


def compile_bytecode(directory: Path, python_version: str) -> str:
    """Bytecode beside every source under `directory` if a compiler for `python_version`
    exists here; returns what compiled it, or "none"."""
    compiler = bytecode_compiler(python_version)
    if compiler is None:
        print(no_compiler_warning(python_version), file=sys.stderr)
        return "none"
    compiler.compile(directory, python_version)
    return compiler.description


def bytecode_description(python_version: str) -> str:
    """What `compile_bytecode` would use, for the asset hashes."""
    compiler = bytecode_compiler(python_version)
    return compiler.description if compiler else "none"
