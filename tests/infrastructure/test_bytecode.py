"""The layers' bytecode is for the runtime's Python, and that Python uses it.

This machine's Python may not be the runtime's; Pyodide (CPython compiled to WebAssembly,
installed by `npm ci`) is a CPython of the runtime's version, so it both compiles the
bytecode and proves an importer of that version takes it rather than the source."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from taskmill_cdk.packaging import (
    NODE_MODULES,
    PYODIDE_VERSION,
    ROOT,
    bytecode_compiler,
    no_compiler_warning,
)
from taskmill_cdk.runtime import PYTHON_VERSION

# Run by the runtime-version interpreter that compiled the probe: which file it imported.
IMPORT_PROBE = """
import json, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "{directory}")
import probe
print(json.dumps({{"origin": probe.ORIGIN, "cached": probe.__spec__.cached,
                  "python": f"{{sys.version_info.major}}.{{sys.version_info.minor}}"}}))
"""
IMPORT_WITH_PYODIDE = """
import { loadPyodide } from "pyodide";
const pyodide = await loadPyodide();
pyodide.FS.mkdirTree("/probe");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: process.argv[1] }, "/probe");
pyodide.runPython(process.argv[2]);  // its print() writes to stdout
"""


def test_the_bytecode_compiler_is_for_the_runtime_python() -> None:
    compiler = bytecode_compiler(PYTHON_VERSION)
    assert compiler is not None, "run `npm ci` (Pyodide) or put a python3.14 on PATH"
    assert PYTHON_VERSION in compiler.description
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert bytecode_compiler(host) is not None  # this interpreter, for the bench
    assert bytecode_compiler("9.9", node_modules=Path("/nonexistent")) is None


def test_without_a_compiler_the_warning_says_what_to_install_where_it_runs() -> None:
    """A checkout has package.json (`npm ci`); your own CDK app, with Taskmill from the wheel,
    has none of ours: it is told the Pyodide to install beside it, or the Python to put on PATH."""
    assert json.loads((ROOT / "package.json").read_text())["devDependencies"]["pyodide"] == (
        PYODIDE_VERSION
    )
    assert "run `npm ci` for Pyodide" in no_compiler_warning("3.14", checkout=True)
    installed = no_compiler_warning("3.14", checkout=False)
    assert "npm ci" not in installed
    assert f"`npm install pyodide@{PYODIDE_VERSION}` in {NODE_MODULES.parent}" in installed
    assert "python3.14 on PATH" in installed


def test_a_runtime_python_importer_uses_the_compiled_bytecode(tmp_path: Path) -> None:
    compiler = bytecode_compiler(PYTHON_VERSION)
    assert compiler is not None
    (tmp_path / "probe.py").write_text('ORIGIN = "bytecode"\n')
    compiler.compile(tmp_path, PYTHON_VERSION)
    tag = f"cpython-{PYTHON_VERSION.replace('.', '')}"
    assert [p.name for p in (tmp_path / "__pycache__").iterdir()] == [f"probe.{tag}.pyc"]
    # Unchecked-hash bytecode is used whatever the source says now: an importer that read
    # the source would answer "source".
    (tmp_path / "probe.py").write_text('ORIGIN = "source"\n')
    if compiler.pyodide:
        node = shutil.which("node")
        assert node is not None
        script = IMPORT_PROBE.format(directory="/probe")
        command = [node, "--input-type=module", "-e", IMPORT_WITH_PYODIDE, str(tmp_path), script]
    else:
        # A native interpreter of the runtime's version compiled it: the same one imports it.
        command = [compiler.command[0], "-c", IMPORT_PROBE.format(directory=tmp_path)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["python"] == PYTHON_VERSION
    assert answer["origin"] == "bytecode"
    assert answer["cached"].endswith(f"probe.{tag}.pyc")
