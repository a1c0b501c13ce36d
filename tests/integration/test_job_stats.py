"""`GET /v1/stats`'s figures, taken in three scans, against each figure's own query (what they
were computed with, one scan each), on jobs finished inside and outside each window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from taskmill.db import Database
from taskmill.jobs.stats import job_stats

from tests.support.factories import make_user

# One statement per figure: the definition the figures must keep.
_DEFINITION = """
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
        AS duration_seconds,
    (SELECT jsonb_agg(jsonb_build_array(n.succeeded, n.failed) ORDER BY n.minute) FROM (
        SELECT m.minute,
               count(j.id) FILTER (WHERE j.status = 'succeeded') AS succeeded,
               count(j.id) FILTER (WHERE j.status = 'failed') AS failed
        FROM generate_series(date_trunc('minute', now()) - interval '59 minutes',
                             date_trunc('minute', now()), interval '1 minute') AS m(minute)
        LEFT JOIN jobs j ON j.status IN ('succeeded', 'failed')
            AND j.finished_at >= m.minute AND j.finished_at < m.minute + interval '1 minute'
        GROUP BY m.minute) n) AS minutes
"""

# Jobs in every status; finished ones from seconds to days ago, lasting 0.1 s to 10 min,
# some without a start (cancelled while queued, failed by the sweep before they ran).
_FILL = """
INSERT INTO jobs (id, owner_id, type, payload, priority, status, max_attempts, timeout_seconds,
                  backoff_base_seconds, backoff_max_seconds, run_at, created_at, updated_at,
                  queued_at, started_at, finished_at, lease_token, lease_until)
SELECT gen_random_uuid(), %(owner)s, (ARRAY['noop', 'sleep', 'fail'])[1 + g %% 3], '{}',
       (ARRAY['high', 'normal', 'low'])[1 + g %% 3], s.status, 3, 60, 2, 300,
       now(), now() - interval '3 days', now(), now(),
       CASE WHEN s.status IN ('running', 'succeeded', 'failed') AND g %% 11 <> 0
            THEN f.at - make_interval(secs => 0.1 * (g %% 6000)) END,
       CASE WHEN s.status IN ('succeeded', 'failed', 'cancelled') THEN f.at END,
       CASE WHEN s.status = 'running' THEN gen_random_uuid() END,
       CASE WHEN s.status = 'running' THEN now() + interval '1 minute' END
FROM generate_series(1, 600) g,
LATERAL (SELECT (ARRAY['succeeded', 'succeeded', 'succeeded', 'failed', 'queued', 'running',
                       'cancelled', 'scheduled', 'waiting'])[1 + g %% 9] AS status) s,
