"""The local stack's moto fix keeps SQS semantics: visibility, delays, receive counts, redrive,
retention, deletes, depth counters, FIFO queues, concurrent consumers. Everything is seen
through boto3, as the platform and a user's AWS CLI see it."""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from taskmill_local import moto_fast, moto_move_tasks

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def fast_sqs(sqs: Any) -> Any:
    moto_fast.apply()
    return sqs


def backend_queue(name: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[ACCOUNT][REGION].get_queue(name)


def receive(sqs: Any, url: str, n: int = 10, **extra: Any) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=n, AttributeNames=["All"], **extra
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def depths(sqs: Any, url: str) -> tuple[int, int, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, in_flight, delayed = (int(got[name]) for name in names)
    return visible, in_flight, delayed


def queue_with_dlq(sqs: Any, max_receives: int, **attributes: str) -> tuple[str, str, str]:
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}
    url = sqs.create_queue(
        QueueName="src", Attributes={"RedrivePolicy": json.dumps(policy), **attributes}
    )["QueueUrl"]
    return url, dlq, dlq_arn


def test_visibility_and_delay_are_respected(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    fast_sqs.send_message(QueueUrl=url, MessageBody="now")
    fast_sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    [first] = receive(fast_sqs, url)
    assert first["Body"] == "now"
    assert receive(fast_sqs, url) == []
    # A long poll wakes for what becomes receivable while it waits, not only for sends.
    bodies = sorted(m["Body"] for m in receive(fast_sqs, url, WaitTimeSeconds=5))
    if len(bodies) < 2:
        bodies = sorted(bodies + [m["Body"] for m in receive(fast_sqs, url, WaitTimeSeconds=5)])
    assert bodies == ["later", "now"]  # the delay passed and "now" became visible again


def test_a_message_not_deleted_comes_back_with_a_new_handle_and_count(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    fast_sqs.send_message(QueueUrl=url, MessageBody="job")
    [first] = receive(fast_sqs, url)
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert receive(fast_sqs, url) == []  # in flight
    assert depths(fast_sqs, url) == (0, 1, 0)
    [again] = receive(fast_sqs, url, WaitTimeSeconds=5)
    assert again["MessageId"] == first["MessageId"]
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    first_receive = "ApproximateFirstReceiveTimestamp"
    assert again["Attributes"][first_receive] == first["Attributes"][first_receive]


def test_visibility_timeout_per_receive_and_zero(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    fast_sqs.send_message(QueueUrl=url, MessageBody="job")
    [first] = receive(fast_sqs, url, VisibilityTimeout=0)  # peeked: stays visible
    [second] = receive(fast_sqs, url)
    assert second["MessageId"] == first["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert receive(fast_sqs, url) == []  # the queue's 600 s apply now


def test_change_message_visibility(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q")["QueueUrl"]  # 30 s visibility timeout
    fast_sqs.send_message(QueueUrl=url, MessageBody="job")
    [message] = receive(fast_sqs, url)
    assert receive(fast_sqs, url) == []
    # 0: visible again at once (a retry through SQS, the pollers' released batch).
    fast_sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    [again] = receive(fast_sqs, url, WaitTimeSeconds=1)
    assert again["MessageId"] == message["MessageId"]
    # Longer: hidden, counted in flight; with the handle of an earlier receive too.
    fast_sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0
    )
    fast_sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=600
    )
    assert receive(fast_sqs, url) == []
    assert depths(fast_sqs, url) == (0, 1, 0)
    with pytest.raises(ClientError, match="43200"):
        fast_sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=43201
        )
    answer = fast_sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "ReceiptHandle": again["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "bad", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 0},
        ],
    )
    assert [entry["Id"] for entry in answer["Successful"]] == ["good"]
    assert [(e["Id"], e["Code"]) for e in answer["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    [third] = receive(fast_sqs, url, WaitTimeSeconds=1)
    assert third["Attributes"]["ApproximateReceiveCount"] == "3"
    fast_sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        fast_sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=10
        )


def test_delays_of_queue_message_and_batch_entry(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q", Attributes={"DelaySeconds": "600"})["QueueUrl"]
    fast_sqs.send_message(QueueUrl=url, MessageBody="queue-delay")
    fast_sqs.send_message(QueueUrl=url, MessageBody="no-delay", DelaySeconds=0)
    fast_sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "entry-delay", "DelaySeconds": 600},
            {"Id": "b", "MessageBody": "entry-no-delay", "DelaySeconds": 0},
        ],
    )
    assert depths(fast_sqs, url) == (2, 0, 2)
    assert sorted(m["Body"] for m in receive(fast_sqs, url)) == ["entry-no-delay", "no-delay"]
    assert receive(fast_sqs, url) == []
    assert depths(fast_sqs, url) == (0, 2, 2)


def test_counts_still_reported(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="counted")["QueueUrl"]
    for body in ("a", "b", "c"):
        fast_sqs.send_message(QueueUrl=url, MessageBody=body)
    fast_sqs.send_message(QueueUrl=url, MessageBody="d", DelaySeconds=60)
    fast_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    attributes = fast_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_oldest_first_as_moto_returns_them(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q")["QueueUrl"]
    for index in range(5):
        fast_sqs.send_message(QueueUrl=url, MessageBody=str(index))
    [first] = receive(fast_sqs, url, 1)
    assert first["Body"] == "0"
    fast_sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    bodies = [m["Body"] for m in receive(fast_sqs, url, WaitTimeSeconds=1)]
    # "0" is back, before the newer ones (unless asked for in the millisecond it came back).
    assert bodies in (["0", "1", "2", "3", "4"], ["1", "2", "3", "4"])


def test_deletes(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    for body in ("a", "b"):
        fast_sqs.send_message(QueueUrl=url, MessageBody=body)
    first = receive(fast_sqs, url)
    assert [m["Body"] for m in first] == ["a", "b"]
    again = receive(fast_sqs, url, WaitTimeSeconds=1)  # visibility 0: received again
    assert {m["Body"] for m in again} <= {"a", "b"}
    fast_sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    # Deleting again succeeds; a handle never given out does not.
    fast_sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        fast_sqs.delete_message(QueueUrl=url, ReceiptHandle="never-given-out")
    answer = fast_sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "b", "ReceiptHandle": first[1]["ReceiptHandle"]},  # an older handle of "b"
            {"Id": "junk", "ReceiptHandle": "junk"},
        ],
    )
    assert [entry["Id"] for entry in answer["Successful"]] == ["b"]
    assert [(e["Id"], e["Code"]) for e in answer["Failed"]] == [("junk", "ReceiptHandleIsInvalid")]
    assert receive(fast_sqs, url, WaitTimeSeconds=1) == []
    assert depths(fast_sqs, url) == (0, 0, 0)


