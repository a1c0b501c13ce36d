-- Flow control (SPEC §6): limit keys on jobs, limits per key, paused queues and job types.

-- The keys a job holds besides its implicit `owner:<owner_id>` (validated by the API: at
-- most 4, `^[A-Za-z0-9:._-]{1,128}$`, never `owner:`). Appended: the hot columns stay last
-- but one, and an empty array costs a claim no bytes it did not write before.
ALTER TABLE jobs ADD COLUMN limit_keys text[] NOT NULL DEFAULT '{}'::text[];

-- "How many jobs holding K started lately" (GET /v1/limits/{key}) for explicit keys. Jobs
-- without keys have no entry, so the create and claim of the common job write nothing here.
CREATE INDEX jobs_limit_keys_idx ON jobs USING gin (limit_keys) WHERE limit_keys <> '{}';

-- A limit per key. `concurrency`: at most N running jobs hold the key. `rate_*`: a token
-- bucket of capacity `rate_limit` refilled at `rate_limit / rate_period_seconds` per second;
-- `tokens` is its level at `refilled_at`, brought up to date by the claim that takes from it.
CREATE TABLE limits (
    key                  text PRIMARY KEY CHECK (key ~ '^[A-Za-z0-9:._-]{1,128}$'),
    concurrency          integer CHECK (concurrency >= 0),
    rate_limit           integer CHECK (rate_limit >= 1),
    rate_period_seconds  double precision CHECK (rate_period_seconds > 0),
    tokens               double precision,
    refilled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text,
    CHECK ((rate_limit IS NULL) = (rate_period_seconds IS NULL)),
    CHECK (concurrency IS NOT NULL OR rate_limit IS NOT NULL)
);

-- A paused priority queue (`kind` 'queue', name = priority) or job type (`kind` 'type').
CREATE TABLE pauses (
    kind       text NOT NULL CHECK (kind IN ('queue', 'type')),
    name       text NOT NULL,
    paused_at  timestamptz NOT NULL DEFAULT now(),
    paused_by  text,
    PRIMARY KEY (kind, name)
);
