-- Schedules in a time zone: the IANA name the cron expression is evaluated in. Schedules
-- created before this keep firing in UTC, which is what they meant.
ALTER TABLE schedules ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
