"""Local SQS speed with a backlog: receive(10) from a 10,000-message queue on moto with
`local.moto_fast`, and from a 1,000-message queue without it (as released it takes minutes
per receive at 10,000). The backlog is put straight into moto's queue model (sending 10,000
messages through moto is itself slow, and not what is measured)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "10000"))
RECEIVES = 5


def measure(backlog: int, receives: int) -> float:
    import boto3
    from moto import mock_aws
    from moto.sqs.models import Message, sqs_backends

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
        queue = sqs_backends["123456789012"]["us-east-1"].get_queue("backlog")
        for index in range(backlog):
            message = Message(f"m-{index}", f'{{"n": {index}}}')
            message.mark_sent()
            queue.add_message(message)
        times = []
        for _ in range(receives):
            started = time.perf_counter()
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            times.append((time.perf_counter() - started) * 1000)
            assert len(got) == 10
        return statistics.median(times)


def main() -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    before = measure(1000, 2)
    print(f"moto as released: receive(10) from a 1,000-message backlog {before:.0f} ms")
    from local import moto_fast

    moto_fast.apply()
    after = measure(BACKLOG, RECEIVES)
    print(
        f"with local.moto_fast: receive(10) from a {BACKLOG:,}-message backlog {after:.1f} ms "
        f"(median of {RECEIVES}; target < 50 ms)"
    )


if __name__ == "__main__":
    main()
