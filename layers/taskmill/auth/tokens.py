"""JWT access tokens (HS256, pinned) and opaque rotating refresh tokens.

An access token names its session (`sid`: the id of the refresh-token family its login
started). The token proves who is calling and in which session; what the caller may do is
read from Postgres on every request (the account's role, whether it is enabled, whether the
session was ended), so a role change, a disable, a delete or a logout counts at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from taskmill.errors import Unauthorized

ALGORITHM = "HS256"  # pinned: verification never trusts the token's own `alg` header
ROLES = ("admin", "user", "worker")


@dataclass(frozen=True)
class TokenConfig:
    secret: str
    issuer: str
    audience: str
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 30 * 24 * 3600


@dataclass(frozen=True)
class Claims:
    sub: str
    sid: str
    role: str
    email: str | None
    jti: str
    exp: int


def issue_access_token(
    config: TokenConfig,
    *,
    user_id: str,
    session_id: str,
    role: str,
    email: str | None = None,
    now: float | None = None,
) -> tuple[str, int]:
    """Return the token and its lifetime in seconds."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "sid": session_id,
        "role": role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + config.access_ttl_seconds,
        "iss": config.issuer,
        "aud": config.audience,
        "jti": uuid.uuid4().hex,
    }
    if email is not None:
        claims["email"] = email
    import jwt

    return jwt.encode(claims, config.secret, algorithm=ALGORITHM), config.access_ttl_seconds


def verify_access_token(config: TokenConfig, token: str, *, leeway: int = 5) -> Claims:
    """Verify signature, algorithm, issuer, audience and expiry; raise `Unauthorized`."""
    import jwt

    try:
        claims = jwt.decode(
            token,
            config.secret,
            algorithms=[ALGORITHM],
            audience=config.audience,
            issuer=config.issuer,
            leeway=leeway,
            # No `sid`, no session to check: such a token (issued before sessions were
            # checked) is refused and the client's refresh gets it one that has it.
            options={"require": ["sub", "sid", "role", "iat", "exp", "iss", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("token invalid") from exc
    if claims["role"] not in ROLES:
        raise Unauthorized("token invalid")
    return Claims(
        sub=str(claims["sub"]),
        sid=str(claims["sid"]),
        role=str(claims["role"]),
        email=claims.get("email"),
        jti=str(claims["jti"]),
        exp=int(claims["exp"]),
    )


def new_refresh_token() -> tuple[str, bytes]:
    """An opaque refresh token and the hash that is stored (never the token itself)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    # 256 random bits need no slow hash: SHA-256 is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).digest()
