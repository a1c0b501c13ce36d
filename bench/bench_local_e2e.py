"""The local stack at scale, as a newcomer feels it: BENCH_LOCAL_JOBS (default 10,000) `noop`
jobs submitted through the batch API of `make run`'s stack (`python -m taskmill_local.stack` on a
fresh data dir, real HTTP, 100 jobs per request, one client), and the time until all have
succeeded. Printed: submit time, batch-create median and p99, time to all succeeded, and the
peak memory of the stack's process tree (the stack process with its moto SQS server, and
pgserver's postgres processes), each with its target (issue 13: 10,000 in 60 s, 100,000 in
10 minutes within 1 GiB, batch-create p99 within 1 s throughout).

Memory is sampled every half second: RSS summed over the processes (an upper bound: pages
postgres processes share, shared_buffers above all, count once per process) and PSS (each
shared page split between its sharers: what the tree really costs)."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from summary import add_row

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, start_stack

JOBS = int(os.environ.get("BENCH_LOCAL_JOBS", "10000"))
PER_REQUEST = 100
GIB = 1024**3
MIB = 1024**2
P99_TARGET_SECONDS = 1.0
MEMORY_TARGET_BYTES = GIB


def target_seconds(jobs: int) -> float:
    """60 s for 10,000 (and fewer), 10 minutes for 100,000: the same rate."""
    return 60.0 * max(1.0, jobs / 10_000)


@dataclass
class Peak:
    rss: int = 0
    pss: int = 0
    stack_rss: int = 0  # the Python process alone: API, workers, sweep, moto's queues
    processes: int = 0


class TreeMemory:
    """Samples the memory of the stack process, its descendants, and the postgres
    processes serving its data dir (pgserver's postmaster is not the stack's child)."""

    def __init__(self, pid: int, data_dir: Path, every: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.data_dir = str(data_dir)
        self.every = every
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def processes(self) -> list[psutil.Process]:
        found = {self.root.pid: self.root}
        for child in self.root.children(recursive=True):
            found[child.pid] = child
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = process.info.get("cmdline") or []
            if (process.info.get("name") or "").startswith("postgres") and any(
                self.data_dir in part for part in cmdline
            ):
                found[process.pid] = process
                for child in process.children(recursive=True):
                    found[child.pid] = child
        return list(found.values())

    def sample(self) -> None:
        rss = pss = 0
        processes = self.processes()
        for process in processes:
            try:
                info = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            if process.pid == self.root.pid:
                self.peak.stack_rss = max(self.peak.stack_rss, info.rss)
        peak = self.peak
        peak.rss, peak.pss = max(peak.rss, rss), max(peak.pss, pss)
        peak.processes = max(peak.processes, len(processes))

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.sample()
            self._stop.wait(self.every)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at least `fraction` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        # The per-user quota of unfinished jobs (1,000 by default) would stop one user's
        # submission long before the backlog this measures.
        stack = start_stack(data_dir, {"TASKMILL_MAX_UNFINISHED_JOBS": str(JOBS + PER_REQUEST)})
        try:
            http = Http(stack.url)
            http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
            deadline_seconds = 2 * target_seconds(JOBS) + 60
            latencies: list[float] = []
            done = 0
            with TreeMemory(stack.process.pid, data_dir) as memory:
                started = time.perf_counter()
                slowest = (0.0, 0.0)  # (seconds, when)
                for start in range(0, JOBS, PER_REQUEST):
                    batch = [{"type": "noop"}] * min(PER_REQUEST, JOBS - start)
                    sent = time.perf_counter()
                    status, body = http.call("POST", "/v1/jobs/batch", {"jobs": batch})
                    latencies.append(time.perf_counter() - sent)
                    slowest = max(slowest, (latencies[-1], sent - started))
                    assert status == 201, body
                submitted = time.perf_counter() - started
                while True:
                    status, stats = http.call("GET", "/v1/stats", timeout=60)
                    assert status == 200, stats
                    done = stats["by_status"].get("succeeded", 0)
                    if done >= JOBS or time.perf_counter() - started > deadline_seconds:
                        break
                    time.sleep(1.0)
                elapsed = time.perf_counter() - started
            peak = memory.peak
        finally:
            stack.stop()
    target = target_seconds(JOBS)
    median, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    all_done = done >= JOBS
    print(
        f"local stack, {JOBS:,} noop jobs via the batch API ({PER_REQUEST} per request, "
        f"{os.cpu_count()} cores):"
    )
    print(
        f"  all succeeded after   {elapsed:8.1f} s   target <= {target:.0f} s   "
        + (verdict(elapsed <= target) if all_done else f"MISSED ({done:,} of {JOBS:,} done)")
    )
    print(f"  submitting took       {submitted:8.1f} s   ({JOBS / submitted:,.0f} jobs/s accepted)")
    print(
        f"  batch create median   {median * 1000:8.0f} ms  p99 {p99 * 1000:.0f} ms "
        f"(max {slowest[0] * 1000:.0f} ms at {slowest[1]:.0f} s)   "
        f"target p99 <= {P99_TARGET_SECONDS * 1000:.0f} ms   {verdict(p99 <= P99_TARGET_SECONDS)}"
    )
    print(
        f"  peak memory           {peak.rss / MIB:8.0f} MiB RSS summed over {peak.processes} "
        f"processes   target <= {MEMORY_TARGET_BYTES / MIB:.0f} MiB   "
        f"{verdict(peak.rss <= MEMORY_TARGET_BYTES)}"
    )
    print(
        f"                        ({peak.pss / MIB:.0f} MiB PSS; the stack process with its moto "
        f"SQS alone {peak.stack_rss / MIB:.0f} MiB RSS, the rest is postgres)"
    )

    area = "local stack (make run)"
    finished = f"{elapsed:.1f} s" if all_done else f"{done:,} of {JOBS:,} after {elapsed:.0f} s"
    add_row(
        area,
        f"{JOBS:,} noop jobs via the batch API, all succeeded",
        f"{finished} (submitting {submitted:.1f} s)",
        f"<= {target:.0f} s",
    )
    add_row(
        area,
        "batch create (100 jobs), median / p99",
        f"{median * 1000:.0f} / {p99 * 1000:.0f} ms",
        f"p99 <= {P99_TARGET_SECONDS * 1000:.0f} ms",
    )
    add_row(
        area,
        "peak memory of the stack's process tree",
        f"{peak.rss / MIB:.0f} MiB RSS ({peak.pss / MIB:.0f} MiB PSS)",
        f"<= {MEMORY_TARGET_BYTES / MIB:.0f} MiB",
    )


if __name__ == "__main__":
    main()
