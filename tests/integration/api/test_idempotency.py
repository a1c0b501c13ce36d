"""Idempotency-Key per SPEC §3: the same key and body return the original job (200); the
same key with another body is 409 `idempotency_mismatch`; a key older than the retention
window is forgotten."""

from __future__ import annotations


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


def test_an_empty_key_is_a_key_like_any_other(as_user) -> None:
    assert _create(as_user, {"type": "noop", "name": "a"}, "").status == 201
    other = _create(as_user, {"type": "noop", "name": "b"}, "")
    assert (other.status, other.error_code) == (409, "idempotency_mismatch")


def test_an_empty_key_on_a_batch_is_a_key_like_any_other(as_user) -> None:
    body = {"jobs": [{"type": "noop"}, {"type": "noop", "name": "b"}]}
    first = as_user.post("/v1/jobs/batch", body, headers={"Idempotency-Key": ""})
    again = as_user.post("/v1/jobs/batch", body, headers={"Idempotency-Key": ""})
    assert (first.status, again.status) == (201, 200)
    assert [j["id"] for j in again.body["items"]] == [j["id"] for j in first.body["items"]]
