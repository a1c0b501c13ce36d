"""Who is calling: the identity the authorizer verified, and role checks.

The authorizer proves only who is calling and in which session (the token's `sub` and
`sid`); its role claim is a snapshot that API Gateway may keep serving from its policy cache.
What the caller may do comes from the account as it is now (`ApiServices.caller`, one small
read, or the job-creating statement itself), so a role change, a disable, a delete or a
logout counts on the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from taskmill.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Identity:
    """A verified token's subject and session, not yet checked against the account."""

    id: UUID
    session_id: UUID


@dataclass(frozen=True)
class Caller:
    """The caller with its account's current role."""

    id: UUID
    role: str
    email: str | None
    session_id: UUID

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


def source_ip(event: dict[str, Any]) -> str:
    """The client's address as API Gateway saw it (never a client-supplied header)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def identity_from_event(event: dict[str, Any]) -> Identity:
    """API Gateway puts the authorizer's context in `requestContext.authorizer`; protected
    routes are never reached without it in AWS, and a request that lacks it is refused."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return Identity(UUID(str(context["sub"])), UUID(str(context["sid"])))
    except (KeyError, ValueError):
        raise Unauthorized("authentication required") from None
