"""The package layout, which pyproject.toml cannot say on its own.

The repository keeps SPEC §1's directories; the wheel maps them to four import packages:

- `layers/taskmill` -> `taskmill`: the runtime (what the Lambda layer holds);
- `infra/taskmill_cdk` -> `taskmill_cdk`: the CDK construct library;
- `local/taskmill_local` -> `taskmill_local`: the local stack and the `taskmill` CLI;
- `functions` -> `taskmill_functions`: the Lambda handlers (assets; the local stack runs them).

`functions/` is imported as `functions` in a checkout (tests, handler strings are file-based);
the wheel cannot install a top-level package with so general a name, hence
`taskmill_functions`. The wheel also carries `requirements.txt` inside `taskmill_cdk`: the
dependency layer is built from exactly those pins, installed or in a checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPy(build_py):
    """Also copies requirements.txt into the wheel's `taskmill_cdk/`, and the web console's
    static files into `taskmill_local/` (served by the local stack) and `taskmill_cdk/`
    (deployed to S3)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads the checkout's own files
            target = Path(self.build_lib) / "taskmill_cdk" / "requirements.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / "requirements.txt", target)
            for package in ("taskmill_local", "taskmill_cdk"):
                shutil.copytree(
                    HERE / "console",
                    Path(self.build_lib) / package / "console_static",
                    dirs_exist_ok=True,
                )


def _mapped(directory: str, name: str | None = None) -> list[str]:
    """The packages under `directory`, renamed from `directory`'s own name to `name`."""
    found = find_packages(str(HERE / directory), exclude=["*.__pycache__"])
    if name is None:
        return found
    return [name] + [f"{name}.{package}" for package in found]


setup(
    cmdclass={"build_py": BuildPy},
    package_dir={
        "taskmill": "layers/taskmill",
        "taskmill_cdk": "infra/taskmill_cdk",
        "taskmill_local": "local/taskmill_local",
        "taskmill_functions": "functions",
    },
    packages=[
        *_mapped("layers/taskmill", "taskmill"),
        *_mapped("infra/taskmill_cdk", "taskmill_cdk"),
        *_mapped("local/taskmill_local", "taskmill_local"),
        *_mapped("functions", "taskmill_functions"),
    ],
)
