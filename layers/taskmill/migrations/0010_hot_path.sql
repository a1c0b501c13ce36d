-- The worker's hot path (issue 13): what every claim and success writes.

-- Set on a job when a job depending on it is created, so a finished batch runs the
-- release-dependents statement only when one of its jobs has dependents.
ALTER TABLE jobs ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
UPDATE jobs SET has_dependents = true
WHERE id IN (SELECT unnest(depends_on) FROM jobs WHERE status = 'waiting');

-- Events are read by job (job_events_job_idx, ordered by id); nothing looks one up by id,
-- so the primary key index only cost every transition an insert.
ALTER TABLE job_events DROP CONSTRAINT job_events_pkey;

-- The jobs table rebuilt with its columns in a new order and a fifth of each page left free
-- (fillfactor 80). No transition can be a HOT update (each changes `status`, which partial
-- indexes filter on), but when the new row version lands on the same page Postgres logs only
-- the bytes between the unchanged start and end of the row. So: first what never or rarely
-- changes, then the block a claim and a result change, `updated_at` last. Measured: a claim
-- plus a success write ~160 B less WAL per job (bench/bench_worker.py prints WAL per job).
CREATE TABLE jobs_new (
    id                   uuid NOT NULL,
    owner_id             uuid NOT NULL,
    type                 text NOT NULL,
    payload              jsonb NOT NULL DEFAULT '{}'::jsonb,
    external             boolean NOT NULL DEFAULT false,
    max_attempts         integer NOT NULL,
    timeout_seconds      integer NOT NULL,
    backoff_base_seconds double precision NOT NULL,
    backoff_max_seconds  double precision NOT NULL,
    idempotency_key      text,
    idempotency_hash     text,
    depends_on           uuid[] NOT NULL DEFAULT '{}'::uuid[],
    webhook_url          text,
    correlation_id       text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- Changed by owners (before a job runs) and by rarer transitions.
    priority             text NOT NULL,
    name                 text,
    description          text,
    tags                 text[] NOT NULL DEFAULT '{}'::text[],
    redrive_count        integer NOT NULL DEFAULT 0,
    lost_leases          integer NOT NULL DEFAULT 0,
    cancel_requested     boolean NOT NULL DEFAULT false,
    has_dependents       boolean NOT NULL DEFAULT false,
    run_at               timestamptz NOT NULL DEFAULT now(),
    queued_at            timestamptz,
    external_ref         text,
    -- Changed by every claim and every result.
    status               text NOT NULL,
    attempts             integer NOT NULL DEFAULT 0,
    send_pending         boolean NOT NULL DEFAULT false,
    webhook_pending      boolean NOT NULL DEFAULT false,
    lease_token          uuid,
    lease_until          timestamptz,
    started_at           timestamptz,
    finished_at          timestamptz,
    progress             integer NOT NULL DEFAULT 0,
    progress_message     text,
    last_error           text,
    result               jsonb,
    updated_at           timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
INSERT INTO jobs_new (
    id, owner_id, type, payload, external, max_attempts, timeout_seconds,
    backoff_base_seconds, backoff_max_seconds, idempotency_key, idempotency_hash, depends_on,
    webhook_url, correlation_id, created_at, priority, name, description, tags, redrive_count,
    lost_leases, cancel_requested, has_dependents, run_at, queued_at, external_ref, status,
    attempts, send_pending, webhook_pending, lease_token, lease_until, started_at, finished_at,
    progress, progress_message, last_error, result, updated_at)
SELECT
    id, owner_id, type, payload, external, max_attempts, timeout_seconds,
    backoff_base_seconds, backoff_max_seconds, idempotency_key, idempotency_hash, depends_on,
    webhook_url, correlation_id, created_at, priority, name, description, tags, redrive_count,
    lost_leases, cancel_requested, has_dependents, run_at, queued_at, external_ref, status,
    attempts, send_pending, webhook_pending, lease_token, lease_until, started_at, finished_at,
    progress, progress_message, last_error, result, updated_at
FROM jobs;
DROP TABLE jobs;  -- its indexes and its trigger go with it; nothing references it
ALTER TABLE jobs_new RENAME TO jobs;

ALTER TABLE jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id),
    ADD CONSTRAINT jobs_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT jobs_priority_check CHECK (priority IN ('high', 'normal', 'low')),
    ADD CONSTRAINT jobs_status_check CHECK (status IN
        ('scheduled', 'waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    ADD CONSTRAINT jobs_attempts_check CHECK (attempts >= 0),
    ADD CONSTRAINT jobs_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 25),
    ADD CONSTRAINT jobs_timeout_seconds_check CHECK (timeout_seconds BETWEEN 1 AND 86400),
    ADD CONSTRAINT jobs_backoff_base_seconds_check CHECK (backoff_base_seconds >= 0),
    ADD CONSTRAINT jobs_backoff_max_seconds_check CHECK (backoff_max_seconds >= 0),
    ADD CONSTRAINT jobs_progress_check CHECK (progress BETWEEN 0 AND 100);

-- Listing newest first. Running jobs are left out (listings add them from
-- jobs_running_lease_idx): a claim then writes no entry here, only the result does.
CREATE INDEX jobs_owner_created_idx ON jobs (owner_id, created_at DESC, id DESC)
    WHERE status <> 'running';
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC) WHERE status <> 'running';
-- Index entries most jobs never need (no transition is a HOT update, so every index gets an
-- entry on every transition): jobs without an Idempotency-Key or tags get none here.
CREATE UNIQUE INDEX jobs_owner_idempotency_key ON jobs (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tags_idx ON jobs USING gin (tags) WHERE tags <> '{}';
-- Quota: unfinished jobs per owner, counted as these plus the owner's running jobs (few: the
-- in-flight ones, found through jobs_running_lease_idx). Leaving `running` out spares every
-- claim an entry here.
CREATE INDEX jobs_owner_unfinished_idx ON jobs (owner_id)
    WHERE status IN ('scheduled', 'waiting', 'queued');
