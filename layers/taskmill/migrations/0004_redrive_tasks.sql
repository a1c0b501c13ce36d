-- Large DLQ redrives run asynchronously in the retry function; this is their progress.
CREATE TABLE redrive_tasks (
    id            uuid PRIMARY KEY,
    priority      text NOT NULL CHECK (priority IN ('high', 'normal', 'low')),
    criteria      jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'done', 'failed')),
    redriven      integer NOT NULL DEFAULT 0,
    orphans       integer NOT NULL DEFAULT 0,
    purged        integer NOT NULL DEFAULT 0,
    error         text,
    requested_by  uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
