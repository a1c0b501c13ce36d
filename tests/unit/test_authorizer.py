"""The TOKEN authorizer on API Gateway's authorizer event shape."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from taskmill.auth.authorizer import AuthorizerDenied, stage_wildcard
from taskmill.auth.tokens import TokenConfig, issue_access_token

from functions.api.authorizer import check
from tests.support.apigw import token_event

CONFIG = TokenConfig(secret="a" * 40, issuer="taskmill", audience="taskmill-api")
USER = "6f1c7a52-5d0e-4f43-8a3f-2a8f6d1b9e10"
SESSION = "0b7e2d14-9c51-4f0e-a0d2-6b3f1e8c4a77"


def _token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": USER,
        "sid": SESSION,
        "role": "user",
        "iat": now,
        "exp": now + 300,
        "iss": "taskmill",
        "aud": "taskmill-api",
        "jti": "j1",
        **overrides,
    }
    return jwt.encode(claims, CONFIG.secret, algorithm="HS256")


def test_valid_token_allows_the_whole_stage_with_context() -> None:
    token, _ = issue_access_token(
        CONFIG, user_id=USER, session_id=SESSION, role="worker", email="w@example.com"
    )
    policy = check(token_event("GET", "/v1/jobs/123", token), CONFIG)
    assert policy["principalId"] == USER
    [statement] = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    # Cached per token by API Gateway and reused for every route: the policy must not name
    # only the route that happened to come first.
    assert statement["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/v1/*/*"
    assert policy["context"] == {
        "sub": USER,
        "sid": SESSION,
        "role": "worker",
        "email": "w@example.com",
    }


@pytest.mark.parametrize(
    "token",
    [
        None,
        "not-a-jwt",
        _token(exp=int(time.time()) - 60),
        _token(aud="someone-else"),
        _token(iss="evil"),
        _token(sid=None),
        jwt.encode({"sub": USER, "role": "admin"}, "b" * 40, algorithm="HS256"),
    ],
    ids=["missing", "garbage", "expired", "audience", "issuer", "no-session", "wrong-key"],
)
def test_bad_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(AuthorizerDenied, match=r"^Unauthorized$"):
        check(token_event("GET", "/v1/jobs", token), CONFIG)


def test_alg_none_is_refused() -> None:
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        .decode()
        .rstrip("=")
    )
    payload = _token().split(".")[1]
    with pytest.raises(AuthorizerDenied):
        check(token_event("GET", "/v1/jobs", f"{header}.{payload}."), CONFIG)


def test_tampered_role_is_refused() -> None:
    header, payload, signature = _token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(AuthorizerDenied):
        check(token_event("GET", "/v1/users", f"{header}.{forged}.{signature}"), CONFIG)


def test_scheme_must_be_bearer() -> None:
    event = token_event("GET", "/v1/jobs", None)
    event["authorizationToken"] = f"Basic {_token()}"
    with pytest.raises(AuthorizerDenied):
        check(event, CONFIG)


def test_stage_wildcard_refuses_malformed_arns() -> None:
    with pytest.raises(AuthorizerDenied):
        stage_wildcard("not-an-arn")
