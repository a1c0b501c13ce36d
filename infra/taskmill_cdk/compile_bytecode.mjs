// Compiles every .py under a directory to bytecode for the Lambda runtime's Python with
// Pyodide (CPython compiled to WebAssembly, from npm): the bundling machine's own Python
// may be another version, whose bytecode the runtime would ignore.
//
//   node infra/taskmill_cdk/compile_bytecode.mjs <directory> <major.minor> [<pyodide dir>]
//
// <pyodide dir>: the `pyodide` package to load (a CDK app's node_modules/pyodide when this
// script is installed in site-packages, where Node's own resolution would not find it).
//
// Writes __pycache__/<name>.cpython-<XY>.pyc files in unchecked-hash mode (a deployment zip
// keeps no source timestamps to check against) and prints one JSON line describing them.
// Fails when Pyodide's Python is not <major.minor>, so a mismatch never ships silently.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [directory, wanted, pyodideDir] = process.argv.slice(2);
if (!directory || !wanted) {
  console.error("usage: node compile_bytecode.mjs <directory> <major.minor> [<pyodide dir>]");
  process.exit(2);
}
const { loadPyodide } = await import(
  pyodideDir ? pathToFileURL(join(pyodideDir, "pyodide.mjs")).href : "pyodide"
);
const pyodide = await loadPyodide();
pyodide.FS.mkdirTree("/bundle");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: directory }, "/bundle");
pyodide.globals.set("wanted", wanted);
const report = pyodide.runPython(`
import compileall, importlib.util, json, py_compile, sys
version = f"{sys.version_info.major}.{sys.version_info.minor}"
ok = version == wanted and compileall.compile_dir(
    "/bundle", quiet=1, workers=1,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
)
json.dumps({
    "ok": bool(ok),
    "python": sys.version.split()[0],
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
})
`);
console.log(report);
process.exit(JSON.parse(report).ok ? 0 : 1);
