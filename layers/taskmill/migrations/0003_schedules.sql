-- Recurring schedules: a cron expression (UTC) and the job to create at each fire time.
CREATE TABLE schedules (
    id            uuid PRIMARY KEY,
    owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    cron          text NOT NULL,
    job_template  jsonb NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    next_fire_at  timestamptz NOT NULL,
    last_fire_at  timestamptz,
    last_job_id   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE enabled;
CREATE INDEX schedules_owner_idx ON schedules (owner_id, created_at DESC);