def test_redrive_to_the_dlq_after_max_receives(fast_sqs: Any) -> None:
    url, dlq, _ = queue_with_dlq(fast_sqs, 2, VisibilityTimeout="0")
    fast_sqs.send_message(
        QueueUrl=url,
        MessageBody="poison",
        MessageAttributes={"type": {"DataType": "String", "StringValue": "noop"}},
    )
    fast_sqs.send_message(QueueUrl=url, MessageBody="good", DelaySeconds=600)
    counts = []
    for _ in range(2):
        [message] = receive(fast_sqs, url, WaitTimeSeconds=1)
        counts.append(message["Attributes"]["ApproximateReceiveCount"])
    assert counts == ["1", "2"]
    assert receive(fast_sqs, url, WaitTimeSeconds=1) == []  # the third receive moves it
    assert depths(fast_sqs, url) == (0, 0, 1)
    [dead] = receive(fast_sqs, dlq, MessageAttributeNames=["All"])
    assert dead["Body"] == "poison"
    assert dead["MessageAttributes"]["type"]["StringValue"] == "noop"
    assert dead["Attributes"]["ApproximateReceiveCount"] == "3"


def test_console_redrive_returns_dead_letters_to_their_queue(fast_sqs: Any) -> None:
    moto_move_tasks.apply()
    url, dlq, dlq_arn = queue_with_dlq(fast_sqs, 1, VisibilityTimeout="0")
    fast_sqs.send_message(QueueUrl=url, MessageBody="poison")
    assert len(receive(fast_sqs, url)) == 1
    assert receive(fast_sqs, url, WaitTimeSeconds=1) == []  # now in the DLQ
    assert depths(fast_sqs, dlq) == (1, 0, 0)
    fast_sqs.start_message_move_task(SourceArn=dlq_arn)
    for _ in range(100):
        [task] = fast_sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        if task["Status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert task["Status"] == "COMPLETED"
    [moved] = receive(fast_sqs, url, WaitTimeSeconds=5)
    assert moved["Body"] == "poison"
    assert moved["Attributes"]["ApproximateReceiveCount"] == "1"  # a new message
    assert depths(fast_sqs, dlq) == (0, 0, 0)


def test_expired_messages_are_not_returned(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"
    ]
    fast_sqs.send_message(QueueUrl=url, MessageBody="old")
    fast_sqs.send_message(QueueUrl=url, MessageBody="new")
    message: Any = backend_queue("short")._messages[0]
    message.sent_timestamp -= 120_000  # sent two minutes ago
    # The expired one is gone; the one behind it is still delivered.
    assert [m["Body"] for m in receive(fast_sqs, url)] == ["new"]
    assert depths(fast_sqs, url) == (0, 1, 0)


def test_purge(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(QueueName="q")["QueueUrl"]
    for body in ("a", "b"):
        fast_sqs.send_message(QueueUrl=url, MessageBody=body)
    [received, _] = receive(fast_sqs, url)
    fast_sqs.purge_queue(QueueUrl=url)
    assert depths(fast_sqs, url) == (0, 0, 0)
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        fast_sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
    fast_sqs.send_message(QueueUrl=url, MessageBody="c")
    assert [m["Body"] for m in receive(fast_sqs, url)] == ["c"]


def test_deleted_messages_are_let_go(fast_sqs: Any) -> None:
    """What was sent, received and deleted is not kept (moto kept every message ever made,
    the copy each receive returns included)."""
    url = fast_sqs.create_queue(QueueName="q")["QueueUrl"]
    fast_sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(10)]
    )
    refs = [weakref.ref(message) for message in backend_queue("q")._messages]
    messages = receive(fast_sqs, url)
    for start in (0, 5):
        fast_sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages[start : start + 5])
            ],
        )
    gc.collect()
    assert [ref() for ref in refs] == [None] * 10


