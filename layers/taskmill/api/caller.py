"""Who is calling: the identity the authorizer verified, and role checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from taskmill.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Caller:
    id: UUID
    role: str
    email: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.id}"

    def require(self, *roles: str) -> Caller:
        if self.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role")
        return self


def request_id(event: dict[str, Any]) -> str | None:
    """API Gateway's id of the request: the correlation id of logs and error answers."""
    return (event.get("requestContext") or {}).get("requestId")


def caller_from_event(event: dict[str, Any]) -> Caller:
    """API Gateway puts the authorizer's context in `requestContext.authorizer`; protected
    routes are never reached without it in AWS, and a request that lacks it is refused."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return Caller(UUID(str(context["sub"])), str(context["role"]), context.get("email"))
    except (KeyError, ValueError):
        raise Unauthorized("authentication required") from None
