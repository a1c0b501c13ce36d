"""Auth and users over the API handler with real API Gateway event shapes."""

from __future__ import annotations

import time
from uuid import UUID

import jwt
from taskmill.audit import AuditLog
from taskmill.auth.service import AuthService
from taskmill.db import Database
from taskmill.errors import Unauthorized
from taskmill.users.store import RefreshTokenStore, User, UserStore
from taskmill.users.throttle import ThrottleStore

from tests.integration.api.conftest import PASSWORD, SECRET, make_account


def test_register_validates_and_refuses_duplicates(client) -> None:
    short = client.post("/v1/auth/register", {"email": "a@example.com", "password": "short"})
    assert short.status == 400
    assert short.error_code == "invalid_input"
    assert "password" in short.body["error"]["details"][0]["loc"]
    assert (
        client.post(
            "/v1/auth/register", {"email": "a@example.com", "password": "0123456789"}
        ).status
        == 201
    )
    again = client.post("/v1/auth/register", {"email": "A@Example.com", "password": "0123456789"})
    assert again.status == 409
    extra = client.post(
        "/v1/auth/register", {"email": "b@example.com", "password": "0123456789", "role": "admin"}
    )
    assert extra.status == 400  # no self-promotion: unknown fields are refused


def test_signup_switch(client, services) -> None:
    services.settings = services.settings.model_copy(update={"allow_signup": False})
    r = client.post("/v1/auth/register", {"email": "x@example.com", "password": "0123456789"})
    assert r.status == 403


def test_login_failures_are_generic_and_audited(client, db) -> None:
    make_account(db, "ann@example.com")
    wrong = client.post(
        "/v1/auth/login", {"email": "ann@example.com", "password": "wrong password!"}, token=None
    )
    unknown = client.post(
        "/v1/auth/login", {"email": "nobody@example.com", "password": "wrong password!"}, token=None
    )
    assert wrong.status == unknown.status == 401
    assert wrong.body["error"]["message"] == unknown.body["error"]["message"]
    actions = [r["action"] for r in db.execute("SELECT action FROM audit_log")]
    assert actions.count("auth.login_failed") == 2


def test_me_and_token_shape(as_user) -> None:
    me = as_user.get("/v1/auth/me")
    assert me.status == 200
    assert me.body["email"] == "ann@example.com"
    assert "password_hash" not in me.body
    claims = jwt.decode(as_user.token, SECRET, algorithms=["HS256"], audience="taskmill-api")
    assert {"sub", "role", "iat", "exp", "iss", "aud", "jti"} <= set(claims)


def test_protected_routes_need_a_valid_token(client, as_user) -> None:
    assert client.get("/v1/auth/me", token=None).status == 401
    assert client.get("/v1/auth/me", token="garbage").status == 401
    expired = jwt.encode(
        {
            "sub": "00000000-0000-0000-0000-000000000001",
            "role": "admin",
            "iat": 1,
            "exp": int(time.time()) - 60,
            "iss": "taskmill",
            "aud": "taskmill-api",
            "jti": "j",
        },
        SECRET,
        algorithm="HS256",
    )
    assert client.get("/v1/auth/me", token=expired).status == 401
    forged = jwt.encode(
        {
            "sub": "00000000-0000-0000-0000-000000000001",
            "role": "admin",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "iss": "taskmill",
            "aud": "taskmill-api",
            "jti": "j",
        },
        "not-the-key" * 4,
        algorithm="HS256",
    )
    assert client.get("/v1/users", token=forged).status == 401


def test_handler_refuses_protected_routes_without_authorizer_context(app, services) -> None:
    from functions.api.handler import handle
    from tests.support.apigw import rest_event
    from tests.support.lambda_events import FakeLambdaContext

    response = handle(rest_event("GET", "/v1/jobs"), FakeLambdaContext(), app, services)
    assert response["statusCode"] == 401


