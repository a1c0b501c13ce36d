"""Stored passwords: argon2id at OWASP's parameters, upgraded on login, old hashes kept working.

The API tests run with cheap argon2 parameters (`FAST` in the API conftest) so they stay fast;
the parameters the platform really uses are checked here once, on the module's defaults.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from argon2 import PasswordHasher, Type, extract_parameters
from taskmill.auth.passwords import dummy_hash, hash_password, verify_password
from taskmill.users.store import UserStore

from tests.integration.api.conftest import FAST, PASSWORD

# OWASP Password Storage Cheat Sheet, argon2id: 19 MiB, 2 iterations, 1 lane (its first
# recommended configuration).
OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"


def legacy_scrypt_hash(password: str, n: int = 2**10) -> str:
    """A hash as the platform stored them before argon2id: `scrypt$n$r$p$salt$hash`."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${n}$8$1${b64(salt)}${b64(digest)}"


def hash_of(db, email: str) -> str:
    rows = db.execute("SELECT password_hash FROM users WHERE email = %s", (email,))
    return str(rows[0]["password_hash"])


def login(client, email: str, password: str = PASSWORD) -> int:
    return int(client.post("/v1/auth/login", {"email": email, "password": password}).status)


def test_new_passwords_are_argon2id_at_owasp_parameters() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith(OWASP_PREFIX)
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)


def test_unknown_accounts_are_checked_against_a_hash_of_the_same_cost() -> None:
    # Login for an e-mail with no account verifies the password against this dummy: the
    # same algorithm and parameters as a real account's, so the answer takes as long.
    assert dummy_hash().startswith(OWASP_PREFIX)


def test_registration_stores_argon2id(client, db) -> None:
    created = client.post("/v1/auth/register", {"email": "new@example.com", "password": PASSWORD})
    assert created.status == 201
    assert hash_of(db, "new@example.com").startswith("$argon2id$")
    assert login(client, "new@example.com") == 200


def test_an_old_scrypt_hash_still_signs_in_and_is_upgraded(client, db) -> None:
    legacy = legacy_scrypt_hash(PASSWORD)
    UserStore(db).create("old@example.com", legacy)
    assert login(client, "old@example.com", "not the password!") == 401
    assert hash_of(db, "old@example.com") == legacy  # a wrong password upgrades nothing
    assert login(client, "old@example.com") == 200
    upgraded = hash_of(db, "old@example.com")
    assert upgraded.startswith("$argon2id$")
    assert login(client, "old@example.com") == 200
    assert login(client, "old@example.com", "not the password!") == 401


def test_a_hash_at_other_parameters_is_rehashed_on_login(client, db) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1, type=Type.ID)
    UserStore(db).create("ann@example.com", old.hash(PASSWORD))
    assert login(client, "ann@example.com") == 200
    rehashed = hash_of(db, "ann@example.com")
    # The API under test hashes at FAST's parameters: the stored hash now has them.
    assert extract_parameters(rehashed) == extract_parameters(FAST.hash(PASSWORD))
    assert login(client, "ann@example.com") == 200
    assert hash_of(db, "ann@example.com") == rehashed  # once is enough


def test_a_rehash_never_undoes_a_password_change(db) -> None:
    users = UserStore(db)
    user = users.create("ann@example.com", legacy_scrypt_hash(PASSWORD))
    users.update(user.id, password_hash=FAST.hash("a brand new password"))
    # A login that verified the old password just before the change comes back late.
    assert not users.replace_password_hash(user.id, old=user.password_hash, new=FAST.hash(PASSWORD))
    assert FAST.verify("a brand new password", hash_of(db, "ann@example.com")).ok
