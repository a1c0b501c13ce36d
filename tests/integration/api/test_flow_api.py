"""Flow control over the API handler (SPEC §6): limit keys, /v1/limits, pause and resume."""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import UUID

import pytest
from taskmill.api.services import ApiServices
from taskmill.auth.tokens import TokenConfig
from taskmill.db import Database
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.queue.sqs import JobQueue
from taskmill.settings import ApiSettings, JobTypeSettings

from tests.integration.api.conftest import FAST, SECRET
from tests.integration.worker.conftest import queue_messages

EXTERNAL_TYPES = (
    '[{"name": "invoice", "limit_keys": ["customer:{payload.customer_id}", "type:{type}"],'
    ' "schema": {"type": "object"}}]'
)


@pytest.fixture
def services(api_settings: ApiSettings, db: Database, job_queue: JobQueue) -> ApiServices:
    return ApiServices(
        settings=api_settings.model_copy(update={"owner_concurrency": 3}),
        db=db,
        queue=job_queue,
        registry=build_registry(JobTypeSettings(external_types=EXTERNAL_TYPES)),
        tokens=TokenConfig(secret=SECRET, issuer="taskmill", audience="taskmill-api"),
        logger=logging.getLogger("test.api"),
        passwords=FAST,
    )


def user_id(client: Any) -> str:
    return str(client.get("/v1/auth/me").body["id"])


def test_jobs_hold_their_keys_and_their_types_templates(as_user: Any) -> None:
    r = as_user.post(
        "/v1/jobs",
        {"type": "invoice", "payload": {"customer_id": 42}, "limit_keys": ["region:eu"]},
    )
    assert r.status == 201, r.body
    assert r.body["limit_keys"] == ["customer:42", "type:invoice", "region:eu"]
    assert as_user.get(f"/v1/jobs/{r.body['id']}").body["limit_keys"] == r.body["limit_keys"]
    [invoice] = [t for t in as_user.get("/v1/job-types").body if t["name"] == "invoice"]
    assert invoice["limit_keys"] == ["customer:{payload.customer_id}", "type:{type}"]
    assert invoice["paused"] is False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "noop", "limit_keys": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ({"type": "noop", "limit_keys": ["has space"]}, "limit_keys"),
        ({"type": "noop", "limit_keys": ["x" * 129]}, "limit_keys"),
        ({"type": "noop", "limit_keys": ["owner:someone-else"]}, "owner"),
        ({"type": "invoice", "payload": {}}, "customer_id"),
        ({"type": "invoice", "payload": {"customer_id": 1}, "limit_keys": ["a", "b", "c"]}, "4"),
    ],
)
def test_bad_limit_keys_are_refused(as_user: Any, db: Database, body: Any, words: str) -> None:
    r = as_user.post("/v1/jobs", body)
    assert r.status == 400, r.body
    assert r.body["error"]["code"] == "invalid_input"
    assert words in str(r.body["error"])
    assert JobStore(db).count_unfinished(UUID(user_id(as_user))) == 0  # nothing half-written


def test_limits_are_admin_only(as_user: Any) -> None:
    assert as_user.get("/v1/limits").status == 403
    assert as_user.put("/v1/limits/k", {"concurrency": 1}).status == 403
    assert as_user.delete("/v1/limits/k").status == 403
    assert as_user.post("/v1/queues/normal/pause").status == 403
    assert as_user.post("/v1/job-types/noop/pause").status == 403


def test_limits_are_set_shown_with_their_use_and_removed(
    as_admin: Any, as_user: Any, db: Database
) -> None:
    put = as_admin.put(
        "/v1/limits/customer:42", {"concurrency": 2, "rate": {"limit": 10, "period_seconds": 60}}
    )
    assert put.status == 200, put.body
    assert put.body["concurrency"] == 2
    assert put.body["rate"] == {"limit": 10, "period_seconds": 60.0}
    assert put.body["source"] == "limit"
    job = as_user.post("/v1/jobs", {"type": "invoice", "payload": {"customer_id": 42}}).body
    JobStore(db).claim_external(types=None, limit=1, actor="w")

    got = as_admin.get("/v1/limits/customer:42").body
    assert got["use"]["running"] == 1
    assert got["use"]["started_in_window"] == 1
    assert got["use"]["tokens_available"] == pytest.approx(9, abs=0.1)
    assert [item["key"] for item in as_admin.get("/v1/limits").body["items"]] == ["customer:42"]
    assert as_user.get(f"/v1/jobs/{job['id']}").body["status"] == "running"

    audit = as_admin.get("/v1/audit?action=limit.put").body["items"]
    assert audit[0]["target_id"] == "customer:42"
    assert as_admin.delete("/v1/limits/customer:42").status == 204
    assert as_admin.get("/v1/limits/customer:42").status == 404
    assert as_admin.delete("/v1/limits/customer:42").status == 404


