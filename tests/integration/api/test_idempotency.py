"""Idempotency-Key per SPEC §3: the same key and body return the original job (200); the
same key with another body is 409 `idempotency_mismatch`; a key older than the retention
window is forgotten."""

from __future__ import annotations

from typing import Any

import pytest


def _create(client, body, key):
    return client.post("/v1/jobs", body, headers={"Idempotency-Key": key})


def test_same_key_and_body_return_the_original(as_user) -> None:
    first = _create(as_user, {"type": "noop", "name": "a"}, "k-same")
    again = _create(as_user, {"type": "noop", "name": "a"}, "k-same")
    assert (first.status, again.status) == (201, 200)
    assert again.body["id"] == first.body["id"]


def test_same_key_with_another_body_is_a_conflict(as_user) -> None:
    first = _create(as_user, {"type": "noop", "name": "a"}, "k-other")
    other = _create(as_user, {"type": "noop", "name": "b"}, "k-other")
    assert first.status == 201
    assert other.status == 409
    assert other.error_code == "idempotency_mismatch"


def test_a_repeated_batch_returns_its_jobs_and_a_changed_one_is_refused(as_user) -> None:
    body = {"jobs": [{"type": "noop", "name": "x"}, {"type": "noop", "name": "y"}]}
    first = as_user.post("/v1/jobs/batch", body, headers={"Idempotency-Key": "b1"})
    again = as_user.post("/v1/jobs/batch", body, headers={"Idempotency-Key": "b1"})
    assert (first.status, again.status) == (201, 200)
    assert [j["id"] for j in again.body["items"]] == [j["id"] for j in first.body["items"]]
    changed = {"jobs": [{"type": "noop", "name": "x"}, {"type": "noop", "name": "z"}]}
    mismatch = as_user.post("/v1/jobs/batch", changed, headers={"Idempotency-Key": "b1"})
    assert (mismatch.status, mismatch.error_code) == (409, "idempotency_mismatch")


def test_a_key_past_its_retention_window_creates_a_new_job(as_user, db, services) -> None:
    services.settings = services.settings.model_copy(update={"idempotency_ttl_seconds": 3600})
    first = _create(as_user, {"type": "noop"}, "k-old")
    db.execute("UPDATE jobs SET created_at = now() - interval '2 hours'")
    later = _create(as_user, {"type": "noop", "name": "a new request"}, "k-old")
    assert later.status == 201
    assert later.body["id"] != first.body["id"]
    assert _create(as_user, {"type": "noop", "name": "a new request"}, "k-old").status == 200


def _names(client) -> list[str]:
    return sorted(job["name"] for job in client.get("/v1/jobs").body["items"])


def test_a_batch_that_differs_from_its_key_creates_nothing(as_user) -> None:
    key = {"Idempotency-Key": "b-grow"}
    x, y = {"type": "noop", "name": "x"}, {"type": "noop", "name": "y"}
    assert as_user.post("/v1/jobs/batch", {"jobs": [x, y]}, headers=key).status == 201
    for other in ([x, y, {"type": "noop", "name": "z"}], [x], [{**x, "name": "w"}, y, x]):
        answer = as_user.post("/v1/jobs/batch", {"jobs": other}, headers=key)
        assert (answer.status, answer.error_code) == (409, "idempotency_mismatch"), other
    assert _names(as_user) == ["x", "y"]


def test_a_single_create_and_a_batch_never_share_a_key(as_user) -> None:
    single = as_user.post("/v1/jobs", {"type": "noop"}, headers={"Idempotency-Key": "s#0"})
    batch = as_user.post(
        "/v1/jobs/batch", {"jobs": [{"type": "noop"}]}, headers={"Idempotency-Key": "s"}
    )
    assert single.status == 201
    assert (batch.status, batch.error_code) == (409, "idempotency_mismatch")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/jobs", {"type": "noop"}), ("/v1/jobs/batch", {"jobs": [{"type": "noop"}]})],
)
def test_an_empty_key_is_refused_and_creates_nothing(as_user, path: str, body: Any) -> None:
    """An empty key is a client's unset variable far more often than a choice; taken as a
    key it made every such create answer the first one's job (or 409)."""
    refused = as_user.post(path, body, headers={"Idempotency-Key": ""})
    assert (refused.status, refused.error_code) == (400, "invalid_input"), refused.body
    assert refused.body["error"]["details"][0]["loc"] == ["header", "idempotency-key"]
    assert as_user.get("/v1/jobs").body["items"] == []


# Keys stored by earlier releases: each fingerprinted its whole request model, defaults
# included, so the hash of the same body changed with every field added (limit_keys), with
# run_at's serialisation (in UTC since da294be) and, for a batch, with 815eea0 (the whole
# batch's, not each job's). A client retrying across a deploy got 409 for its own request.
_BEFORE_FLOW_CONTROL: dict[str, Any] = {
    "backoff_base_seconds": None,
    "backoff_max_seconds": None,
    "delay_seconds": None,
    "depends_on": [],
    "description": None,
    "max_attempts": None,
    "name": None,
    "payload": {},
    "priority": None,
    "run_at": None,
    "tags": [],
    "timeout_seconds": None,
    "webhook_url": None,
}


