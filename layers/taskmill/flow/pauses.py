"""Paused priority queues and job types (SPEC §6): the switch the claim reads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from taskmill.db import Database


class PauseKind(StrEnum):
    QUEUE = "queue"
    TYPE = "type"


class Pause(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: PauseKind
    name: str
    paused_at: datetime
    paused_by: str | None


class PauseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def pause(self, kind: PauseKind, name: str, *, actor: str) -> tuple[Pause, bool]:
        """Pause; returns the pause and whether it is new (pausing twice changes nothing)."""
        rows = self._db.execute(
            "WITH added AS (INSERT INTO pauses (kind, name, paused_by) VALUES (%s, %s, %s) "
            "ON CONFLICT (kind, name) DO NOTHING RETURNING *, true AS added) "
            "SELECT * FROM added UNION ALL "
            "SELECT *, false FROM pauses WHERE kind = %s AND name = %s "
            "AND NOT EXISTS (SELECT 1 FROM added)",
            (kind.value, name, actor, kind.value, name),
        )
        row = rows[0]
        return Pause.model_validate(row), bool(row["added"])

    def resume(self, kind: PauseKind, name: str) -> bool:
        """Resume; False if it was not paused."""
        return bool(
            self._db.execute(
                "DELETE FROM pauses WHERE kind = %s AND name = %s RETURNING name",
                (kind.value, name),
            )
        )

    def paused(self, kind: PauseKind | None = None) -> dict[tuple[PauseKind, str], Pause]:
        rows = self._db.execute(
            "SELECT * FROM pauses WHERE %(kind)s::text IS NULL OR kind = %(kind)s::text",
            {"kind": kind.value if kind else None},
        )
        return {(PauseKind(row["kind"]), row["name"]): Pause.model_validate(row) for row in rows}

    def names(self, kind: PauseKind) -> set[str]:
        """The paused queues (priorities) or job types."""
        return {name for _, name in self.paused(kind)}
