"""Aggregates for `GET /v1/stats` and the queue overview."""

from __future__ import annotations

from typing import Any

from taskmill.db import Database

# Jobs has no index on `finished_at` (every success would write one: see migration 0010), so
# each figure below costs a scan of the table. They are taken in three scans, not one per
# figure: the console's Queues page asks for them every 5 s. (Each figure had its own scan,
# and the chart's minutes were joined to the whole table: 4.7 s at 1M jobs, 0.5 s now, with
# bench/bench_queries.py's table.)

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
           AS duration_seconds
FROM (SELECT status, finished_at, extract(epoch FROM finished_at - started_at) AS d,
             status = 'succeeded' AND started_at IS NOT NULL
                 AND finished_at > now() - make_interval(hours => %(window)s) AS timed
      FROM jobs
      WHERE status IN ('succeeded', 'failed')
        AND finished_at > now() - make_interval(hours => greatest(%(window)s, 1))) f
"""


def job_stats(db: Database, *, window_hours: int = 24) -> dict[str, Any]:
    """Counts of all jobs by status, type and priority; jobs finished in the last hour (and
    in each of its minutes); the durations of the jobs that succeeded in the last
    `window_hours` (from the start of their last attempt)."""
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
    }


def throughput_by_minute(db: Database) -> list[dict[str, Any]]:
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
