-- The last figures `GET /v1/stats` computed for each window, so callers that accept figures a
-- few seconds old (the console's Queues page, every 5 s while open, `max_age_seconds`) share
-- one computation, a few scans of the jobs table, instead of each running its own: at a
-- million jobs one costs ~0.5 s, and computations that outlast the polling interval would
-- otherwise pile up. taskmill.jobs.stats reads and writes it.
-- UNLOGGED: a cache, written without WAL; emptied by a crash (or absent on a replica), after
-- which the next caller computes the figures again.
CREATE UNLOGGED TABLE stats_snapshots (
    window_hours int PRIMARY KEY,
    computed_at timestamptz NOT NULL,
    figures jsonb NOT NULL
);
