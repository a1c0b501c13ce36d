"""API Gateway Lambda (TOKEN) authorizer logic.

A valid token gets an Allow for the whole stage (`<api>/<stage>/*/*`), not just the method
that triggered the call: API Gateway caches the policy per token and reuses it for every
other route, so a policy naming one method would wrongly deny the next route (or, built the
other way round, wrongly allow). Roles and ownership are enforced by the API handler, which
receives `sub`, `sid` (the session), `role` and `email` in the context and checks the
account's current role and state, and the session, in Postgres: a cached Allow can
therefore never outlive a role change, a disable, a delete or a logout.
"""

from __future__ import annotations

from typing import Any

from taskmill.auth.tokens import Claims, TokenConfig, verify_access_token
from taskmill.errors import Unauthorized


class AuthorizerDenied(Exception):
    """API Gateway answers 401 when a TOKEN authorizer fails with exactly "Unauthorized"."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def stage_wildcard(method_arn: str) -> str:
    """arn:aws:execute-api:region:acct:api/stage/VERB/path -> ...:api/stage/*/*"""
    prefix, _, path = method_arn.partition(":execute-api:")
    parts = path.split("/")
    if not prefix or len(parts) < 2:
        raise AuthorizerDenied
    return f"{prefix}:execute-api:{parts[0]}/{parts[1]}/*/*"


def bearer_token(event: dict[str, Any]) -> str:
    raw = event.get("authorizationToken") or (event.get("headers") or {}).get("Authorization") or ""
    scheme, _, token = str(raw).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthorizerDenied
    return token.strip()


def authorize(event: dict[str, Any], config: TokenConfig) -> tuple[dict[str, Any], Claims]:
    """Return the IAM policy document for a valid token; raise `AuthorizerDenied` otherwise."""
    try:
        claims = verify_access_token(config, bearer_token(event))
    except Unauthorized:
        raise AuthorizerDenied from None
    policy = {
        "principalId": claims.sub,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": stage_wildcard(str(event.get("methodArn", ""))),
                }
            ],
        },
        # Context values must be strings, numbers or booleans.
        "context": {
            "sub": claims.sub,
            "sid": claims.sid,
            "role": claims.role,
            "email": claims.email or "",
        },
    }
    return policy, claims