def test_refresh_rotates_and_reuse_revokes_the_family(client, db) -> None:
    make_account(db, "ann@example.com")
    first = client.login("ann@example.com", PASSWORD)
    second = client.post("/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, token=None)
    assert second.status == 200
    assert second.body["refresh_token"] != first["refresh_token"]
    # The old token is replayed (stolen?): refused, and the whole family is revoked.
    replay = client.post("/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, token=None)
    assert replay.status == 401
    latest = client.post(
        "/v1/auth/refresh", {"refresh_token": second.body["refresh_token"]}, token=None
    )
    assert latest.status == 401
    assert (
        db.execute("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.refresh_reuse'")[0][
            "n"
        ]
        == 1
    )


def test_logout_revokes_the_refresh_token(client, db) -> None:
    make_account(db, "ann@example.com")
    pair = client.login("ann@example.com", PASSWORD)
    assert client.post("/v1/auth/logout", {"refresh_token": pair["refresh_token"]}).status == 204
    assert (
        client.post("/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}, token=None).status
        == 401
    )


def test_users_admin_crud_and_self_service(as_admin, as_user, as_other) -> None:
    listed = as_admin.get("/v1/users?limit=2")
    assert listed.status == 200
    assert len(listed.body["items"]) == 2
    assert listed.body["next_cursor"]
    rest = as_admin.get(f"/v1/users?cursor={listed.body['next_cursor']}")
    assert len(rest.body["items"]) == 1
    assert as_user.get("/v1/users").status == 403
    created = as_admin.post(
        "/v1/users", {"email": "w@example.com", "password": "0123456789", "role": "worker"}
    )
    assert created.status == 201
    assert created.body["role"] == "worker"
    me = as_user.get("/v1/auth/me").body
    assert as_user.get(f"/v1/users/{me['id']}").status == 200
    other_id = as_other.get("/v1/auth/me").body["id"]
    assert as_user.get(f"/v1/users/{other_id}").status == 404  # not even acknowledged
    assert as_user.patch(f"/v1/users/{me['id']}", {"disabled": True}).status == 400
    renamed = as_user.patch(
        f"/v1/users/{me['id']}", {"email": "ann2@example.com", "current_password": PASSWORD}
    )
    assert renamed.body["email"] == "ann2@example.com"
    assert as_user.put(f"/v1/users/{me['id']}/role", {"role": "admin"}).status == 403
    assert as_user.delete(f"/v1/users/{other_id}").status == 404
    assert as_admin.delete(f"/v1/users/{other_id}").status == 204
    assert as_admin.get(f"/v1/users/{other_id}").status == 404


def test_role_change_by_admin_is_audited_and_last_admin_is_kept(as_admin, as_user, db) -> None:
    me = as_user.get("/v1/auth/me").body
    promoted = as_admin.put(f"/v1/users/{me['id']}/role", {"role": "admin"})
    assert promoted.status == 200
    assert promoted.body["role"] == "admin"
    admin_id = as_admin.get("/v1/auth/me").body["id"]
    assert as_admin.put(f"/v1/users/{me['id']}/role", {"role": "user"}).status == 200
    last = as_admin.put(f"/v1/users/{admin_id}/role", {"role": "user"})
    assert last.status == 409
    # Its own account: with its password, as any self-delete (then still the last admin).
    assert as_admin.delete(f"/v1/users/{admin_id}", {"current_password": PASSWORD}).status == 409
    assert as_admin.put(f"/v1/users/{me['id']}/role", {"role": "root"}).status == 400
    actions = [r["action"] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("user.role_changed") == 2
    audit = as_admin.get("/v1/audit?action=user.role_changed")
    assert audit.status == 200
    assert len(audit.body["items"]) == 2


def test_disabled_account_cannot_log_in(as_admin, as_user, client) -> None:
    me = as_user.get("/v1/auth/me").body
    assert as_admin.patch(f"/v1/users/{me['id']}", {"disabled": True}).status == 200
    r = client.post(
        "/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD}, token=None
    )
    assert r.status == 401


def test_a_user_cannot_change_its_own_role_and_an_admin_may_step_down_while_another_remains(
    as_admin, as_user
) -> None:
    me = as_user.get("/v1/auth/me").body
    refused = as_user.put(f"/v1/users/{me['id']}/role", {"role": "admin"})
    assert (refused.status, refused.error_code) == (403, "forbidden")
    admin_id = as_admin.get("/v1/auth/me").body["id"]
    # The only admin: stepping down would leave none.
    assert as_admin.put(f"/v1/users/{admin_id}/role", {"role": "user"}).status == 409
    assert as_admin.put(f"/v1/users/{me['id']}/role", {"role": "admin"}).status == 200
    stepped_down = as_admin.put(f"/v1/users/{admin_id}/role", {"role": "user"})
    assert (stepped_down.status, stepped_down.body["role"]) == (200, "user")
    # Its very next request is a user's.
    assert as_admin.get("/v1/audit").status == 403


class _RevokedMeanwhile(UserStore):
    """The account read of a refresh, with the owner's "end my other sessions" (a password
    change, a disable: `revoke_user`) committing on another connection just before it: after
    the refresh marked its token used, before it added the new one."""

    def __init__(self, db: Database, other: Database) -> None:
        super().__init__(db)
        self.other = other

    def get(self, user_id: UUID) -> User:
        RefreshTokenStore(self.other).revoke_user(user_id)
        return super().get(user_id)


def test_a_refresh_racing_the_end_of_its_session_does_not_keep_it(
    client, services, db, database_url
) -> None:
    """A thief refreshing a stolen token in a loop while the owner changes the password: the
    revocation lands between the refresh's use of the old token and its new one. The new
    token must not carry the session on: its access token and its refresh are refused."""
    make_account(db, "ann@example.com")
    stolen = client.login("ann@example.com", PASSWORD)["refresh_token"]
    other = Database(database_url)
    try:
        racing = AuthService(
            _RevokedMeanwhile(db, other),
            RefreshTokenStore(db),
            AuditLog(db),
            services.tokens,
            ThrottleStore(db),
            passwords=services.passwords,
        )
        try:
            pair = racing.refresh(stolen)
        except Unauthorized:
            return  # refused outright: nothing carries the session on
    finally:
        other.close()
    assert client.get("/v1/auth/me", token=pair.access_token).status == 401
    again = client.post("/v1/auth/refresh", {"refresh_token": pair.refresh_token}, token=None)
    assert again.status == 401


def test_changing_ones_own_password_or_email_is_on_record(as_user, as_admin) -> None:
    """An account taken over shows as its own password or e-mail changed: an admin finds it in
    the audit log (which fields, from where, never the values), as an admin's change is."""
    me = as_user.get("/v1/auth/me").body
    new_password = "a different one, long enough"
    changed = as_user.patch(
        f"/v1/users/{me['id']}", {"password": new_password, "current_password": PASSWORD}
    )
    assert changed.status == 200, changed.body
    renamed = as_user.patch(
        f"/v1/users/{me['id']}", {"email": "ann3@example.com", "current_password": new_password}
    )
    assert renamed.status == 200, renamed.body
    entries = as_admin.get("/v1/audit?action=user.updated").body["items"]
    assert [(e["actor_id"], e["target_id"], e["detail"]["fields"]) for e in entries] == [
        (me["id"], me["id"], ["email"]),
        (me["id"], me["id"], ["password"]),
    ]
    assert all(e["detail"]["source_ip"] == "127.0.0.1" for e in entries)
    assert new_password not in str(entries)
    assert PASSWORD not in str(entries)
