-- `run_at` within the years 1 to 9999 in UTC, the instants Python (the API, the worker, the
-- sweep) can load. Before the API refused the others, a job could be stored with one (e.g.
-- 0001-01-01T00:00+14:00, which is 1 BC in UTC); every statement returning that row then
-- failed, and the sweep, which returns due rows in batches, stopped for everyone.
--
-- Such a job never ran as asked and cannot: one not finished is failed with an error naming
-- the stored value (its owner sees why; dependents are cancelled by the sweep; a webhook is
-- created as for any failure), and every such row gets its `created_at` as `run_at`, so it
-- reads back. The constraint keeps any later writer, whatever its path, from storing one.
WITH bad AS (
    SELECT id, status, run_at::text AS stored FROM jobs
    WHERE run_at < '0001-01-01 00:00:00+00' OR run_at >= '10000-01-01 00:00:00+00'
    FOR UPDATE
), changed AS (
    UPDATE jobs j SET
        run_at = j.created_at,
        status = CASE WHEN bad.status IN ('scheduled', 'waiting', 'queued', 'running')
                      THEN 'failed' ELSE j.status END,
        last_error = CASE WHEN bad.status IN ('scheduled', 'waiting', 'queued', 'running')
                          THEN 'run_at ' || bad.stored || ' is outside the years 1 to 9999 '
                               || 'in UTC; the job cannot run (failed by migration 0015)'
                          ELSE j.last_error END,
        finished_at = CASE WHEN bad.status IN ('scheduled', 'waiting', 'queued', 'running')
                           THEN now() ELSE j.finished_at END,
        webhook_pending = CASE WHEN bad.status IN ('scheduled', 'waiting', 'queued', 'running')
                               THEN j.webhook_url IS NOT NULL ELSE j.webhook_pending END,
        send_pending = false, lease_token = NULL, lease_until = NULL, updated_at = now()
    FROM bad WHERE j.id = bad.id
    RETURNING j.id, j.status, j.attempts, j.last_error, bad.status AS was
)
INSERT INTO job_events (job_id, to_status, actor, attempt, detail)
SELECT id, status, 'migration', attempts, jsonb_build_object('error', last_error)
FROM changed WHERE status <> was;

-- NOT VALID: checked on every write from now on, without scanning the table under the
-- ACCESS EXCLUSIVE lock ADD CONSTRAINT takes (it would stop the API and the workers for the
-- scan). The UPDATE above repaired every row it would refuse; 0017 validates it under a lock
-- that lets reads and writes go on.
ALTER TABLE jobs ADD CONSTRAINT jobs_run_at_range_check
    CHECK (run_at >= '0001-01-01 00:00:00+00' AND run_at < '10000-01-01 00:00:00+00')
    NOT VALID;
