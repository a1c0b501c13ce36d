"""Changing one's own password or e-mail needs the current password.

An access token lives for minutes; without this check whoever held one (a copied header, a
leaked log, an unlocked laptop) could set a password of their own, which also ended the
owner's other sessions: the account was theirs for good. An admin resetting someone else's
password needs no such proof (the admin's role is the proof).
"""

from __future__ import annotations

from tests.integration.api.conftest import PASSWORD, make_account
from tests.security.test_login_throttle import assert_throttled
from tests.support.apigw import ApiClient

NEW_PASSWORD = "a brand new passphrase"
FULLWIDTH_ROOT = "\uff52\uff4f\uff4f\uff54@example.com"  # root, in fullwidth letters


def user_id(client: ApiClient) -> str:
    return str(client.get("/v1/auth/me").body["id"])


def can_log_in(app, services, email: str, password: str) -> bool:
    return (
        ApiClient(app, services)
        .post("/v1/auth/login", {"email": email, "password": password}, token=None)
        .status
        == 200
    )


def test_a_stolen_access_token_cannot_set_a_new_password(app, services, as_user) -> None:
    me = user_id(as_user)
    missing = as_user.patch(f"/v1/users/{me}", {"password": NEW_PASSWORD})
    assert missing.status == 400
    assert missing.error_code == "invalid_input"
    assert "current_password" in missing.body["error"]["message"]
    wrong = as_user.patch(
        f"/v1/users/{me}", {"password": NEW_PASSWORD, "current_password": "not the password"}
    )
    assert wrong.status == 403
    assert wrong.error_code == "forbidden"
    assert can_log_in(app, services, "ann@example.com", PASSWORD)
    assert not can_log_in(app, services, "ann@example.com", NEW_PASSWORD)
    assert as_user.get("/v1/jobs").status == 200  # a wrong guess does not end the session


def test_a_stolen_access_token_cannot_move_the_account_to_another_email(
    app, services, as_user
) -> None:
    me = user_id(as_user)
    assert as_user.patch(f"/v1/users/{me}", {"email": "thief@example.com"}).status == 400
    wrong = as_user.patch(
        f"/v1/users/{me}", {"email": "thief@example.com", "current_password": "guess guess"}
    )
    assert wrong.status == 403
    assert as_user.get("/v1/auth/me").body["email"] == "ann@example.com"


def test_the_owner_changes_both_with_the_current_password(app, services, as_user) -> None:
    me = user_id(as_user)
    changed = as_user.patch(
        f"/v1/users/{me}",
        {"email": "ann2@example.com", "password": NEW_PASSWORD, "current_password": PASSWORD},
    )
    assert changed.status == 200, changed.body
    assert changed.body["email"] == "ann2@example.com"
    assert can_log_in(app, services, "ann2@example.com", NEW_PASSWORD)


def test_an_admin_needs_its_own_password_but_not_other_peoples(app, services, db, as_admin):
    make_account(db, "bob@example.com")
    bob = ApiClient(app, services)
    bob.login("bob@example.com", PASSWORD)
    reset = as_admin.patch(f"/v1/users/{user_id(bob)}", {"password": NEW_PASSWORD})
    assert reset.status == 200
    assert can_log_in(app, services, "bob@example.com", NEW_PASSWORD)
    # A stolen admin token is the worst one to lose: it cannot take the admin account either.
    own = as_admin.patch(f"/v1/users/{user_id(as_admin)}", {"password": NEW_PASSWORD})
    assert own.status == 400
    assert can_log_in(app, services, "root@example.com", PASSWORD)


def test_current_password_guesses_are_throttled_like_logins(app, services, db, as_user) -> None:
    me = user_id(as_user)
    for _ in range(5):  # the per-account-and-address limit
        guess = as_user.patch(
            f"/v1/users/{me}", {"password": NEW_PASSWORD, "current_password": "wrong guess!"}
        )
        assert guess.status == 403
    throttled = as_user.patch(
        f"/v1/users/{me}", {"password": NEW_PASSWORD, "current_password": PASSWORD}
    )
    assert_throttled(throttled)
    assert not can_log_in(app, services, "ann@example.com", NEW_PASSWORD)
    failures = db.execute(
        "SELECT count(*) AS n FROM audit_log WHERE action = 'auth.password_check_failed'"
    )[0]["n"]
    assert failures == 5