def test_fifo_queues_keep_motos_behaviour(fast_sqs: Any) -> None:
    url = fast_sqs.create_queue(
        QueueName="q.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for body in ("1", "2", "2"):  # the second "2" is a duplicate
        fast_sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    [first] = receive(fast_sqs, url, 1)
    assert first["Body"] == "1"
    assert receive(fast_sqs, url) == []  # the group waits for the first
    assert depths(fast_sqs, url) == (1, 1, 0)
    fast_sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert [m["Body"] for m in receive(fast_sqs, url)] == ["2"]


@pytest.fixture
def server_sqs() -> Iterator[Any]:
    """The local stack's configuration: a moto server with both patches."""
    from moto.server import ThreadedMotoServer

    moto_fast.apply()
    moto_move_tasks.apply()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    server.stop()


def test_concurrent_consumers_get_each_message_once(server_sqs: Any) -> None:
    url = server_sqs.create_queue(QueueName="shared")["QueueUrl"]
    sent = [str(i) for i in range(300)]
    for start in range(0, len(sent), 10):
        server_sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": body, "MessageBody": body} for body in sent[start : start + 10]],
        )
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while messages := server_sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            with lock:
                seen.extend(m["Body"] for m in messages)
            server_sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    consumers = [threading.Thread(target=consume) for _ in range(4)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join()
    duplicates = [body for body, n in Counter(seen).items() if n > 1]
    assert duplicates == []
    assert sorted(seen, key=int) == sent
    assert depths(server_sqs, url) == (0, 0, 0)


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto_fast, "_applied", False)
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match=r"patches moto 5\.2\.5"):
        moto_fast.apply()
