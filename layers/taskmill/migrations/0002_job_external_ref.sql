-- The handle of work running outside the worker (the ECS task ARN of a `container.run` job),
-- so its completion event can find the job.
ALTER TABLE jobs ADD COLUMN external_ref text;
CREATE INDEX jobs_external_ref_idx ON jobs (external_ref)
    WHERE external_ref IS NOT NULL AND status = 'running';