def test_an_owner_key_shows_the_environment_default(as_admin: Any, as_user: Any) -> None:
    got = as_admin.get(f"/v1/limits/owner:{user_id(as_user)}")
    assert got.status == 200, got.body
    assert got.body["source"] == "default"
    assert got.body["concurrency"] == 3
    assert as_admin.get("/v1/limits/nobody-limited-this").status == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"concurrency": None, "rate": None},
        {"concurrency": -1},
        {"rate": {"limit": 0, "period_seconds": 1}},
        {"rate": {"limit": 5, "period_seconds": 0}},
        {"rate": {"limit": 5}},
        {"concurrency": 1, "burst": 3},
    ],
)
def test_bad_limits_are_refused(as_admin: Any, body: Any) -> None:
    r = as_admin.put("/v1/limits/k", body)
    assert r.status == 400, r.body
    assert r.body["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("period", [1e-07, 0.001, 0.999])
def test_a_rate_period_under_a_second_is_refused(as_admin: Any, period: float) -> None:
    """Holds are whole seconds (SQS delays) and at least one; a shorter period was stored,
    down to 1e-07 s, a rate no hold or window could follow."""
    r = as_admin.put("/v1/limits/k", {"rate": {"limit": 5, "period_seconds": period}})
    assert r.status == 400, r.body
    assert r.body["error"]["code"] == "invalid_input"
    [detail] = r.body["error"]["details"]
    assert detail["loc"][-2:] == ["rate", "period_seconds"]
    assert as_admin.get("/v1/limits/k").status == 404


def test_a_rate_period_of_one_second_is_the_shortest(as_admin: Any) -> None:
    r = as_admin.put("/v1/limits/k", {"rate": {"limit": 5, "period_seconds": 1}})
    assert r.status == 200, r.body
    assert r.body["rate"] == {"limit": 5, "period_seconds": 1.0}


def test_a_sub_second_rate_stored_before_the_minimum_still_reads(
    as_admin: Any, db: Database
) -> None:
    """A limit put before periods were held to a second keeps working and is shown as it is."""
    db.execute(
        "INSERT INTO limits (key, rate_limit, rate_period_seconds, tokens, refilled_at) "
        "VALUES ('old-fast', 2, 0.5, 2, now())"
    )
    got = as_admin.get("/v1/limits/old-fast")
    assert got.status == 200, got.body
    assert got.body["rate"] == {"limit": 2, "period_seconds": 0.5}
    assert [i["rate"] for i in as_admin.get("/v1/limits").body["items"]] == [got.body["rate"]]


def test_a_bad_key_is_refused(as_admin: Any) -> None:
    assert as_admin.put("/v1/limits/bad key", {"concurrency": 1}).status in (400, 404)
    r = as_admin.put("/v1/limits/" + "x" * 129, {"concurrency": 1})
    assert r.status == 400, r.body


def test_pausing_a_queue_holds_its_work_and_resuming_sends_it(
    as_admin: Any, as_user: Any, sqs: Any, job_queue: JobQueue, db: Database
) -> None:
    paused = as_admin.post("/v1/queues/normal/pause")
    assert paused.status == 200, paused.body
    assert paused.body["paused"] is True
    assert as_admin.post("/v1/queues/normal/pause").status == 200  # twice: no change
    queues = {q["priority"]: q for q in as_admin.get("/v1/queues").body["items"]}
    assert queues["normal"]["paused"] is True
    assert queues["high"]["paused"] is False

    job = as_user.post("/v1/jobs", {"type": "noop"})
    assert job.status == 201  # accepted while paused
    assert JobStore(db).claim_batch([job.body["id"]]).claimed == []
    queue_messages(sqs, job_queue.queue_url("normal"))  # drain what creation sent

    resumed = as_admin.post("/v1/queues/normal/resume")
    assert resumed.status == 200
    assert resumed.body["paused"] is False
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))  # sent again at once
    assert job.body["id"] in message["Body"]
    assert [j.id for j in JobStore(db).claim_batch([job.body["id"]]).claimed]
    actions = [e["action"] for e in as_admin.get("/v1/audit").body["items"]]
    assert actions.count("queue.pause") == 1
    assert "queue.resume" in actions


