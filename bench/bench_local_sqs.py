"""Local SQS calls against a backlog: what the API (SendMessageBatch), the pollers
(ReceiveMessage, DeleteMessageBatch), retries (ChangeMessageVisibility) and `GET /v1/queues`
(GetQueueAttributes) cost with 1,000 to BENCH_BACKLOG (default 100,000) messages queued, on
moto 5.2.5 as released (1,000 only: it grows linearly from there) and with
`taskmill_local.moto_fast` (what the local stack runs). In-process moto through boto3, so the
figures include botocore's and moto's request handling (a few ms) but no HTTP. The backlog is
put straight into moto's queue model (sending 100,000 messages through moto as released
takes hours)."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from summary import add_row

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "100000"))
RUNS = 5
DEPTHS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]
CALLS = ("send batch(10)", "receive(10)", "delete batch(10)", "change visibility", "depths")


def median_ms(call: Callable[[], Any], runs: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(backlog: int, runs: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws
    from moto.sqs.models import Message, sqs_backends

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="backlog-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 30}
        url = sqs.create_queue(
            QueueName="backlog",
            Attributes={"VisibilityTimeout": "1800", "RedrivePolicy": json.dumps(policy)},
        )["QueueUrl"]
        queue = sqs_backends["123456789012"]["us-east-1"].get_queue("backlog")
        for index in range(backlog):
            message = Message(f"m-{index}", json.dumps({"job_id": str(index), "v": 1}))
            message.mark_sent()
            queue.add_message(message)
        attributes = {"type": {"DataType": "String", "StringValue": "noop"}}
        entries = [
            {"Id": str(i), "MessageBody": '{"v": 1}', "MessageAttributes": attributes}
            for i in range(10)
        ]
        received: list[dict[str, Any]] = []

        def receive() -> None:
            received[:] = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )["Messages"]
            assert len(received) == 10

        def delete() -> None:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(received)
                ],
            )

        return {
            "send batch(10)": median_ms(
                lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries), runs
            ),
            "receive(10)": median_ms(receive, runs),
            "delete batch(10)": median_ms(delete, runs, setup=receive),
            "change visibility": median_ms(
                lambda: sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=received[-1]["ReceiptHandle"], VisibilityTimeout=60
                ),
                runs,
                setup=receive,
            ),
            "depths": median_ms(
                lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=DEPTHS), runs
            ),
        }


def row(label: str, figures: dict[str, float]) -> str:
    return f"  {label:<32}" + "".join(f"{figures[name]:>19.1f}" for name in CALLS)


def main() -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    print("local SQS (moto 5.2.5) per call against a backlog, ms (median of runs):")
    print(f"  {'':<32}" + "".join(f"{name:>19}" for name in CALLS))
    released = measure(1000, 3)
    print(row("as released, 1,000 queued", released))
    from taskmill_local import moto_fast

    moto_fast.apply()
    patched: dict[str, float] = {}
    for backlog in sorted({1000, 10_000, BACKLOG}):
        patched = measure(backlog, RUNS)
        print(row(f"taskmill_local.moto_fast, {backlog:,} queued", patched))
    print("  target: the same at any backlog (the local stack's 100,000-job run)")
    shown = ("send batch(10)", "receive(10)", "delete batch(10)")

    def figures(values: dict[str, float]) -> str:
        return " / ".join(f"{values[name]:.1f}" for name in shown)

    add_row(
        "local SQS (moto 5.2.5)",
        f"send batch / receive / delete batch, {BACKLOG:,} queued",
        f"{figures(patched)} ms (as released, 1,000 queued: {figures(released)})",
        "independent of the backlog",
    )


if __name__ == "__main__":
    main()
