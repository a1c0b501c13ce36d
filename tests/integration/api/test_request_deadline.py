"""The request deadline applies to every API send, not only creates."""

from __future__ import annotations

from tests.integration.worker.conftest import queue_messages


def test_external_complete_late_in_its_time_leaves_its_sends_to_the_sweep(
    as_user, as_worker, sqs, job_queue
) -> None:
    """`/complete` (and `/fail`) send a released dependent and a webhook job: two `send`
    calls without a deadline, each up to WORST_CALL_SECONDS (15 s) in a brownout, i.e.
    past API Gateway's 29 s. With 15 s left, `POST /v1/jobs` starts no SQS call; `/complete`
    still starts two."""
    parent = as_user.post(
        "/v1/jobs", {"type": "render", "webhook_url": "https://example.com/hook"}
    ).body
    as_user.post("/v1/jobs", {"type": "noop", "depends_on": [parent["id"]]})
    [claimed] = as_worker.post("/v1/workers/claim", {}).body
    before = job_queue.calls
    r = as_worker.post(
        f"/v1/jobs/{parent['id']}/complete",
        {"lease_token": claimed["lease_token"]},
        remaining_seconds=15,
    )
    assert r.status == 200
    assert job_queue.calls - before == 0, f"{job_queue.calls - before} SQS calls started"
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []
