-- A schedule the sweep could not evaluate any more (its stored cron expression or time zone
-- no longer parses: a row written by hand, a zone gone from the tzdata in use). The sweep
-- disables it and says why here, so one bad row neither stops the other schedules nor goes
-- unnoticed by its owner (GET /v1/schedules shows `error`).
ALTER TABLE schedules ADD COLUMN error text, ADD COLUMN error_at timestamptz;
