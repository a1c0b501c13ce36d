"""An operator redrives a DLQ the way the AWS console's "Start DLQ redrive" does
(`StartMessageMoveTask`), against `make run`'s own SQS endpoint."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from taskmill_local.stack import QUEUE_PREFIX
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Http, RunningStack


def wait_until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def local_sqs(stack: RunningStack) -> Any:
    # The stack writes the endpoint it serves SQS on (also printed in its banner).
    endpoint = (stack.data_dir / "sqs.endpoint").read_text().strip()
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def depth(sqs: Any, url: str) -> int:
    names = [
        "ApproximateNumberOf" + n for n in ("Messages", "MessagesNotVisible", "MessagesDelayed")
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_a_console_redrive_redrives_a_failed_job_once(http: Http, stack: RunningStack) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    http.call("POST", "/v1/auth/register", {"email": email, "password": "a long password"})
    http.login(email, "a long password")
    admin = Http(stack.url)
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, job = http.call(
        "POST", "/v1/jobs", {"type": "fail", "max_attempts": 1, "payload": {"message": "boom"}}
    )
    assert status == 201, job
    job_id = job["id"]

    def get_job() -> dict[str, Any]:
        return http.call("GET", f"/v1/jobs/{job_id}")[1]

    def dead_letters() -> list[dict[str, Any]]:
        status, body = admin.call("GET", "/v1/dlq/normal")
        assert status == 200, body
        return [item for item in body["items"] if item["job_id"] == job_id]

    assert http.wait_for(job_id, {"failed"})["attempts"] == 1
    wait_until(dead_letters)
    sqs = local_sqs(stack)
    source_url, source_arn = queue(sqs, f"{QUEUE_PREFIX}-jobs-normal")
    dlq_url, dlq_arn = queue(sqs, f"{QUEUE_PREFIX}-jobs-normal-dlq")
    [letter] = sqs.receive_message(
        QueueUrl=dlq_url, VisibilityTimeout=0, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]

    def latest_task() -> dict[str, Any]:
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        return dict(task)

    # "Redrive to source queue": as in AWS, SQS knows no source queue for a message that the
    # worker put in the DLQ with SendMessage, so the task fails and nothing moves.
    sqs.start_message_move_task(SourceArn=dlq_arn)
    task = wait_until(lambda: (t := latest_task())["Status"] != "RUNNING" and t)
    assert (task["Status"], task["FailureReason"]) == ("FAILED", "CouldNotDetermineMessageSource")
    assert (get_job()["status"], get_job()["redrive_count"]) == ("failed", 0)

    # "Redrive to a custom destination": the priority's queue.
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)

    again = wait_until(
        lambda: (j := get_job())["redrive_count"] == 1 and j["status"] == "failed" and j
    )
    assert (again["attempts"], again["last_error"]) == (1, "boom")  # a fresh budget, spent again
    task = latest_task()
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 1)
    assert (task["ApproximateNumberOfMessagesToMove"], task["DestinationArn"]) == (1, source_arn)

    # A duplicate delivery of the moved message must not redrive the job a second time.
    sqs.send_message(
        QueueUrl=source_url,
        MessageBody=letter["Body"],
        MessageAttributes=letter["MessageAttributes"],
    )
    wait_until(lambda: depth(sqs, source_url) == 0)  # the worker took it and acknowledged it
    after = get_job()
    assert (after["status"], after["redrive_count"], after["attempts"]) == ("failed", 1, 1)
    [dead_letter] = dead_letters()  # the second failure's message, and only that one
    assert (dead_letter["redrive_count"], dead_letter["problem"]) == (1, None)
    status, peek = admin.call("GET", "/v1/dlq/normal")
    assert peek["complete"]
    assert job_id not in peek["failed_without_message"]
    assert [
        t["Status"]
        for t in sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    ] == [
        "COMPLETED",
        "FAILED",
    ]
