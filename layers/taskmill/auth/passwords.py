"""Password hashing: argon2id (argon2-cffi) at OWASP's parameters.

Hashes are self-describing (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), so parameters can
change: a login that verifies a hash made with other parameters, or with the former scheme
(stdlib scrypt, `scrypt$n$r$p$salt$hash`), stores a new hash at the current ones.

argon2 is imported on first use, not at import: the API's cold start does not pay for it
(~20 ms here) unless the request hashes a password.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class Argon2Params:
    """argon2id's cost. The default is the first configuration of OWASP's Password Storage
    Cheat Sheet (19 MiB, 2 iterations, 1 lane): ~21-38 ms a hash here, and 19 MiB of the API
    function's 512 MB, one request per container at a time."""

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


OWASP = Argon2Params()


class Verified(NamedTuple):
    ok: bool
    # The password was right but its hash is of an older scheme or other parameters.
    needs_rehash: bool


class Passwords:
    """Hashes at one set of parameters and verifies any hash the platform ever stored.
    Tests build one with cheap parameters; everything else uses the default."""

    def __init__(self, params: Argon2Params = OWASP) -> None:
        self.params = params

    @functools.cached_property
    def _hasher(self) -> PasswordHasher:
        from argon2 import PasswordHasher, Type

        return PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_kib,
            parallelism=self.params.parallelism,
            hash_len=self.params.hash_len,
            salt_len=self.params.salt_len,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password: str, stored: str) -> Verified:
        """Constant-time; a malformed or unknown stored hash never matches."""
        if stored.startswith("scrypt$"):
            return Verified(_verify_scrypt(password, stored), needs_rehash=True)
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return Verified(ok=False, needs_rehash=False)
        return Verified(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored))

    @functools.cached_property
    def dummy_hash(self) -> str:
        """Verified against when the account does not exist, so a login for an unknown
        e-mail costs what one with a wrong password costs (no user enumeration by timing):
        same algorithm, same parameters. Made on first use: cold start should not pay it."""
        return self.hash(secrets.token_urlsafe(16))


DEFAULT_PASSWORDS = Passwords()


def hash_password(password: str, params: Argon2Params = OWASP) -> str:
    return DEFAULT_PASSWORDS.hash(password) if params == OWASP else Passwords(params).hash(password)


def verify_password(password: str, stored: str) -> bool:
    return DEFAULT_PASSWORDS.verify(password, stored).ok


def dummy_hash() -> str:
    return DEFAULT_PASSWORDS.dummy_hash


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _verify_scrypt(password: str, encoded: str) -> bool:
    """The former scheme, kept so accounts that have not signed in since still can (their
    next login replaces the hash). The stored parameters are the platform's own."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=128 * int(n) * int(r) * 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
