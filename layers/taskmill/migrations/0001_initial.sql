-- Users, refresh tokens, jobs, job events and the audit log.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    password_hash text NOT NULL,
    role          text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user', 'worker')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness: "Ann@x.io" and "ann@x.io" are one account.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Every rotation of one login stays in one family; reuse of a rotated token revokes it.
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE jobs (
    id                   uuid PRIMARY KEY,
    owner_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type                 text NOT NULL,
    payload              jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority             text NOT NULL CHECK (priority IN ('high', 'normal', 'low')),
    status               text NOT NULL CHECK (status IN
                           ('scheduled', 'waiting', 'queued', 'running',
                            'succeeded', 'failed', 'cancelled')),
    external             boolean NOT NULL DEFAULT false,
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts         integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 25),
    timeout_seconds      integer NOT NULL CHECK (timeout_seconds BETWEEN 1 AND 86400),
    backoff_base_seconds double precision NOT NULL CHECK (backoff_base_seconds >= 0),
    backoff_max_seconds  double precision NOT NULL CHECK (backoff_max_seconds >= 0),
    run_at               timestamptz NOT NULL DEFAULT now(),
    idempotency_key      text,
    depends_on           uuid[] NOT NULL DEFAULT '{}',
    webhook_url          text,
    name                 text,
    description          text,
    tags                 text[] NOT NULL DEFAULT '{}',
    progress             integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    progress_message     text,
    result               jsonb,
    last_error           text,
    correlation_id       text,
    -- The "to be sent" mark: set in the same statement that makes a job `queued`, cleared
    -- once its SQS message is sent. The recovery sweep sends what stays marked.
    send_pending         boolean NOT NULL DEFAULT false,
    cancel_requested     boolean NOT NULL DEFAULT false,
    -- Identifies the current claim, so a stale worker cannot report on a newer attempt.
    lease_token          uuid,
    lease_until          timestamptz,
    redrive_count        integer NOT NULL DEFAULT 0,
    queued_at            timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz,
    CONSTRAINT jobs_owner_idempotency_key UNIQUE (owner_id, idempotency_key)
);

-- Listing: own jobs newest first, with optional filters applied along that order. Every
-- index on jobs is paid on each state change (no transition is a HOT update), so filters on
-- status/type ride the newest-first indexes instead of having their own.
CREATE INDEX jobs_owner_created_idx ON jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_tags_idx ON jobs USING gin (tags);
-- Quota: unfinished jobs per owner.
CREATE INDEX jobs_owner_unfinished_idx ON jobs (owner_id)
    WHERE status IN ('scheduled', 'waiting', 'queued', 'running');
-- Recovery sweep, one partial index per part so each scan stays small.
CREATE INDEX jobs_send_pending_idx ON jobs (updated_at) WHERE send_pending;
CREATE INDEX jobs_scheduled_run_at_idx ON jobs (run_at) WHERE status = 'scheduled';
CREATE INDEX jobs_running_lease_idx ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_waiting_idx ON jobs (created_at) WHERE status = 'waiting';
CREATE INDEX jobs_depends_on_idx ON jobs USING gin (depends_on) WHERE status = 'waiting';
CREATE INDEX jobs_finished_idx ON jobs (finished_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX jobs_external_queued_idx ON jobs (priority, created_at)
    WHERE external AND status = 'queued';

-- Append-only history of every transition.
CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    -- No foreign key: its check would cost every transition a lookup. A statement-level
    -- trigger removes the events of deleted jobs instead (deletes are rare, transitions not).
    job_id      uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

CREATE FUNCTION delete_events_of_deleted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_events e USING deleted_jobs d WHERE e.job_id = d.id;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_delete_events AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION delete_events_of_deleted_jobs();

CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       uuid,
    action         text NOT NULL,
    target_type    text,
    target_id      text,
    detail         jsonb NOT NULL DEFAULT '{}'::jsonb,
    correlation_id text
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
