"""`make bench`: every bench/bench_*.py in turn, one at a time (they would disturb each other
on a small machine), then one summary table. The whole output is also written to
bench/results/last-run.txt, so a figure quoted elsewhere names the run it came from."""

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
        head = f"make bench, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {machine()}"
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
