"""Authorization follows the account's current state, not the token's 15-minute snapshot.

Each test holds on to a token issued before the change (as an attacker or a careless client
would) and checks what its very next request gets. The client runs the real authorizer for
every request, so its context is what API Gateway would hand over from its policy cache.
"""

from __future__ import annotations

import time

import jwt

from tests.integration.api.conftest import PASSWORD, SECRET, make_account
from tests.support.apigw import ApiClient


def user_id(client: ApiClient) -> str:
    return str(client.get("/v1/auth/me").body["id"])


def test_a_demoted_admin_cannot_use_its_old_token_as_admin(app, services, db, as_admin) -> None:
    # The attack run's fuzzer demoted itself and created a new admin with its old token.
    make_account(db, "second@example.com", role="admin")
    second = ApiClient(app, services)
    second.login("second@example.com", PASSWORD)
    assert as_admin.put(f"/v1/users/{user_id(second)}/role", {"role": "user"}).status == 200

    new_admin = second.post(
        "/v1/users", {"email": "evil@example.com", "password": "0123456789", "role": "admin"}
    )
    assert new_admin.status == 403
    assert new_admin.error_code == "forbidden"
    assert second.put(f"/v1/users/{user_id(second)}/role", {"role": "admin"}).status == 403
    assert second.get("/v1/users").status == 403
    assert second.get("/v1/audit").status == 403
    assert second.get("/v1/queues").status == 403
    # Still a user, with the same session: its own jobs work.
    assert second.post("/v1/jobs", {"type": "noop"}).status == 201
    assert (
        db.execute("SELECT count(*) AS n FROM users WHERE email = 'evil@example.com'")[0]["n"] == 0
    )


def test_a_promoted_user_is_admin_on_its_next_request(as_admin, as_user) -> None:
    assert as_user.get("/v1/users").status == 403
    assert as_admin.put(f"/v1/users/{user_id(as_user)}/role", {"role": "admin"}).status == 200
    assert as_user.get("/v1/users").status == 200


def test_a_disabled_users_token_creates_and_reads_nothing(as_admin, as_user, db) -> None:
    job = as_user.post("/v1/jobs", {"type": "noop"}).body
    assert as_admin.patch(f"/v1/users/{user_id(as_user)}", {"disabled": True}).status == 200

    for attempt in (
        as_user.post("/v1/jobs", {"type": "noop"}),
        as_user.post("/v1/jobs/batch", {"jobs": [{"type": "noop"}]}),
        as_user.get("/v1/jobs"),
        as_user.get(f"/v1/jobs/{job['id']}"),
        as_user.post(f"/v1/jobs/{job['id']}/cancel"),
        as_user.get("/v1/auth/me"),
    ):
        assert attempt.status in (401, 403), attempt.body
        assert attempt.body["error"]["code"] in ("unauthorized", "forbidden")
    assert db.execute("SELECT count(*) AS n FROM jobs")[0]["n"] == 1


def test_a_deleted_users_token_lists_nothing(as_admin, as_user) -> None:
    as_user.post("/v1/jobs", {"type": "noop"})
    assert as_admin.delete(f"/v1/users/{user_id(as_user)}").status == 204
    listed = as_user.get("/v1/jobs")
    assert listed.status == 401
    assert listed.error_code == "unauthorized"
    assert as_user.post("/v1/jobs", {"type": "noop"}).status == 401


def test_logout_ends_the_access_token_of_that_session(app, services, db) -> None:
    make_account(db, "ann@example.com")
    phone, laptop = ApiClient(app, services), ApiClient(app, services)
    pair = phone.login("ann@example.com", PASSWORD)
    laptop.login("ann@example.com", PASSWORD)
    assert phone.post("/v1/auth/logout", {"refresh_token": pair["refresh_token"]}).status == 204

    assert phone.get("/v1/jobs").status == 401
    assert phone.post("/v1/jobs", {"type": "noop"}).status == 401
    # Another login of the same account is another session: it carries on.
    assert laptop.get("/v1/jobs").status == 200


