"""A queued job starts no earlier than its `run_at`, whichever of its messages comes first:
`PATCH /v1/jobs/{id}` may move `run_at` later after the job's message was sent (it sends a
new, delayed one, but SQS cannot take the first one back)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.worker.conftest import queue_messages
from tests.support.lambda_events import receive_event


def delayed(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_queued_job_postponed_does_not_start_on_its_first_message(
    as_user, deliver, sqs, job_queue
) -> None:
    job = as_user.post("/v1/jobs", {"type": "counted"}).body
    assert job["status"] == "queued"  # its message is on the queue, visible now
    edited = as_user.patch(f"/v1/jobs/{job['id']}", {"run_at": later(300)})
    assert edited.status == 200
    assert edited.body["status"] == "queued"  # within SQS's delay: it stays queued

    url = job_queue.queue_url("normal")
    event = receive_event(sqs, url)
    assert [json.loads(r["body"])["job_id"] for r in event["Records"]] == [job["id"]]
    result = deliver(event=event)

    assert result["batchItemFailures"] == []  # the early message is acknowledged...
    seen = as_user.get(f"/v1/jobs/{job['id']}").body
    assert (seen["status"], seen["attempts"], seen["started_at"]) == ("queued", 0, None)
    events = as_user.get(f"/v1/jobs/{job['id']}/events").body["items"]
    assert "running" not in [e["to_status"] for e in events]
    assert queue_messages(sqs, url) == []  # ...and what is left waits for run_at
    assert delayed(sqs, url) >= 1


def test_a_postponed_job_under_a_limit_waits_for_its_run_at(as_user, as_admin, deliver) -> None:
    """The claim that applies limits (a key with a limit, room to spare) holds it too, and
    it takes no token of the key's rate."""
    limit = {"concurrency": 5, "rate": {"limit": 1, "period_seconds": 3600}}
    assert as_admin.put("/v1/limits/crm", limit).status == 200
    job = as_user.post("/v1/jobs", {"type": "counted", "limit_keys": ["crm"]}).body
    assert as_user.patch(f"/v1/jobs/{job['id']}", {"run_at": later(300)}).status == 200

    assert deliver()["batchItemFailures"] == []
    seen = as_user.get(f"/v1/jobs/{job['id']}").body
    assert (seen["status"], seen["attempts"], seen["started_at"]) == ("queued", 0, None)
    use = as_admin.get("/v1/limits/crm").body["use"]
    assert (use["running"], use["tokens_available"]) == (0, 1)  # its token is still there