def test_pausing_a_job_type(as_admin: Any, as_user: Any) -> None:
    assert as_admin.post("/v1/job-types/no-such-type/pause").status == 404
    assert as_admin.post("/v1/queues/urgent/pause").status in (400, 404)
    r = as_admin.post("/v1/job-types/sleep/pause")
    assert r.status == 200, r.body
    assert r.body == {**r.body, "kind": "type", "name": "sleep", "paused": True}
    [sleep] = [t for t in as_user.get("/v1/job-types").body if t["name"] == "sleep"]
    assert sleep["paused"] is True
    assert as_admin.post("/v1/job-types/sleep/resume").body["paused"] is False
    # A name arrives as the client encoded it (see the percent-encoded limit key below).
    assert as_admin.post("/v1/job-types/%73leep/pause").body["name"] == "sleep"
    assert as_admin.post("/v1/job-types/sleep/resume").body["paused"] is False


def test_a_key_sent_percent_encoded_names_the_same_limit(as_admin: Any) -> None:
    # API Gateway's REST APIs pass the path as the client encoded it, and HTTP clients
    # encode ':' in a path segment (encodeURIComponent, quote(..., safe="")).
    put = as_admin.put("/v1/limits/customer%3A42", {"concurrency": 2})
    assert put.status == 200, put.body
    assert put.body["key"] == "customer:42"
    assert as_admin.get("/v1/limits/customer:42").body["concurrency"] == 2
    assert as_admin.get("/v1/limits/customer%3a42").body["key"] == "customer:42"
    for encoded, key in [("bad%20key", "bad key"), ("customer:42%0A", "customer:42\n")]:
        refused = as_admin.put(f"/v1/limits/{encoded}", {"concurrency": 1})
        assert refused.status == 400, refused.body
        assert refused.body["error"]["details"] == {"key": key}
    assert as_admin.delete("/v1/limits/customer%3A42").status == 204


@pytest.mark.parametrize("cursor", ["%C2%B2", "%D9%A3", "1%C2%B2"])
def test_an_audit_cursor_of_other_digits_is_a_400(as_admin: Any, cursor: str) -> None:
    """`str.isdigit` is true for superscripts ("²") and other scripts' digits ("٣"):
    int() refuses the first (a 500 reached the client) and reads the second as 3."""
    answer = as_admin.get(f"/v1/audit?cursor={cursor}")
    assert answer.status == 400
    assert answer.body["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    "key",
    [
        "owner:" + "-" * 36,
        "owner:" + "a" * 36,
        "owner:6F9619FF-8B86-D011-B42D-00CF4FC964FF",  # not how the claim writes owner keys
    ],
)
def test_an_owner_key_that_names_no_owner(
    as_admin: Any, as_user: Any, db: Database, key: str
) -> None:
    """`owner:` and 36 characters of hex digits and dashes passed for an owner's key, and
    the use query cast them to a UUID: once one was stored, GET /v1/limits answered 400 "a
    value has the wrong format" whenever a job ran, until the key was deleted. And an owner
    key in capitals was counted as that owner's in the use, while the claim, which compares
    with `owner:<id>` as Postgres writes ids, never applied it. A PUT now refuses it; one
    stored before is a plain key (it constrains nothing, as the claim always read it)."""
    refused = as_admin.put(f"/v1/limits/{key}", {"concurrency": 1})
    assert refused.status == 400
    assert refused.body["error"]["code"] == "invalid_input"
    db.execute("INSERT INTO limits (key, concurrency) VALUES (%s, 1)", (key,))
    job = as_user.post("/v1/jobs", {"type": "sleep", "payload": {"seconds": 1}}).body
    assert JobStore(db).claim_batch([UUID(job["id"])]).claimed  # a job runs
    listed = as_admin.get("/v1/limits")
    assert listed.status == 200, listed.body
    [stored] = [item for item in listed.body["items"] if item["key"] == key]
    assert stored["use"]["running"] == 0
    assert as_admin.get(f"/v1/limits/{key}").body["use"]["running"] == 0
    assert as_admin.delete(f"/v1/limits/{key}").status == 204


def _held_and_drained(
    as_admin: Any, as_user: Any, sqs: Any, job_queue: JobQueue, db: Database, limit: dict
) -> tuple[str, str]:
    """Two jobs on key `customer:7` under `limit`: the first starts, the second is held back,
    and the queue is left empty (as if the held one's message were delayed for minutes)."""
    assert as_admin.put("/v1/limits/customer:7", limit).status == 200
    ids = [
        as_user.post("/v1/jobs", {"type": "noop", "limit_keys": ["customer:7"]}).body["id"]
        for _ in range(2)
    ]
    queue_messages(sqs, job_queue.queue_url("normal"))  # what creation sent
    claim = JobStore(db).claim_batch(ids)
    assert [str(j.id) for j in claim.claimed] == ids[:1]
    assert [str(h.job.id) for h in claim.held] == ids[1:]
    return ids[0], ids[1]


