"""Routes API Gateway serves without the authorizer (the CDK stack and the local gateway
both read this list)."""

from __future__ import annotations

PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/refresh"),
        ("GET", "/v1/health"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/v1/docs"),
    }
)


def is_public(method: str, path: str) -> bool:
    return (method.upper(), path.rstrip("/") or "/") in PUBLIC_ROUTES
