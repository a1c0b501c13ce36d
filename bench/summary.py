"""One table for a whole `make bench` run.

Each benchmark prints its own detail and also calls `add_row` for the figures worth a line
in the summary; rows go to the JSON-lines file named by BENCH_SUMMARY (set by `make bench`,
so a benchmark run alone writes none). `python bench/summary.py FILE` prints the table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

SUMMARY_ENV = "BENCH_SUMMARY"


def add_row(area: str, measure: str, figure: str, target: str = "") -> None:
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        row = {"area": area, "measure": measure, "figure": figure, "target": target}
        out.write(json.dumps(row) + "\n")


def machine() -> str:
    cores = os.cpu_count()
    return f"{platform.machine()}, {cores} cores, Python {platform.python_version()}"


def format_table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    keys = ("area", "measure", "figure", "target")
    widths = {key: max([len(key)] + [len(row[key]) for row in rows]) for key in keys}
    lines = [
        f"== summary of this run ({machine()})",
        "  ".join(key.ljust(widths[key]) for key in keys),
        "  ".join("-" * widths[key] for key in keys),
    ]
    lines += ["  ".join(row[key].ljust(widths[key]) for key in keys).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(format_table(Path(sys.argv[1])))