CREATE INDEX jobs_send_pending_idx ON jobs (updated_at) WHERE send_pending;
CREATE INDEX jobs_scheduled_run_at_idx ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_running_lease_idx ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_depends_on_idx ON jobs USING gin (depends_on) WHERE status = 'waiting';
-- The statuses a job on the hot path (queued, running, succeeded) never has: listings filtered
-- by one of them, the waiting jobs the sweep releases, the failed jobs the DLQ reconciles.
-- Retention reads jobs_created_idx instead of an index on finished_at, which every success
-- would have written to.
CREATE INDEX jobs_owner_rare_status_idx ON jobs (owner_id, status, created_at DESC, id DESC)
    WHERE status IN ('scheduled', 'waiting', 'failed', 'cancelled');
CREATE INDEX jobs_rare_status_idx ON jobs (status, created_at DESC, id DESC)
    WHERE status IN ('scheduled', 'waiting', 'failed', 'cancelled');
CREATE INDEX jobs_external_queued_idx ON jobs (priority, created_at)
    WHERE external AND status = 'queued';
CREATE INDEX jobs_external_ref_idx ON jobs (external_ref)
    WHERE external_ref IS NOT NULL AND status = 'running';
CREATE INDEX jobs_webhook_pending_idx ON jobs (updated_at) WHERE webhook_pending;
CREATE INDEX jobs_queued_idx ON jobs (queued_at) WHERE status = 'queued' AND NOT external;

CREATE TRIGGER jobs_delete_events AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION delete_events_of_deleted_jobs();

-- Events, compact (two are written per job run): the attempt in a small column of its own,
-- `detail` only when there is something to say, and no from_status, which is the previous
-- event's to_status (the history query derives it).
ALTER TABLE job_events ADD COLUMN attempt smallint;
ALTER TABLE job_events ALTER COLUMN detail DROP NOT NULL, ALTER COLUMN detail DROP DEFAULT;
UPDATE job_events SET attempt = (detail ->> 'attempt')::smallint,
                      detail = NULLIF(detail - 'attempt', '{}'::jsonb);
ALTER TABLE job_events DROP COLUMN from_status;
