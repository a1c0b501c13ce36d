"""What a newcomer feels: 1,000 `noop` jobs submitted through the batch API of `make run`'s
stack (a fresh data dir, real HTTP) and the time until all have succeeded."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, free_port, start_stack

JOBS = int(os.environ.get("BENCH_JOBS", "1000"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "data", free_port())
        try:
            http = Http(stack.url)
            http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
            started = time.perf_counter()
            for _ in range(JOBS // 100):
                status, body = http.call(
                    "POST", "/v1/jobs/batch", {"jobs": [{"type": "noop"}] * 100}
                )
                assert status == 201, body
            submitted = time.perf_counter() - started
            while True:
                status, stats = http.call("GET", "/v1/stats")
                done = stats["by_status"].get("succeeded", 0)
                if done >= JOBS or time.perf_counter() - started > 120:
                    break
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        finally:
            stack.stop()
    print(
        f"{done} of {JOBS} noop jobs succeeded {elapsed:.1f} s after the first batch request "
        f"(submitting took {submitted:.1f} s; target: all within 20 s)"
    )


if __name__ == "__main__":
    main()
