"""Aggregates for `GET /v1/stats` and the queue overview."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from taskmill.db import Database
from taskmill.db.connection import Transaction

# Jobs has no index on `finished_at` (every success would write one: see migration 0010), so
# each figure below costs a scan of the table. They are taken in three scans, not one per
# figure. (Each figure had its own scan, and the chart's minutes were joined to the whole
# table: 4.7 s at 1M jobs, 0.5 s now, with bench/bench_queries.py's table.) The console's
# Queues page asks for them every 5 s while open, accepting figures up to 5 s old: all its
# viewers share one computation at a time (`stats_snapshots`, migration 0019).

# One row per (status, type, priority) in use, a few dozen: summed per family in Python.
_COUNTS = "SELECT status, type, priority, count(*) AS n FROM jobs GROUP BY 1, 2, 3"

_FINISHED = """
SELECT count(*) FILTER (WHERE status = 'succeeded' AND finished_at > now() - interval '1 hour')
           AS succeeded_last_hour,
       count(*) FILTER (WHERE status = 'failed' AND finished_at > now() - interval '1 hour')
           AS failed_last_hour,
       jsonb_build_object(
           'p50', percentile_cont(0.5) WITHIN GROUP (ORDER BY d) FILTER (WHERE timed),
           'p90', percentile_cont(0.9) WITHIN GROUP (ORDER BY d) FILTER (WHERE timed),
           'p99', percentile_cont(0.99) WITHIN GROUP (ORDER BY d) FILTER (WHERE timed))
           AS duration_seconds,
       now() AS computed_at
FROM (SELECT status, finished_at, extract(epoch FROM finished_at - started_at) AS d,
             status = 'succeeded' AND started_at IS NOT NULL
                 AND finished_at > now() - make_interval(hours => %(window)s) AS timed
      FROM jobs
      WHERE status IN ('succeeded', 'failed')
        AND finished_at > now() - make_interval(hours => greatest(%(window)s, 1))) f
"""


# The last figures computed for a window, and whether they are fresh enough for the caller.
_SNAPSHOT = """
SELECT s.figures, s.computed_at >= now() - make_interval(secs => %(max_age)s) AS fresh
FROM stats_snapshots s WHERE s.window_hours = %(window)s"""

# Kept unless figures computed later are there already (two computations ran at once).
_KEEP = """
INSERT INTO stats_snapshots AS s (window_hours, computed_at, figures)
VALUES (%(window)s, %(at)s, %(figures)s)
ON CONFLICT (window_hours) DO UPDATE SET computed_at = EXCLUDED.computed_at,
                                         figures = EXCLUDED.figures
WHERE s.computed_at < EXCLUDED.computed_at"""

# Held by whoever computes a window's figures for callers that accept older ones, until
# its transaction ends.
_COMPUTING = "hashtextextended('taskmill.stats:' || %(window)s::text, 0)"


def job_stats(
    db: Database, *, window_hours: int = 24, max_age_seconds: float = 0
) -> dict[str, Any]:
    """Counts of all jobs by status, type and priority; jobs finished in the last hour (and
    in each of its minutes); the durations of the jobs that succeeded in the last
    `window_hours` (from the start of their last attempt); when they were computed.

    `max_age_seconds` > 0: figures computed that long ago or less will do. The last ones
    kept are answered if so; else one caller computes them while any other asking meanwhile
    gets the last ones at once, however old (`computed_at` says), instead of a computation
    of its own beside it: once figures are kept, the jobs table is scanned by one of them at
    a time. 0 (the default): computed now, whatever was kept. Every computation is kept for
    the next."""
    params = {"window": window_hours, "max_age": max_age_seconds}
    if max_age_seconds <= 0:
        return _keep(db, _compute(db, window_hours), window_hours)
    kept = db.execute(_SNAPSHOT, params)
    if kept and kept[0]["fresh"]:
        return dict(kept[0]["figures"])
    with db.transaction() as tx:
        [lock] = tx.execute(f"SELECT pg_try_advisory_xact_lock({_COMPUTING}) AS mine", params)
        if lock["mine"]:
            return _keep(tx, _compute(tx, window_hours), window_hours)
        if kept:
            return dict(kept[0]["figures"])
    # Nothing kept yet (the first callers, or after a crash emptied the table): computed
    # beside the one under way rather than waiting for it. A wait would span all of that
    # computation's scans in one statement, whose timeout each of its scans has alone.
    return _keep(db, _compute(db, window_hours), window_hours)


def _compute(db: Database | Transaction, window_hours: int) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {"by_status": {}, "by_type": {}, "by_priority": {}}
    for row in db.execute(_COUNTS):
        for column in ("status", "type", "priority"):
            family = counts[f"by_{column}"]
            family[row[column]] = family.get(row[column], 0) + row["n"]
    [row] = db.execute(_FINISHED, {"window": window_hours})
    return {
        **counts,
        "throughput_per_minute_last_hour": {
            "succeeded": round(row["succeeded_last_hour"] / 60, 3),
            "failed": round(row["failed_last_hour"] / 60, 3),
        },
        "throughput_last_hour": throughput_by_minute(db),
        "duration_seconds": row["duration_seconds"],
        "window_hours": window_hours,
        "computed_at": row["computed_at"].isoformat(),
    }


def _keep(db: Database | Transaction, figures: dict[str, Any], window_hours: int) -> dict[str, Any]:
    db.execute(
        _KEEP, {"window": window_hours, "at": figures["computed_at"], "figures": Jsonb(figures)}
    )
    return figures


def throughput_by_minute(db: Database | Transaction) -> list[dict[str, Any]]:
    """Jobs finished in each of the last 60 minutes (the current one last), zeros included:
    what the console's throughput chart draws."""
    rows = db.execute(
        """
SELECT m.minute, coalesce(c.succeeded, 0) AS succeeded, coalesce(c.failed, 0) AS failed
FROM generate_series(date_trunc('minute', now()) - interval '59 minutes',
                     date_trunc('minute', now()), interval '1 minute') AS m(minute)
LEFT JOIN (SELECT date_trunc('minute', finished_at) AS minute,
                  count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                  count(*) FILTER (WHERE status = 'failed') AS failed
           FROM jobs
           WHERE status IN ('succeeded', 'failed')
             AND finished_at >= date_trunc('minute', now()) - interval '59 minutes'
           GROUP BY 1) c ON c.minute = m.minute
ORDER BY m.minute
"""
    )
    return [
        {
            "minute": row["minute"].isoformat(),
            "succeeded": row["succeeded"],
            "failed": row["failed"],
        }
        for row in rows
    ]


def oldest_queued_age(db: Database) -> dict[str, float]:
    """Seconds since the oldest still-queued job of each priority was queued."""
    rows = db.execute(
        "SELECT priority, extract(epoch FROM now() - min(queued_at)) AS age FROM jobs "
        "WHERE status = 'queued' AND NOT external GROUP BY priority"
    )
    return {row["priority"]: float(row["age"]) for row in rows if row["age"] is not None}