@pytest.mark.parametrize(
    ("limit", "change"),
    [
        ({"rate": {"limit": 1, "period_seconds": 3600}}, None),
        ({"rate": {"limit": 1, "period_seconds": 3600}}, {"concurrency": 5}),
        ({"concurrency": 1}, {"concurrency": 2}),
        ({"concurrency": 1}, {"rate": {"limit": 10, "period_seconds": 1}}),
    ],
)
def test_removing_or_loosening_a_limit_sends_the_jobs_it_held_at_once(
    as_admin: Any,
    as_user: Any,
    sqs: Any,
    job_queue: JobQueue,
    db: Database,
    limit: dict,
    change: dict | None,
) -> None:
    """A job a limit held back waits for a delayed message (up to 10 min for a rate). When
    an admin removed the limit, or raised it, in an incident to let the work through, the
    jobs still waited out that delay. Now the oldest ones get a message at once; the running
    one gets none."""
    _running, held = _held_and_drained(as_admin, as_user, sqs, job_queue, db, limit)
    if change is None:
        assert as_admin.delete("/v1/limits/customer:7").status == 204
    else:
        assert as_admin.put("/v1/limits/customer:7", change).status == 200
    sent = [
        json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, job_queue.queue_url("normal"))
    ]
    assert sent == [held]
    assert [str(j.id) for j in JobStore(db).claim_batch([UUID(held)]).claimed] == [held]


@pytest.mark.parametrize(
    "change",
    [
        {"concurrency": 1},  # the same
        {"concurrency": 0},  # tighter
        {"concurrency": 1, "rate": {"limit": 1, "period_seconds": 60}},  # a rate added
    ],
)
def test_a_limit_made_no_looser_sends_nothing(
    as_admin: Any, as_user: Any, sqs: Any, job_queue: JobQueue, db: Database, change: dict
) -> None:
    _held_and_drained(as_admin, as_user, sqs, job_queue, db, {"concurrency": 1})
    assert as_admin.put("/v1/limits/customer:7", change).status == 200
    assert queue_messages(sqs, job_queue.queue_url("normal")) == []


def test_loosening_an_owners_limit_sends_that_owners_held_jobs_only(
    as_admin: Any, as_user: Any, sqs: Any, job_queue: JobQueue, db: Database
) -> None:
    """`owner_concurrency` is 3 here: a user's fourth job is held by their owner key."""
    ids = [as_user.post("/v1/jobs", {"type": "noop"}).body["id"] for _ in range(4)]
    other = as_admin.post("/v1/jobs", {"type": "noop"}).body["id"]
    queue_messages(sqs, job_queue.queue_url("normal"))
    claim = JobStore(db).claim_batch(ids, owner_concurrency=3)
    assert len(claim.claimed) == 3
    [held] = [str(h.job.id) for h in claim.held]
    key = f"owner:{user_id(as_user)}"
    assert as_admin.put(f"/v1/limits/{key}", {"concurrency": 10}).status == 200
    sent = [
        json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, job_queue.queue_url("normal"))
    ]
    assert sent == [held]
    assert other not in sent


def test_loosening_a_limit_sends_only_as_many_as_it_now_lets_start(
    as_admin: Any, as_user: Any, sqs: Any, job_queue: JobQueue, db: Database
) -> None:
    """Re-sending every held job (up to 500) when a concurrency went from 1 to 2 started
    one of them; the others were held again, each now with two messages in circulation."""
    assert as_admin.put("/v1/limits/customer:9", {"concurrency": 1}).status == 200
    ids = [
        as_user.post("/v1/jobs", {"type": "noop", "limit_keys": ["customer:9"]}).body["id"]
        for _ in range(4)
    ]
    queue_messages(sqs, job_queue.queue_url("normal"))
    claim = JobStore(db).claim_batch([UUID(i) for i in ids])
    assert [str(j.id) for j in claim.claimed] == ids[:1]
    assert as_admin.put("/v1/limits/customer:9", {"concurrency": 2}).status == 200
    sent = [
        json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, job_queue.queue_url("normal"))
    ]
    assert sent == ids[1:2]  # one slot free: the oldest held job
    assert as_admin.delete("/v1/limits/customer:9").status == 204
    sent = [
        json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, job_queue.queue_url("normal"))
    ]
    assert sorted(sent) == sorted(ids[1:])  # no limit left: all of them