def test_a_reused_refresh_token_ends_the_access_tokens_of_its_session(client, db) -> None:
    make_account(db, "ann@example.com")
    first = client.login("ann@example.com", PASSWORD)
    rotated = client.post("/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, token=None)
    assert rotated.status == 200
    client.token = rotated.body["access_token"]
    assert client.get("/v1/jobs").status == 200
    # The first refresh token comes back (stolen): the whole session ends, access tokens too.
    stolen = client.post("/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, token=None)
    assert stolen.status == 401
    assert client.get("/v1/jobs").status == 401


def test_a_password_change_ends_the_other_sessions_only(app, services, db) -> None:
    make_account(db, "ann@example.com")
    phone, laptop = ApiClient(app, services), ApiClient(app, services)
    phone.login("ann@example.com", PASSWORD)
    laptop.login("ann@example.com", PASSWORD)
    changed = laptop.patch(
        f"/v1/users/{user_id(laptop)}",
        {"password": "a new long password", "current_password": PASSWORD},
    )
    assert changed.status == 200
    assert laptop.get("/v1/jobs").status == 200  # the session that changed it goes on
    assert phone.get("/v1/jobs").status == 401  # a thief holding the old one does not


def test_a_token_without_a_session_is_refused(client, as_user) -> None:
    """Tokens must name their session: one without (forged claims aside, issued before
    sessions were checked) gets a 401, and the client's refresh gets it a new one."""
    claims = jwt.decode(as_user.token, SECRET, algorithms=["HS256"], audience="taskmill-api")
    claims.pop("sid", None)
    claims["iat"] = claims["nbf"] = int(time.time())
    legacy = jwt.encode(claims, SECRET, algorithm="HS256")
    assert client.get("/v1/jobs", token=legacy).status == 401


def test_create_checks_the_account_within_two_round_trips(as_user, db) -> None:
    before = db.round_trips
    assert as_user.post("/v1/jobs", {"type": "noop"}).status == 201
    assert db.round_trips - before <= 2


def test_a_disabled_users_schedules_create_nothing(as_user, as_admin, db, job_queue, services):
    from taskmill.jobs.store import JobFilter, JobStore
    from taskmill.lifecycle.schedules import fire_due
    from taskmill.schedules.store import ScheduleStore

    me = as_user.get("/v1/auth/me").body
    created = as_user.post(
        "/v1/schedules", {"name": "m", "cron": "*/5 * * * *", "job": {"type": "noop"}}
    )
    assert created.status == 201
    assert as_admin.patch(f"/v1/users/{me['id']}", {"disabled": True}).status == 200
    db.execute("UPDATE schedules SET next_fire_at = now() - interval '1 minute'")
    fired = fire_due(ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=10)
    assert fired.created == 0
    assert JobStore(db).list_jobs(JobFilter()).items == []


def test_an_account_disabled_after_the_sweep_read_its_due_schedules_creates_nothing(
    as_user, as_admin, db, job_queue, services, monkeypatch
):
    """The sweep reads the due schedules (skipping disabled owners), then fires them one by
    one: an account disabled in between (200) had its schedule's job created all the same.
    The firing checks the owner again; the run waits, as any disabled owner's does."""
    from taskmill.jobs.store import JobFilter, JobStore
    from taskmill.lifecycle.schedules import fire_due
    from taskmill.schedules.store import ScheduleStore

    me = as_user.get("/v1/auth/me").body
    created = as_user.post(
        "/v1/schedules", {"name": "m", "cron": "*/5 * * * *", "job": {"type": "noop"}}
    )
    assert created.status == 201
    db.execute("UPDATE schedules SET next_fire_at = now() - interval '1 minute'")
    [waiting] = db.execute("SELECT next_fire_at FROM schedules")
    read_due = ScheduleStore.due
    answers = []

    def due_then_disabled(self, *, limit):
        due = read_due(self, limit=limit)
        answers.append(as_admin.patch(f"/v1/users/{me['id']}", {"disabled": True}))
        return due

    monkeypatch.setattr(ScheduleStore, "due", due_then_disabled)
    fired = fire_due(ScheduleStore(db), JobStore(db), job_queue, services.registry, limit=10)
    assert [a.status for a in answers] == [200]
    assert fired.created == 0
    assert JobStore(db).list_jobs(JobFilter()).items == []
    assert db.execute("SELECT next_fire_at FROM schedules") == [waiting]
