"""Attempt counters for login and sign-up throttling in Postgres: all their SQL."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from taskmill.db import Database

# Ended windows deleted by each counting statement: more than the rows one statement can
# leave behind, so the table does not grow with time.
_SWEEP_PER_CALL = 20


@dataclass(frozen=True)
class Bucket:
    """At most `max_attempts` counted attempts per `window_seconds` for `key`."""

    key: str
    max_attempts: int
    window_seconds: int


class ThrottleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def attempt(self, buckets: Sequence[Bucket]) -> int | None:
        """Count one attempt in every bucket, unless one of them is full: then count nothing
        and return the seconds until the last full one's window ends (a refused attempt is
        not counted, so hammering on a throttle does not prolong it or fill the others).

        One statement. Existing buckets are locked while deciding, so concurrent attempts
        queue up and cannot all slip under a limit; a window starts at a bucket's first
        attempt and ends `window_seconds` later, whatever happens in between."""
        row = self._db.execute(
            """
WITH wanted AS (
    -- Keys are lower-cased here, by the lower() that finds an account by its e-mail (and
    -- keeps e-mails unique), not by Python's, which differs from it: every spelling that
    -- finds one account counts in that account's buckets.
    SELECT lower(w.bucket) AS bucket, w.max_attempts, w.window_seconds
    FROM unnest(%(keys)s::text[], %(limits)s::int[], %(windows)s::int[])
        AS w(bucket, max_attempts, window_seconds)
), current AS (
    SELECT t.bucket, t.window_end, t.attempts, w.max_attempts
    FROM auth_throttle t JOIN wanted w USING (bucket)
    FOR UPDATE OF t
), full_buckets AS (
    SELECT window_end FROM current WHERE window_end > now() AND attempts >= max_attempts
), counted AS (
    INSERT INTO auth_throttle AS t (bucket, window_end, attempts)
    SELECT bucket, now() + make_interval(secs => window_seconds), 1 FROM wanted
    WHERE NOT EXISTS (SELECT 1 FROM full_buckets)
    ON CONFLICT (bucket) DO UPDATE SET
        window_end = CASE WHEN t.window_end > now() THEN t.window_end
                          ELSE excluded.window_end END,
        attempts = CASE WHEN t.window_end > now() THEN t.attempts + 1 ELSE 1 END
    RETURNING t.bucket
), swept AS (
    DELETE FROM auth_throttle WHERE bucket IN (
        SELECT bucket FROM auth_throttle
        WHERE window_end < now() AND bucket NOT IN (SELECT bucket FROM wanted)
        LIMIT %(sweep)s FOR UPDATE SKIP LOCKED)
)
SELECT extract(epoch FROM max(window_end) - now()) AS wait FROM full_buckets""",
            {
                "keys": [b.key for b in buckets],
                "limits": [b.max_attempts for b in buckets],
                "windows": [b.window_seconds for b in buckets],
                "sweep": _SWEEP_PER_CALL,
            },
        )[0]
        wait = row["wait"]
        return None if wait is None else max(1, math.ceil(float(wait)))

    def refund(self, buckets: Sequence[Bucket]) -> None:
        """Uncount one attempt (it succeeded): only failures fill a login throttle."""
        self._db.execute(
            "UPDATE auth_throttle SET attempts = attempts - 1 "
            "WHERE bucket IN (SELECT lower(k) FROM unnest(%s::text[]) AS k) "
            "AND window_end > now() AND attempts > 0",
            ([b.key for b in buckets],),
        )
