"""Keyset cursors for newest-first lists: the (created_at, id) of a page's last row, opaque
to clients. A cursor stays valid when its row is deleted: the next page starts after the
position, not after the row."""

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
