"""`make bench`: every bench/bench_*.py in turn, one at a time (they would disturb each other
on a small machine), then one summary table. The whole output is also written to
bench/results/last-run.txt (not tracked), headed by the commit it measured. A run whose
figures the README or docs/PERFORMANCE.md quote is copied to bench/runs/ and committed, so
a figure quoted elsewhere names a run a fresh clone has."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from summary import SUMMARY_ENV, format_table, machine  # noqa: E402


def source_version() -> str:
    """The commit the run measured, and whether the tree differed from it: the name a figure
    quoted from this run is given by."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=BENCH.parent, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


def main() -> int:
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    log_path = results / "last-run.txt"
    only = sys.argv[1:]
    benches = sorted(BENCH.glob("bench_*.py"))
    if only:
        benches = [b for b in benches if any(name in b.name for name in only)]
    with tempfile.TemporaryDirectory() as tmp, log_path.open("w", encoding="utf-8") as log:
        summary = Path(tmp) / "summary.jsonl"
        summary.touch()
        now = datetime.datetime.now(datetime.UTC)
        head = f"make bench, {now:%Y-%m-%d %H:%M} UTC, {source_version()}, {machine()}"
        print(head, flush=True)
        log.write(head + "\n")
        for bench in benches:
            title = f"== {bench.relative_to(BENCH.parent)}"
            print(title, flush=True)
            log.write(title + "\n")
            process = subprocess.Popen(
                [sys.executable, str(bench)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, SUMMARY_ENV: str(summary)},
            )
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                log.write(line)
            if process.wait() != 0:
                print(f"{bench.name} failed (exit {process.returncode})", file=sys.stderr)
                return 1
        table = format_table(summary)
        sys.stdout.write("\n" + table)
        log.write("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