def _sha(value) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _stored_as(db, key: str, value) -> None:
    """What an earlier release stored with `key`: the fingerprint of `value`, its dump."""
    db.execute(
        "UPDATE jobs SET idempotency_hash = %s WHERE idempotency_key = %s", (_sha(value), key)
    )


def test_the_fingerprint_is_of_what_the_client_set() -> None:
    """Defaults are left out, so a field a later release adds at its default leaves the
    fingerprint of every earlier request as it was. Changing this breaks every key stored in
    the last day: keep the old computation in taskmill.api.fingerprints' earlier ones."""
    from taskmill.api.fingerprints import fingerprint
    from taskmill.api.models import JobBatchCreate, JobCreate

    assert fingerprint(JobCreate(type="noop")) == _sha({"type": "noop"})
    assert fingerprint(JobCreate.model_validate({"type": "noop", "priority": None})) == _sha(
        {"type": "noop"}
    )
    batch = JobBatchCreate.model_validate({"jobs": [{"type": "noop", "name": "a"}]})
    assert fingerprint(batch) == _sha({"jobs": [{"type": "noop", "name": "a"}]})


def test_a_key_an_earlier_release_stored_still_answers_the_original(as_user, db) -> None:
    bodies: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        # Before flow control (no limit_keys), run_at as the client wrote it.
        "k-0009": (
            {"type": "noop", "name": "a", "run_at": "2030-01-01T10:00:00+02:00"},
            {
                **_BEFORE_FLOW_CONTROL,
                "type": "noop",
                "name": "a",
                "run_at": "2030-01-01T10:00:00+02:00",
            },
        ),
        # Flow control, run_at as written (before da294be).
        "k-0011": (
            {"type": "noop", "tags": ["x"], "run_at": "2030-01-01T10:00:00-05:00"},
            {
                **_BEFORE_FLOW_CONTROL,
                "type": "noop",
                "tags": ["x"],
                "limit_keys": [],
                "run_at": "2030-01-01T10:00:00-05:00",
            },
        ),
        # The release before this one: the whole model, run_at in UTC.
        "k-0017": (
            {"type": "noop", "limit_keys": ["c:1"], "run_at": "2030-01-01T10:00:00+02:00"},
            {
                **_BEFORE_FLOW_CONTROL,
                "type": "noop",
                "limit_keys": ["c:1"],
                "run_at": "2030-01-01T08:00:00Z",
            },
        ),
    }
    for key, (body, stored) in bodies.items():
        first = _create(as_user, body, key)
        assert first.status == 201, first.body
        _stored_as(db, key, stored)
        again = _create(as_user, body, key)
        assert (again.status, again.body["id"]) == (200, first.body["id"]), key
        other = _create(as_user, {**body, "name": "another"}, key)
        assert (other.status, other.error_code) == (409, "idempotency_mismatch"), key


def test_a_batch_key_an_earlier_release_stored_still_answers_the_original(as_user, db) -> None:
    x, y = {"type": "noop", "name": "x"}, {"type": "noop", "name": "y", "priority": "high"}
    dumps = [
        {**_BEFORE_FLOW_CONTROL, "limit_keys": [], **x},
        {**_BEFORE_FLOW_CONTROL, "limit_keys": [], **y},
    ]
    # Before 815eea0: each job its own fingerprint.
    first = as_user.post("/v1/jobs/batch", {"jobs": [x, y]}, headers={"Idempotency-Key": "old"})
    assert first.status == 201
    for index, dump in enumerate(dumps):
        _stored_as(db, f"old#{index}", dump)
    again = as_user.post("/v1/jobs/batch", {"jobs": [x, y]}, headers={"Idempotency-Key": "old"})
    assert again.status == 200
    assert [j["id"] for j in again.body["items"]] == [j["id"] for j in first.body["items"]]
    # 815eea0 up to the release before this one: the whole batch's, defaults included.
    first = as_user.post("/v1/jobs/batch", {"jobs": [x, y]}, headers={"Idempotency-Key": "mid"})
    for index in range(2):
        _stored_as(db, f"mid#{index}", {"jobs": dumps})
    again = as_user.post("/v1/jobs/batch", {"jobs": [x, y]}, headers={"Idempotency-Key": "mid"})
    assert again.status == 200
    assert [j["id"] for j in again.body["items"]] == [j["id"] for j in first.body["items"]]
    changed = as_user.post(
        "/v1/jobs/batch", {"jobs": [x, {**y, "name": "z"}]}, headers={"Idempotency-Key": "mid"}
    )
    assert (changed.status, changed.error_code) == (409, "idempotency_mismatch")
