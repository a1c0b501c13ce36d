"""Builders for test data, written through the same code paths the platform uses."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from taskmill.db import Database
from taskmill.jobs.model import Job, NewJob


def make_user(db: Database, *, role: str = "user", email: str | None = None) -> UUID:
    user_id = uuid4()
    db.execute(
        "INSERT INTO users (id, email, password_hash, role) VALUES (%s, %s, 'x', %s)",
        (user_id, email or f"{user_id}@example.com", role),
    )
    return user_id


def new_job(**overrides: Any) -> NewJob:
    values: dict[str, Any] = {
        "type": "noop",
        "payload": {},
        "priority": "normal",
        "max_attempts": 3,
        "timeout_seconds": 30,
        "backoff_base_seconds": 1.0,
        "backoff_max_seconds": 60.0,
    }
    values.update(overrides)
    return NewJob(**values)


def create_job(store: Any, owner: UUID, **overrides: Any) -> Job:
    return store.create(owner, new_job(**overrides), actor="test").job