def test_an_email_cannot_look_like_another_accounts(app, services, db, as_admin) -> None:
    # Accounts that an admin's users list and audit log would show as root@example.com:
    # fullwidth letters, and invisible characters (zero-width space, right-to-left mark).
    lookalikes = {  # the address, and what creating it answers
        FULLWIDTH_ROOT: 409,  # the same address once normalised (NFKC)
        "root@example.com\u200b": 400,
        "\u200froot@example.com": 400,
    }
    for email, status in lookalikes.items():
        created = as_admin.post("/v1/users", {"email": email, "password": PASSWORD})
        registered = ApiClient(app, services).post(
            "/v1/auth/register", {"email": email, "password": PASSWORD}, token=None
        )
        assert created.status == status, (email, created.body)
        assert registered.status == status, (email, registered.body)
    emails = [u["email"] for u in as_admin.get("/v1/users").body["items"]]
    assert emails == ["root@example.com"]
    # Compatibility forms are the same address: its owner may type it either way.
    assert can_log_in(app, services, FULLWIDTH_ROOT, PASSWORD)


def test_an_email_mixing_scripts_in_one_part_cannot_pass_for_another(
    app, services, db, as_admin
) -> None:
    """root@example.com spelt with two Cyrillic o's (U+043E) is another address that every
    users list and audit log shows exactly as root@example.com (NFKC keeps it). A part of an
    address (the local part, each label of the domain) must spell with the letters of one
    script; a whole address in another script, or accented Latin, is still an address."""
    lookalikes = [
        "r\u043e\u043et@example.com",  # Cyrillic o (U+043E)
        "root@ex\u0430mple.com",  # Cyrillic a (U+0430) in the domain
        "\u03a1oot@example.com",  # Greek capital rho (U+03A1)
    ]
    for email in lookalikes:
        created = as_admin.post("/v1/users", {"email": email, "password": PASSWORD})
        registered = ApiClient(app, services).post(
            "/v1/auth/register", {"email": email, "password": PASSWORD}, token=None
        )
        for answer in (created, registered):
            assert answer.status == 400, (email, answer.body)
            assert "script" in answer.body["error"]["details"][0]["msg"]
    me = user_id(as_admin)
    renamed = as_admin.patch(
        f"/v1/users/{me}", {"email": lookalikes[0], "current_password": PASSWORD}
    )
    assert renamed.status == 400
    assert [u["email"] for u in as_admin.get("/v1/users").body["items"]] == ["root@example.com"]
    for email in (
        "j\u00fcrgen@m\u00fcller.de",
        "\u043f\u043e\u0447\u0442\u0430@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444",
        "\u7528\u6237@example.com",
        "\u3086\u30fc\u3056\u30fc\u540d@example.jp",
        "x-9_y@sub-1.example.com",
    ):
        answer = as_admin.post("/v1/users", {"email": email, "password": PASSWORD})
        assert answer.status == 201, (email, answer.body)


def test_a_stolen_access_token_cannot_delete_the_account(app, services, db, as_user) -> None:
    me = user_id(as_user)
    missing = as_user.delete(f"/v1/users/{me}")
    assert missing.status == 400
    assert "current_password" in missing.body["error"]["message"]
    wrong = as_user.delete(f"/v1/users/{me}", {"current_password": "not the password"})
    assert wrong.status == 403
    assert wrong.error_code == "forbidden"
    assert can_log_in(app, services, "ann@example.com", PASSWORD)
    deleted = as_user.delete(f"/v1/users/{me}", {"current_password": PASSWORD})
    assert deleted.status == 204, deleted.body
    assert not can_log_in(app, services, "ann@example.com", PASSWORD)
    failed = db.execute(
        "SELECT count(*) AS n FROM audit_log WHERE action = 'auth.password_check_failed'"
    )[0]["n"]
    assert failed == 1


def test_self_delete_guesses_are_throttled_like_logins(app, services, as_user) -> None:
    me = user_id(as_user)
    for _ in range(5):  # the per-account-and-address limit
        assert as_user.delete(f"/v1/users/{me}", {"current_password": "wrong guess!"}).status == 403
    assert_throttled(as_user.delete(f"/v1/users/{me}", {"current_password": PASSWORD}))
    assert as_user.get("/v1/auth/me").body["id"] == me  # still there


def test_an_admin_deletes_another_account_without_a_password(app, services, db, as_admin) -> None:
    make_account(db, "bob@example.com")
    bob = ApiClient(app, services)
    bob.login("bob@example.com", PASSWORD)
    assert as_admin.delete(f"/v1/users/{user_id(bob)}").status == 204
    # Its own account, though, only with its password (a stolen admin token is the worst).
    assert as_admin.delete(f"/v1/users/{user_id(as_admin)}").status == 400
