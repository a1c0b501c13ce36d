from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from taskmill.auth.passwords import Argon2Params, Passwords, hash_password, verify_password
from taskmill.auth.tokens import (
    TokenConfig,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    verify_access_token,
)
from taskmill.errors import Unauthorized

FAST = Argon2Params(time_cost=1, memory_kib=8, parallelism=1)
CONFIG = TokenConfig(secret="s" * 40, issuer="taskmill", audience="taskmill-api")


def test_password_round_trip() -> None:
    stored = hash_password("correct horse battery", FAST)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)


def test_same_password_gets_a_different_salt() -> None:
    assert hash_password("0123456789", FAST) != hash_password("0123456789", FAST)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$4$5",
        "scrypt$x$8$1$AA$AA",
        "scrypt$1024$8$1$AA",
        "$argon2id$v=19$m=8,t=1,p=1$AAAA",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$",
    ],
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not verify_password("anything at all", stored)


def test_a_hash_at_other_parameters_verifies_and_asks_for_a_rehash() -> None:
    cheap, cheaper = Passwords(FAST), Passwords(Argon2Params(time_cost=1, memory_kib=16))
    stored = cheaper.hash("correct horse battery")
    assert cheap.verify("correct horse battery", stored) == (True, True)
    assert cheap.verify("wrong horse battery", stored) == (False, False)
    assert cheaper.verify("correct horse battery", stored) == (True, False)


def test_access_token_round_trip() -> None:
    token, ttl = issue_access_token(
        CONFIG, user_id="u1", session_id="s1", role="admin", email="a@x.io"
    )
    claims = verify_access_token(CONFIG, token)
    assert (claims.sub, claims.sid, claims.role, claims.email) == ("u1", "s1", "admin", "a@x.io")
    assert ttl == 900
    assert claims.exp - int(time.time()) <= 900


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_expired_token_is_refused() -> None:
    token, _ = issue_access_token(
        CONFIG, user_id="u1", session_id="s1", role="user", now=time.time() - 3600
    )
    with pytest.raises(Unauthorized, match="expired"):
        verify_access_token(CONFIG, token)


def test_wrong_signature_is_refused() -> None:
    other = TokenConfig(secret="t" * 40, issuer="taskmill", audience="taskmill-api")
    token, _ = issue_access_token(other, user_id="u1", session_id="s1", role="user")
    with pytest.raises(Unauthorized):
        verify_access_token(CONFIG, token)


def test_alg_none_is_refused() -> None:
    token, _ = issue_access_token(CONFIG, user_id="u1", session_id="s1", role="user")
    _, payload, _ = token.split(".")
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    with pytest.raises(Unauthorized):
        verify_access_token(CONFIG, unsigned)


@pytest.mark.parametrize(
    "config",
    [
        TokenConfig(secret="s" * 40, issuer="taskmill", audience="someone-else"),
        TokenConfig(secret="s" * 40, issuer="evil", audience="taskmill-api"),
    ],
)
def test_wrong_audience_or_issuer_is_refused(config: TokenConfig) -> None:
    token, _ = issue_access_token(config, user_id="u1", session_id="s1", role="user")
    with pytest.raises(Unauthorized):
        verify_access_token(CONFIG, token)


def test_tampered_role_is_refused() -> None:
    token, _ = issue_access_token(CONFIG, user_id="u1", session_id="s1", role="user")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    with pytest.raises(Unauthorized):
        verify_access_token(CONFIG, f"{header}.{_b64(claims)}.{signature}")


def test_unknown_role_is_refused_even_when_signed() -> None:
    token = jwt.encode(
        {
            "sub": "u",
            "sid": "s",
            "role": "root",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "iss": "taskmill",
            "aud": "taskmill-api",
            "jti": "j",
        },
        CONFIG.secret,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        verify_access_token(CONFIG, token)


def test_refresh_tokens_are_random_and_only_their_hash_is_kept() -> None:
    first, first_hash = new_refresh_token()
    second, _ = new_refresh_token()
    assert first != second
    assert hash_refresh_token(first) == first_hash
    assert first.encode() not in first_hash
