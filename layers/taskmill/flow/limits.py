"""Limits per key (SPEC §6): the admin's definitions and what they are using now.

All SQL about the `limits` table is here, except the claim's admission, which must read and
update it in the same statement that claims (`taskmill.jobs.store`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskmill.db import Database

# A rate's period: a second to a day; beyond it a limit is a quota, not a rate. Below a
# second nothing could follow it: a held job waits whole seconds (SQS delays), at least one
# (`holds.MIN_HOLD_SECONDS`); 2 per second is `limit` 2, not 1 per 0.5 s. The API refuses a
# shorter period; `Rate` still reads one stored before the minimum (it keeps working).
MIN_RATE_PERIOD_SECONDS = 1.0
MAX_RATE_PERIOD_SECONDS = 86_400.0


class Rate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=1, le=1_000_000)
    period_seconds: float = Field(gt=0, le=MAX_RATE_PERIOD_SECONDS)


class LimitSpec(BaseModel):
    """The body of `PUT /v1/limits/{key}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int | None = Field(default=None, ge=0, le=1_000_000)
    rate: Rate | None = None


class LimitUse(BaseModel):
    model_config = ConfigDict(frozen=True)

    running: int
    started_in_window: int | None = None  # jobs holding the key started in the last period
    tokens_available: float | None = None  # the rate's bucket now


class Limit(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    concurrency: int | None
    rate: Rate | None
    # `limit`: set for this key; `default`: the environment's default for every owner key.
    source: str = "limit"
    updated_at: datetime | None = None
    updated_by: str | None = None
    use: LimitUse | None = None


def _limit(row: dict[str, Any]) -> Limit:
    rate = None
    if row["rate_limit"] is not None:
        rate = Rate(limit=row["rate_limit"], period_seconds=row["rate_period_seconds"])
    use = None
    if "running" in row:
        use = LimitUse(
            running=row["running"],
            started_in_window=row.get("started_in_window"),
            tokens_available=row.get("tokens_now"),
        )
    return Limit(
        key=row["key"],
        concurrency=row["concurrency"],
        rate=rate,
        source=row.get("source", "limit"),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
        use=use,
    )


def loosens(before: Limit | None, after: LimitSpec) -> bool:
    """Whether jobs `before` held back may start sooner under `after`: a concurrency raised
    or removed, or a rate removed or changed (a changed rate starts with a full bucket). A
    limit on a key that had none only holds more back."""
    if before is None:
        return False
    if before.concurrency is not None and (
        after.concurrency is None or after.concurrency > before.concurrency
    ):
        return True
    return before.rate is not None and after.rate != before.rate


def room_now(limit: Limit) -> int | None:
    """How many more jobs holding the key `limit` lets start now, from its use read with it:
    free slots of its concurrency, whole tokens of its rate, the smaller of the two; None for
    no bound (neither is set)."""
    use = limit.use
    rooms = []
    if limit.concurrency is not None:
        rooms.append(max(0, limit.concurrency - (use.running if use else 0)))
    if limit.rate is not None:
        tokens = use.tokens_available if use and use.tokens_available is not None else 0.0
        rooms.append(max(0, math.floor(tokens)))
    return min(rooms) if rooms else None


# An owner's key as jobs hold it (`'owner:' || owner_id::text`, see `taskmill.flow.keys`);
# any other `owner:...` key is a plain key, which no job holds. A looser pattern let
# `owner:` and 36 dashes reach the cast below, and every read of the limits failed.
_OWNER_KEY = "'^owner:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"


# The owner an `owner:<uuid>` key names (NULL for any other key), as SQL on column `{k}`.
def _owner_of(column: str) -> str:
    return f"CASE WHEN {column} ~ {_OWNER_KEY} THEN substr({column}, 7)::uuid END"


# Use of each limit in `limits_in`: running jobs holding its key, jobs holding it whose
# current attempt started in the rate's last period, the bucket's level now. Owner keys are
# counted by owner (jobs do not list them); running jobs are few (the running-lease index).
_USE_SQL = f"""
SELECT l.*,
       (SELECT count(*) FROM jobs r
        WHERE r.status = 'running'
          AND CASE WHEN {_owner_of("l.key")} IS NOT NULL THEN r.owner_id = {_owner_of("l.key")}
                   ELSE r.limit_keys @> ARRAY[l.key] END) AS running,
       CASE WHEN l.rate_period_seconds IS NULL THEN NULL
            WHEN {_owner_of("l.key")} IS NOT NULL THEN (
                SELECT count(*) FROM jobs s
                WHERE s.owner_id = {_owner_of("l.key")}
                  AND s.started_at >= now() - make_interval(secs => l.rate_period_seconds))
            ELSE (
                SELECT count(*) FROM jobs s
                WHERE s.limit_keys @> ARRAY[l.key] AND s.limit_keys <> '{{}}'
                  AND s.started_at >= now() - make_interval(secs => l.rate_period_seconds))
       END AS started_in_window,
       CASE WHEN l.rate_limit IS NOT NULL THEN
           least(l.rate_limit::float8, l.tokens + greatest(0, extract(epoch FROM
               clock_timestamp() - l.refilled_at)) * l.rate_limit / l.rate_period_seconds)
       END AS tokens_now
FROM limits_in l
"""


class LimitStore:
    def __init__(self, db: Database, *, owner_concurrency: int | None = None) -> None:
        self._db = db
        # The environment's default concurrency for every `owner:` key without a limit.
        self.owner_concurrency = owner_concurrency

    def put(self, key: str, spec: LimitSpec, *, actor: str) -> Limit:
        """Create or replace the limit on `key`. A new or changed rate starts with a full
        bucket; an unchanged rate keeps its level (a PUT cannot be used to refill it).
        Returns the limit with its current use, read in the same statement."""
        rate = spec.rate
        rows = self._db.execute(
            """
WITH limits_in AS (
INSERT INTO limits AS l (key, concurrency, rate_limit, rate_period_seconds, tokens,
                         refilled_at, updated_by)
VALUES (%(key)s, %(concurrency)s, %(rate)s::int, %(period)s, %(rate)s::float8, clock_timestamp(),
        %(actor)s)
ON CONFLICT (key) DO UPDATE SET
    concurrency = excluded.concurrency,
    rate_limit = excluded.rate_limit,
    rate_period_seconds = excluded.rate_period_seconds,
    tokens = CASE WHEN l.rate_limit IS NOT DISTINCT FROM excluded.rate_limit
                   AND l.rate_period_seconds IS NOT DISTINCT FROM excluded.rate_period_seconds
                  THEN l.tokens ELSE excluded.tokens END,
    refilled_at = CASE WHEN l.rate_limit IS NOT DISTINCT FROM excluded.rate_limit
                        AND l.rate_period_seconds IS NOT DISTINCT FROM
                            excluded.rate_period_seconds
                       THEN l.refilled_at ELSE excluded.refilled_at END,
    updated_at = now(), updated_by = excluded.updated_by
RETURNING *, 'limit' AS source)"""
            + _USE_SQL,
            {
                "key": key,
                "concurrency": spec.concurrency,
                "rate": rate.limit if rate else None,
                "period": rate.period_seconds if rate else None,
                "actor": actor,
            },
        )
        return _limit(rows[0])

    def delete(self, key: str) -> bool:
        return bool(self._db.execute("DELETE FROM limits WHERE key = %s RETURNING key", (key,)))

    def get(self, key: str) -> Limit | None:
        """The limit on `key` with its current use; an owner key without a limit of its own
        shows the environment's default, if there is one."""
        rows = self._db.execute(
            """
WITH limits_in AS (
    SELECT limits.*, 'limit' AS source FROM limits WHERE key = %(key)s
    UNION ALL
    SELECT %(key)s, %(default)s::int, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'default'
    WHERE %(default)s::int IS NOT NULL AND %(key)s ~ """
            + _OWNER_KEY
            + """
      AND NOT EXISTS (SELECT 1 FROM limits WHERE key = %(key)s))"""
            + _USE_SQL,
            {"key": key, "default": self.owner_concurrency},
        )
        return _limit(rows[0]) if rows else None

    def list(self, *, limit: int, after: str | None = None) -> list[Limit]:
        """Limits in key order with their use, `limit` at most, after key `after`."""
        rows = self._db.execute(
            "WITH limits_in AS (SELECT limits.*, 'limit' AS source FROM limits "
            "WHERE %(after)s::text IS NULL "
            "OR key > %(after)s ORDER BY key LIMIT %(limit)s)" + _USE_SQL + " ORDER BY l.key",
            {"after": after, "limit": limit},
        )
        return [_limit(row) for row in rows]
