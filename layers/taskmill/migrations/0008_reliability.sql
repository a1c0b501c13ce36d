-- Queued jobs by when they became queued: the sweep's search for jobs whose message may be
-- gone (and the oldest-queued age of `GET /v1/queues`).
CREATE INDEX jobs_queued_idx ON jobs (queued_at) WHERE status = 'queued' AND NOT external;

-- Leases lost to a dead worker process, refunded instead of counted as attempts (up to a cap,
-- so a job that keeps killing its worker still ends `failed`).
ALTER TABLE jobs ADD COLUMN lost_leases integer NOT NULL DEFAULT 0;
