"""The audit log of admin and security events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from taskmill.db import Database


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        action: str,
        *,
        actor_id: UUID | str | None,
        target_type: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO audit_log (actor_id, action, target_type, target_id, detail, "
            "correlation_id) VALUES (%s, %s, %s, %s, %s, %s)",
            (actor_id, action, target_type, target_id, Jsonb(detail or {}), correlation_id),
        )

    def list(
        self, *, limit: int, before_id: int | None = None, action: str | None = None
    ) -> list[dict[str, Any]]:
        return self._db.execute(
            "SELECT a.id, a.at, a.actor_id, u.email AS actor_email, a.action, a.target_type, "
            "a.target_id, a.detail, a.correlation_id "
            "FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id "
            "WHERE (%(before)s::bigint IS NULL OR a.id < %(before)s::bigint) "
            "AND (%(action)s::text IS NULL OR a.action = %(action)s::text) "
            "ORDER BY a.id DESC LIMIT %(limit)s",
            {"before": before_id, "action": action, "limit": limit},
        )
