"""Aggregates for `GET /v1/stats` and the queue overview."""

from __future__ import annotations

from typing import Any

from taskmill.db import Database


def job_stats(db: Database, *, window_hours: int = 24) -> dict[str, Any]:
    [row] = db.execute(
        """
SELECT
    (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
        (SELECT status, count(*) n FROM jobs GROUP BY status) s) AS by_status,
    (SELECT coalesce(jsonb_object_agg(type, n), '{}') FROM
        (SELECT type, count(*) n FROM jobs GROUP BY type) s) AS by_type,
    (SELECT coalesce(jsonb_object_agg(priority, n), '{}') FROM
        (SELECT priority, count(*) n FROM jobs GROUP BY priority) s) AS by_priority,
    (SELECT count(*) FROM jobs WHERE status = 'succeeded'
        AND finished_at > now() - interval '1 hour') AS succeeded_last_hour,
    (SELECT count(*) FROM jobs WHERE status = 'failed'
        AND finished_at > now() - interval '1 hour') AS failed_last_hour,
    (SELECT jsonb_build_object(
        'p50', percentile_cont(0.5) WITHIN GROUP (ORDER BY d),
        'p90', percentile_cont(0.9) WITHIN GROUP (ORDER BY d),
        'p99', percentile_cont(0.99) WITHIN GROUP (ORDER BY d))
     FROM (SELECT extract(epoch FROM finished_at - started_at) AS d FROM jobs
           WHERE status = 'succeeded' AND started_at IS NOT NULL
             AND finished_at > now() - make_interval(hours => %(window)s)) t)
        AS duration_seconds
""",
        {"window": window_hours},
    )
    return {
        "by_status": row["by_status"],
        "by_type": row["by_type"],
        "by_priority": row["by_priority"],
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
SELECT m.minute,
       count(j.id) FILTER (WHERE j.status = 'succeeded') AS succeeded,
       count(j.id) FILTER (WHERE j.status = 'failed') AS failed
FROM generate_series(date_trunc('minute', now()) - interval '59 minutes',
                     date_trunc('minute', now()), interval '1 minute') AS m(minute)
LEFT JOIN jobs j ON j.status IN ('succeeded', 'failed')
    AND j.finished_at >= m.minute AND j.finished_at < m.minute + interval '1 minute'
GROUP BY m.minute ORDER BY m.minute
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
