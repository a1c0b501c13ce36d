-- The "webhook to be created" mark: set in the same statement that finishes a job that asked
-- for a completion webhook, cleared once its `webhook.deliver` job exists. The webhook job is
-- built in Python from the `webhook.deliver` type (its defaults, one event builder) right
-- after the final statement; the recovery sweep creates what stays marked (a crash between
-- the two), so a webhook is never lost nor sent for a state that was not committed.
ALTER TABLE jobs ADD COLUMN webhook_pending boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_webhook_pending_idx ON jobs (updated_at) WHERE webhook_pending;
