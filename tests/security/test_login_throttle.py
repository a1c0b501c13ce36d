"""Login and sign-up throttling, per account and per source address (API Gateway's
`requestContext.identity.sourceIp`), with 429 + `Retry-After` in the error envelope.

The limits are the defaults (`ApiSettings`): within 15 minutes, 5 failures per account from
one address, 20 per account from all addresses, 30 per address over all accounts; 20 sign-ups
per address an hour. The attack run's finding: 60 wrong passwords in 8.4 s all answered 401
and the right one was accepted right after.
"""

from __future__ import annotations

from typing import Any

from tests.integration.api.conftest import PASSWORD, make_account
from tests.support.apigw import ApiClient, ApiResponse

ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"
WINDOW = 15 * 60


def login(client: ApiClient, email: str, password: str, source_ip: str) -> ApiResponse:
    return client.post(
        "/v1/auth/login", {"email": email, "password": password}, token=None, source_ip=source_ip
    )


def assert_throttled(response: ApiResponse, *, longest: int = WINDOW) -> int:
    assert response.status == 429, response.body
    error: dict[str, Any] = response.body["error"]
    assert error["code"] == "too_many_attempts"
    assert error["message"]
    assert "correlation_id" in error
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= longest
    return retry_after


def audited(db, action: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT detail FROM audit_log WHERE action = %s ORDER BY id", (action,))
    return [row["detail"] for row in rows]


def test_guessing_a_password_from_one_address_is_throttled(client, db) -> None:
    make_account(db, "ann@example.com")
    for _ in range(5):
        assert login(client, "ann@example.com", "wrong password!", ATTACKER).status == 401
    assert_throttled(login(client, "ann@example.com", "wrong password!", ATTACKER))
    # Even the right password: a throttle that let it through would confirm the guess.
    assert_throttled(login(client, "ann@example.com", PASSWORD, ATTACKER))
    [first, *_] = audited(db, "auth.login_throttled")
    assert first["email"] == "ann@example.com"
    assert first["source_ip"] == ATTACKER
    assert len(audited(db, "auth.login_failed")) == 5


def test_a_third_party_does_not_lock_the_victim_out(client, db) -> None:
    make_account(db, "ann@example.com")
    for _ in range(12):
        login(client, "ann@example.com", "wrong password!", ATTACKER)
    # Throttled attempts are not counted: hammering on does not move the account closer to
    # its all-addresses limit. The owner, elsewhere, signs in.
    assert login(client, "ann@example.com", PASSWORD, VICTIM).status == 200


def test_guessing_from_many_addresses_is_throttled_per_account(client, db) -> None:
    make_account(db, "ann@example.com")
    for n in range(20):
        address = f"203.0.113.{n // 4 + 1}"  # 4 tries each: under the per-address limit
        assert login(client, "ann@example.com", "wrong password!", address).status == 401
    assert_throttled(login(client, "ann@example.com", "wrong password!", "203.0.113.99"))


def test_another_spelling_of_the_same_account_counts_in_its_buckets(client, db) -> None:
    # Postgres finds the account by lower(email), which reads "İ" (capital I with a dot) as
    # "i"; the buckets were keyed by Python's lower(), which makes it "i" and a combining
    # dot. So "kİm@example.com" signed in as kim@example.com while counting in buckets of its
    # own: each spelling (two per "i" in the address) had 5 guesses per address and 20 from
    # everywhere, and one throttled from an address was signed in with by the next spelling.
    make_account(db, "kim@example.com")
    assert login(client, "kİm@example.com", PASSWORD, VICTIM).status == 200  # the same account
    for _ in range(5):
        assert login(client, "kim@example.com", "wrong password!", ATTACKER).status == 401
    for spelling in ("kİm@example.com", "KİM@EXAMPLE.COM", "KIM@example.com"):
        assert_throttled(login(client, spelling, PASSWORD, ATTACKER))
    for n in range(15):
        spelling = "kİm@example.com" if n % 2 else "kim@example.com"
        assert login(client, spelling, "wrong password!", f"203.0.113.{n // 4 + 1}").status == 401
    assert_throttled(login(client, "kİm@example.com", "wrong password!", "203.0.113.99"))


def test_spraying_many_accounts_from_one_address_is_throttled(client) -> None:
    for n in range(30):
        response = login(client, f"user{n}@example.com", "Winter2026!!", ATTACKER)
        assert response.status == 401
    assert_throttled(login(client, "user99@example.com", "Winter2026!!", ATTACKER))
    # Another address is not affected.
    assert login(client, "user99@example.com", "Winter2026!!", VICTIM).status == 401


def test_a_throttle_ends_with_its_window(client, db) -> None:
    make_account(db, "ann@example.com")
    for n in range(20):
        login(client, "ann@example.com", "wrong password!", f"203.0.113.{n // 4 + 1}")
    # A distributed attack holds the account for at most the window ...
    assert_throttled(login(client, "ann@example.com", PASSWORD, VICTIM))
    # ... and when it has passed (moved back here rather than waited for), the owner is in.
    db.execute("UPDATE auth_throttle SET window_end = now() - interval '1 second'")
    assert login(client, "ann@example.com", PASSWORD, VICTIM).status == 200


def test_successful_logins_are_not_counted(client, db) -> None:
    make_account(db, "ann@example.com")
    for _ in range(3):
        assert login(client, "ann@example.com", "wrong password!", VICTIM).status == 401
    for _ in range(10):
        assert login(client, "ann@example.com", PASSWORD, VICTIM).status == 200


def test_unknown_and_known_accounts_are_throttled_alike(client, db) -> None:
    make_account(db, "ann@example.com")
    answers = []
    for email in ("ann@example.com", "nobody@example.com"):
        for _ in range(5):
            login(client, email, "wrong password!", ATTACKER)
        answers.append(login(client, email, "wrong password!", ATTACKER))
    assert [a.status for a in answers] == [429, 429]
    assert answers[0].body["error"]["message"] == answers[1].body["error"]["message"]


def test_sign_ups_are_throttled_per_address(client) -> None:
    def register(n: int, source_ip: str) -> ApiResponse:
        body = {"email": f"new{n}@example.com", "password": PASSWORD}
        return client.post("/v1/auth/register", body, token=None, source_ip=source_ip)

    # Existing e-mails answer 409 (there is no e-mail verification to hide behind), so
    # probing which addresses have accounts is throttled like creating them.
    assert register(0, ATTACKER).status == 201
    assert register(0, ATTACKER).status == 409
    for n in range(1, 19):
        assert register(n, ATTACKER).status == 201
    assert_throttled(register(19, ATTACKER), longest=3600)
    assert register(19, VICTIM).status == 201
    [throttled] = audited(client.services.db, "auth.signup_throttled")
    assert throttled["source_ip"] == ATTACKER


def test_concurrent_attempts_cannot_slip_past_a_limit(database_url) -> None:
    """Four connections hammering one bucket at once: exactly the limit gets through (without
    the bucket's row lock, two attempts reading the same count both pass at the edge)."""
    import threading

    from taskmill.db import Database
    from taskmill.users.throttle import Bucket, ThrottleStore

    bucket = [Bucket("login:account:race@example.com", 12, WINDOW)]
    first = Database(database_url)
    ThrottleStore(first).attempt(bucket)  # the row exists: the race is at the limit
    first.close()
    allowed: list[bool] = []
    barrier = threading.Barrier(4)

    def hammer() -> None:
        db = Database(database_url)
        store = ThrottleStore(db)
        barrier.wait()
        try:
            for _ in range(8):
                allowed.append(store.attempt(bucket) is None)
        finally:
            db.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 11  # 12 minus the one counted before
