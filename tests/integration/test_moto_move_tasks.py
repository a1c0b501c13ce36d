"""The local SQS endpoint's message move tasks (the AWS console's "Start DLQ redrive"), seen
through boto3 and raw HTTP against a moto server with `taskmill_local.moto_move_tasks` applied."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from taskmill_local import moto_move_tasks

REGION = "us-east-1"
# moto routes a request to a service by its signature's credential scope; it checks no signature.
QUERY_AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential=local/20260101/{REGION}/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
SQS_MODEL = botocore.session.get_session().get_service_model("sqs")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    moto_move_tasks.apply()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def sqs(endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@dataclass
class Queue:
    url: str
    arn: str


def make_queue(sqs: Any, name: str, **attributes: str) -> Queue:
    url = sqs.create_queue(
        QueueName=f"{name}-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "0"}
    )["QueueUrl"]
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Queue(url, arn)


def dlq_pair(sqs: Any) -> tuple[Queue, Queue]:
    """A source queue whose RedrivePolicy sends a message to the DLQ after one receive."""
    dlq = make_queue(sqs, "dlq")
    policy = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 1})
    return make_queue(sqs, "src", RedrivePolicy=policy), dlq


ATTRIBUTES = {
    "job_type": {"DataType": "String", "StringValue": "fail"},
    "redrive_count": {"DataType": "Number", "StringValue": "0"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
}


def dead_letter_through_sqs(sqs: Any, source: Queue, bodies: list[str]) -> None:
    """Let SQS itself dead-letter the messages (maxReceiveCount), as it does poison messages."""
    for body in bodies:
        sqs.send_message(QueueUrl=source.url, MessageBody=body, MessageAttributes=ATTRIBUTES)
    for _ in range(2):
        sqs.receive_message(QueueUrl=source.url, MaxNumberOfMessages=10)
    assert depth(sqs, source) == 0


def depth(sqs: Any, queue: Queue) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def drain(sqs: Any, queue: Queue) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue.url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=30,
    ).get("Messages", []):
        messages.extend(batch)
    return messages


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def latest_task(sqs: Any, source_arn: str) -> dict[str, Any]:
    [task] = sqs.list_message_move_tasks(SourceArn=source_arn)["Results"]
    return dict(task)


def finished(sqs: Any, source_arn: str) -> dict[str, Any]:
    return wait_for(lambda: (t := latest_task(sqs, source_arn))["Status"] != "RUNNING" and t)


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def call_raw(endpoint: str, action: str, params: dict[str, Any], *, query: bool) -> Any:
    """One request as an SDK sends it: AWS JSON 1.0 (boto3, AWS CLI v1 today) or the query
    protocol (form-encoded, XML answers; older AWS CLI v1 releases)."""
    if query:
        data = urllib.parse.urlencode({"Action": action, "Version": "2012-11-05", **params})
        content_type = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(params)
        content_type = "application/x-amz-json-1.0"
    request = urllib.request.Request(endpoint + "/", data=data.encode(), method="POST")  # noqa: S310
    request.add_header("Content-Type", content_type)
    request.add_header("Authorization", QUERY_AUTHORIZATION)
    if not query:
        request.add_header("X-Amz-Target", f"AmazonSQS.{action}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode()
    assert status == 200, body
    if query:
        return ElementTree.fromstring(body)  # noqa: S314 - our own local server's answer
    return json.loads(body)


def assert_matches_shape(value: Any, shape: Any) -> None:
    """`value` (a raw JSON answer) holds only members of the botocore shape, of its types."""
    if shape.type_name == "structure":
        assert isinstance(value, dict)
        assert set(value) <= set(shape.members), set(value) - set(shape.members)
        for name, member in value.items():
            assert_matches_shape(member, shape.members[name])
    elif shape.type_name == "list":
        assert isinstance(value, list)
        for item in value:
            assert_matches_shape(item, shape.member)
    elif shape.type_name in ("integer", "long"):
        assert isinstance(value, int)
        assert not isinstance(value, bool)
    elif shape.type_name == "string":
        assert isinstance(value, str)
    else:
        raise AssertionError(f"unexpected shape {shape.type_name}")


def output_shape(action: str) -> Any:
    return SQS_MODEL.operation_model(action).output_shape


# ---- moving ---------------------------------------------------------------------------


def test_default_destination_is_the_queue_each_message_was_dead_lettered_from(sqs: Any) -> None:
    source, dlq = dlq_pair(sqs)
    other_source = make_queue(
        sqs,
        "src2",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 1}),
    )
    dead_letter_through_sqs(sqs, source, ["one", "two"])
    dead_letter_through_sqs(sqs, other_source, ["three"])
    in_dlq = {
        m["Body"]: m["MessageId"]
        for m in sqs.receive_message(QueueUrl=dlq.url, MaxNumberOfMessages=10)["Messages"]
    }

    handle = sqs.start_message_move_task(SourceArn=dlq.arn)["TaskHandle"]

    task = finished(sqs, dlq.arn)
    assert task["Status"] == "COMPLETED"
    assert (
        task["ApproximateNumberOfMessagesMoved"],
        task["ApproximateNumberOfMessagesToMove"],
    ) == (3, 3)
    assert task["SourceArn"] == dlq.arn
    assert "DestinationArn" not in task  # AWS leaves it out when none was asked for
    assert "TaskHandle" not in task  # only a RUNNING task shows its handle
    assert isinstance(handle, str)
    assert handle
    moved = drain(sqs, source)
    assert sorted(m["Body"] for m in moved) == ["one", "two"]
    assert [m["Body"] for m in drain(sqs, other_source)] == ["three"]
    for message in moved:
        assert message["MessageAttributes"] == ATTRIBUTES
        assert message["MessageId"] != in_dlq[message["Body"]]  # a new message
    assert depth(sqs, dlq) == 0  # the originals are deleted


def test_explicit_destination_takes_messages_sent_straight_to_the_dlq(sqs: Any) -> None:
    source, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    sqs.send_message(QueueUrl=dlq.url, MessageBody='{"job_id": 1}', MessageAttributes=ATTRIBUTES)

    sqs.start_message_move_task(SourceArn=dlq.arn, DestinationArn=elsewhere.arn)

    task = finished(sqs, dlq.arn)
    assert (task["Status"], task["DestinationArn"], task["ApproximateNumberOfMessagesMoved"]) == (
        "COMPLETED",
        elsewhere.arn,
        1,
    )
    [message] = drain(sqs, elsewhere)
    assert (message["Body"], message["MessageAttributes"]) == ('{"job_id": 1}', ATTRIBUTES)
    assert depth(sqs, dlq) == 0
    assert depth(sqs, source) == 0


def test_default_destination_fails_for_a_message_sent_straight_to_the_dlq(sqs: Any) -> None:
    """AWS: "CouldNotDetermineMessageSource" - SQS knows no source queue for a message that
    was sent to the DLQ with SendMessage (which is how Taskmill dead-letters a failed job)."""
    source, dlq = dlq_pair(sqs)
    sqs.send_message(QueueUrl=dlq.url, MessageBody="sent here")

    sqs.start_message_move_task(SourceArn=dlq.arn)

    task = finished(sqs, dlq.arn)
    assert (task["Status"], task["FailureReason"]) == ("FAILED", "CouldNotDetermineMessageSource")
    assert task["ApproximateNumberOfMessagesMoved"] == 0
    assert [m["Body"] for m in drain(sqs, dlq)] == ["sent here"]
    assert depth(sqs, source) == 0


def test_only_messages_present_at_the_start_are_moved(sqs: Any) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=dlq.url, MessageBody=body)

    sqs.start_message_move_task(
        SourceArn=dlq.arn, DestinationArn=elsewhere.arn, MaxNumberOfMessagesPerSecond=5
    )
    sqs.send_message(QueueUrl=dlq.url, MessageBody="late")

    task = finished(sqs, dlq.arn)
    assert (
        task["ApproximateNumberOfMessagesToMove"],
        task["ApproximateNumberOfMessagesMoved"],
    ) == (3, 3)
    assert sorted(m["Body"] for m in drain(sqs, elsewhere)) == ["a", "b", "c"]
    assert [m["Body"] for m in drain(sqs, dlq)] == ["late"]


def test_the_rate_limit_spaces_the_moves(sqs: Any) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=dlq.url, MessageBody=body)
    started = time.monotonic()

    handle = sqs.start_message_move_task(
        SourceArn=dlq.arn, DestinationArn=elsewhere.arn, MaxNumberOfMessagesPerSecond=2
    )["TaskHandle"]

    running = latest_task(sqs, dlq.arn)
    assert (running["Status"], running["TaskHandle"], running["MaxNumberOfMessagesPerSecond"]) == (
        "RUNNING",
        handle,
        2,
    )
    assert finished(sqs, dlq.arn)["Status"] == "COMPLETED"
    # The first moves at once, the other two 0.5 s apart.
    assert time.monotonic() - started >= 0.9
    assert depth(sqs, elsewhere) == 3


def test_a_cancelled_task_stops_moving_and_keeps_what_it_moved(sqs: Any) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    for index in range(5):
        sqs.send_message(QueueUrl=dlq.url, MessageBody=f"m{index}")
    handle = sqs.start_message_move_task(
        SourceArn=dlq.arn, DestinationArn=elsewhere.arn, MaxNumberOfMessagesPerSecond=1
    )["TaskHandle"]
    wait_for(lambda: latest_task(sqs, dlq.arn)["ApproximateNumberOfMessagesMoved"] >= 1)

    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]

    task = latest_task(sqs, dlq.arn)
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("CANCELLED", moved)
    assert "TaskHandle" not in task
    time.sleep(1.5)  # past the next move's turn at this rate
    assert depth(sqs, elsewhere) == moved
    assert depth(sqs, dlq) == 5 - moved
    assert moved < 5


def test_list_shows_the_most_recent_tasks_first(sqs: Any) -> None:
    source, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    for rate in (1, 2, 3):
        sqs.start_message_move_task(
            SourceArn=dlq.arn, DestinationArn=elsewhere.arn, MaxNumberOfMessagesPerSecond=rate
        )
        finished(sqs, dlq.arn)

    assert [
        t["MaxNumberOfMessagesPerSecond"]
        for t in sqs.list_message_move_tasks(SourceArn=dlq.arn)["Results"]
    ] == [3]
    listed = sqs.list_message_move_tasks(SourceArn=dlq.arn, MaxResults=10)["Results"]
    assert [t["MaxNumberOfMessagesPerSecond"] for t in listed] == [3, 2, 1]
    assert sqs.list_message_move_tasks(SourceArn=source.arn)["Results"] == []


# ---- the wire: shapes and protocols ----------------------------------------------------


def test_answers_have_the_service_models_shapes(sqs: Any, endpoint: str) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=dlq.url, MessageBody=body)

    started = call_raw(
        endpoint,
        "StartMessageMoveTask",
        {"SourceArn": dlq.arn, "DestinationArn": elsewhere.arn, "MaxNumberOfMessagesPerSecond": 1},
        query=False,
    )
    listed = call_raw(
        endpoint, "ListMessageMoveTasks", {"SourceArn": dlq.arn, "MaxResults": 10}, query=False
    )
    cancelled = call_raw(
        endpoint, "CancelMessageMoveTask", {"TaskHandle": started["TaskHandle"]}, query=False
    )
    after = call_raw(endpoint, "ListMessageMoveTasks", {"SourceArn": dlq.arn}, query=False)

    assert_matches_shape(started, output_shape("StartMessageMoveTask"))
    assert_matches_shape(listed, output_shape("ListMessageMoveTasks"))
    assert_matches_shape(cancelled, output_shape("CancelMessageMoveTask"))
    assert_matches_shape(after, output_shape("ListMessageMoveTasks"))
    [running] = listed["Results"]
    assert set(running) == {
        "TaskHandle",
        "Status",
        "SourceArn",
        "DestinationArn",
        "MaxNumberOfMessagesPerSecond",
        "ApproximateNumberOfMessagesMoved",
        "ApproximateNumberOfMessagesToMove",
        "StartedTimestamp",
    }
    assert abs(running["StartedTimestamp"] / 1000 - time.time()) < 60  # epoch milliseconds
    assert after["Results"][0]["Status"] == "CANCELLED"
    assert "TaskHandle" not in after["Results"][0]


def test_the_query_protocol_of_older_aws_cli_releases_works(sqs: Any, endpoint: str) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    sqs.send_message(QueueUrl=dlq.url, MessageBody="a")
    ns = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/"}

    started = call_raw(
        endpoint,
        "StartMessageMoveTask",
        {"SourceArn": dlq.arn, "DestinationArn": elsewhere.arn},
        query=True,
    )
    handle = started.findtext("sqs:StartMessageMoveTaskResult/sqs:TaskHandle", namespaces=ns)
    assert handle
    finished(sqs, dlq.arn)
    listed = call_raw(endpoint, "ListMessageMoveTasks", {"SourceArn": dlq.arn}, query=True)

    [entry] = listed.findall(
        "sqs:ListMessageMoveTasksResult/sqs:ListMessageMoveTasksResultEntry", namespaces=ns
    )
    assert entry.findtext("sqs:Status", namespaces=ns) == "COMPLETED"
    assert entry.findtext("sqs:ApproximateNumberOfMessagesMoved", namespaces=ns) == "1"
    assert entry.findtext("sqs:DestinationArn", namespaces=ns) == elsewhere.arn


# ---- errors ------------------------------------------------------------------------------


def test_a_queue_that_is_no_dlq_cannot_be_a_source(sqs: Any) -> None:
    plain = make_queue(sqs, "plain")
    elsewhere = make_queue(sqs, "elsewhere")
    expected = (
        "InvalidParameterValue",
        400,
        "Source queue must be configured as a Dead Letter Queue.",
    )

    assert error_of(lambda: sqs.start_message_move_task(SourceArn=plain.arn)) == expected
    # AWS refuses it with a destination too (its recorded answer; the docs say the same).
    assert (
        error_of(
            lambda: sqs.start_message_move_task(SourceArn=plain.arn, DestinationArn=elsewhere.arn)
        )
        == expected
    )


def test_one_running_task_per_source(sqs: Any) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=dlq.url, MessageBody=body)
    handle = sqs.start_message_move_task(
        SourceArn=dlq.arn, DestinationArn=elsewhere.arn, MaxNumberOfMessagesPerSecond=1
    )["TaskHandle"]

    code, status, message = error_of(lambda: sqs.start_message_move_task(SourceArn=dlq.arn))

    assert (code, status) == ("InvalidParameterValue", 400)
    assert "Only one active task is allowed" in message
    sqs.cancel_message_move_task(TaskHandle=handle)
    sqs.start_message_move_task(SourceArn=dlq.arn, DestinationArn=elsewhere.arn)  # free again
    assert finished(sqs, dlq.arn)["Status"] == "COMPLETED"


def test_unknown_queues_are_not_found(sqs: Any) -> None:
    _, dlq = dlq_pair(sqs)
    missing = dlq.arn + "-missing"

    assert error_of(lambda: sqs.start_message_move_task(SourceArn=missing))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(lambda: sqs.list_message_move_tasks(SourceArn=missing))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    assert error_of(
        lambda: sqs.start_message_move_task(SourceArn=dlq.arn, DestinationArn=missing)
    ) == (
        "ResourceNotFoundException",
        404,
        "The resource that you specified for the DestinationArn parameter doesn't exist.",
    )


def test_cancel_needs_the_handle_of_a_running_task(sqs: Any) -> None:
    _, dlq = dlq_pair(sqs)
    elsewhere = make_queue(sqs, "elsewhere")
    handle = sqs.start_message_move_task(SourceArn=dlq.arn, DestinationArn=elsewhere.arn)[
        "TaskHandle"
    ]
    assert finished(sqs, dlq.arn)["Status"] == "COMPLETED"

    def cancel(task_handle: str) -> tuple[str, int, str]:
        return error_of(lambda: sqs.cancel_message_move_task(TaskHandle=task_handle))

    def handle_for(task_id: str, source_arn: str) -> str:
        text = json.dumps({"taskId": task_id, "sourceArn": source_arn})
        return base64.b64encode(text.encode()).decode()

    assert cancel("not-a-handle") == (
        "InvalidParameterValue",
        400,
        "Value for parameter TaskHandle is invalid.",
    )
    assert cancel(handle_for(str(uuid.uuid4()), dlq.arn)) == (
        "ResourceNotFoundException",
        404,
        "Task does not exist.",
    )
    assert cancel(handle_for(str(uuid.uuid4()), dlq.arn + "-gone"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    code, status, _ = cancel(handle)  # finished
    assert (code, status) == ("AWS.SimpleQueueService.UnsupportedOperation", 400)


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("start_message_move_task", {"MaxNumberOfMessagesPerSecond": 0}),
        ("start_message_move_task", {"MaxNumberOfMessagesPerSecond": 501}),
        ("list_message_move_tasks", {"MaxResults": 0}),
        ("list_message_move_tasks", {"MaxResults": 11}),
    ],
)
def test_out_of_range_numbers_are_refused(sqs: Any, action: str, params: dict[str, int]) -> None:
    _, dlq = dlq_pair(sqs)

    code, status, _ = error_of(lambda: getattr(sqs, action)(SourceArn=dlq.arn, **params))

    assert (code, status) == ("InvalidParameterValue", 400)
    assert sqs.list_message_move_tasks(SourceArn=dlq.arn)["Results"] == []


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto_move_tasks, "_applied", False)
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match=r"patches moto 5\.2\.5"):
        moto_move_tasks.apply()