LATERAL (SELECT now() - make_interval(secs => (g * 977) %% 200000) AS at) f
"""


@pytest.mark.parametrize("window_hours", [1, 2, 24, 720])
def test_the_figures_are_each_figures_own_query(db: Database, window_hours: int) -> None:
    db.execute(_FILL, {"owner": make_user(db)})
    # Each statement reads its own now(): taken again if a minute (or a job's edge of a
    # window) turned between the two, which would move rows between buckets.
    minute = "SELECT date_trunc('minute', now()) AS m"
    for _ in range(3):
        before = db.execute(minute)
        [expected] = db.execute(_DEFINITION, {"window": window_hours})
        stats: dict[str, Any] = job_stats(db, window_hours=window_hours)
        if db.execute(minute) == before:
            break
    assert stats["by_status"] == expected["by_status"]
    assert stats["by_type"] == expected["by_type"]
    assert stats["by_priority"] == expected["by_priority"]
    assert stats["throughput_per_minute_last_hour"] == {
        "succeeded": round(expected["succeeded_last_hour"] / 60, 3),
        "failed": round(expected["failed_last_hour"] / 60, 3),
    }
    assert stats["duration_seconds"] == pytest.approx(expected["duration_seconds"])
    assert [[m["succeeded"], m["failed"]] for m in stats["throughput_last_hour"]] == (
        expected["minutes"]
    )
    # The data reaches each figure: none of them compares empty with empty.
    assert expected["succeeded_last_hour"] > 0
    assert expected["failed_last_hour"] > 0
    assert sum(sum(m) for m in expected["minutes"]) > 0
    assert expected["duration_seconds"]["p50"] is not None


def _add_jobs(db: Database, owner: UUID, n: int) -> None:
    db.execute(
        "INSERT INTO jobs (id, owner_id, type, payload, priority, status, max_attempts, "
        "timeout_seconds, backoff_base_seconds, backoff_max_seconds, run_at) "
        "SELECT gen_random_uuid(), %s, 'noop', '{}', 'normal', 'queued', 3, 60, 2, 300, now() "
        "FROM generate_series(1, %s)",
        (owner, n),
    )


def _age_kept_figures(db: Database, seconds: int) -> None:
    db.execute(
        "UPDATE stats_snapshots SET computed_at = computed_at - make_interval(secs => %(s)s), "
        "figures = jsonb_set(figures, '{computed_at}', to_jsonb(computed_at - "
        "make_interval(secs => %(s)s)))",
        {"s": seconds},
    )


def test_figures_are_computed_now_unless_older_ones_are_accepted(db: Database) -> None:
    owner = make_user(db)
    _add_jobs(db, owner, 2)
    first = job_stats(db, window_hours=1, max_age_seconds=60)
    assert first["by_status"] == {"queued": 2}
    _add_jobs(db, owner, 3)
    # Accepting a minute-old answer: the kept one, when it was computed included.
    assert job_stats(db, window_hours=1, max_age_seconds=60) == first
    # Another window has figures of its own.
    assert job_stats(db, window_hours=2, max_age_seconds=60)["by_status"] == {"queued": 5}
    # The default computes now, and what it computed is what the next caller shares.
    fresh = job_stats(db, window_hours=1)
    assert fresh["by_status"] == {"queued": 5}
    assert datetime.fromisoformat(fresh["computed_at"]) > datetime.fromisoformat(
        first["computed_at"]
    )
    assert job_stats(db, window_hours=1, max_age_seconds=60) == fresh
    # Once older than the caller accepts, they are computed again.
    _add_jobs(db, owner, 1)
    _age_kept_figures(db, 120)
    assert job_stats(db, window_hours=1, max_age_seconds=60)["by_status"] == {"queued": 6}


def _computing_elsewhere(database_url: str, window_hours: int) -> Database:
    """A connection holding the lock of a computation under way for `window_hours`, in an
    open transaction (roll it back or commit it to end the computation)."""
    other = Database(database_url)
    conn = other.connection()
    conn.execute("BEGIN")
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('taskmill.stats:' || %s::text, 0))",
        (str(window_hours),),
    )
    return other


def test_while_one_caller_computes_the_others_get_the_last_figures_at_once(
    db: Database, database_url: str
) -> None:
    """A dashboard's viewers never scan the jobs table side by side: while one computes, a
    viewer whose accepted age has passed gets the last figures, with when they were computed,
    rather than starting a computation of its own (which, on a big table polled every few
    seconds, would pile up)."""
    owner = make_user(db)
    _add_jobs(db, owner, 2)
    kept = job_stats(db, window_hours=1, max_age_seconds=5)
    _add_jobs(db, owner, 3)
    _age_kept_figures(db, 60)
    other = _computing_elsewhere(database_url, 1)
    try:
        answer = job_stats(db, window_hours=1, max_age_seconds=5)
    finally:
        other.connection().execute("ROLLBACK")
        other.close()
    assert answer["by_status"] == {"queued": 2}
    # The kept figures, aged above: a minute older than when they were computed.
    age = datetime.fromisoformat(kept["computed_at"]) - datetime.fromisoformat(
        answer["computed_at"]
    )
    assert age == timedelta(seconds=60)
    # With no computation under way, the next caller computes them again.
    assert job_stats(db, window_hours=1, max_age_seconds=5)["by_status"] == {"queued": 5}


def test_with_nothing_kept_a_caller_computes_beside_the_computation_under_way(
    db: Database, database_url: str
) -> None:
    """The very first viewers (or the first after a crash emptied the kept figures): one
    computes, and another asking meanwhile computes its own rather than waiting for it (a
    wait would span that computation's scans in one statement, each scan having the
    statement timeout alone: a 503 where computing would have answered)."""
    _add_jobs(db, make_user(db), 2)
    other = _computing_elsewhere(database_url, 1)
    # The other computation never ends here: a caller that waited for it would hit this
    # statement timeout (the API's is 5 s) and answer 503.
    impatient = Database(database_url, statement_timeout_ms=300)
    try:
        answer = job_stats(impatient, window_hours=1, max_age_seconds=5)
    finally:
        other.connection().execute("ROLLBACK")
        other.close()
        impatient.close()
    assert answer["by_status"] == {"queued": 2}
    # And it is kept for the next poll.
    assert job_stats(db, window_hours=1, max_age_seconds=5) == answer
