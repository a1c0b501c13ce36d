"""Keyset cursors, opaque to clients. Newest-first lists: the (created_at, id) of a page's
last row; a cursor stays valid when its row is deleted: the next page starts after the
position, not after the row. A job's history (oldest first): the job and how many of its
events came before the next page (`encode_event_cursor`)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from uuid import UUID

from taskmill.errors import InvalidInput


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        return datetime.fromisoformat(created_at), UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid") from exc


# Positions are bigints to Postgres (OFFSET): a cursor past this is refused.
MAX_EVENT_POSITION = 2**63 - 1


def encode_event_cursor(job_id: UUID, position: int) -> str:
    """A cursor into one job's history (oldest first): the job and the position the next
    page starts at (how many of its events came before). A position, not the global id of
    the page's last event: ids are shared by every job on the platform, so two cursors of
    one's own would tell a tenant how many transitions everyone made in between. The job
    is in it so that a cursor of another job's history (or of another list) is refused
    rather than read as a position in this one."""
    raw = json.dumps([str(job_id), position]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_event_cursor(cursor: str, job_id: UUID) -> int:
    """The position `cursor` (from `encode_event_cursor`) continues at, when it is a cursor
    of `job_id`'s history; otherwise InvalidInput (400)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("not a pair")
        named, position = value
        if not isinstance(named, str) or UUID(named) != job_id:
            raise ValueError("another job's cursor")
        # bool is an int to Python: `true` is no position.
        if type(position) is not int or not 0 <= position <= MAX_EVENT_POSITION:
            raise ValueError("not a position")
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid") from exc
    return position
