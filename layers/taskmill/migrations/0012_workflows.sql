-- Workflows (issue 15): a job created by another job's body (`context.submit`) names its
-- parent. No foreign key: retention deletes finished jobs in creation order, and a child
-- may outlive its parent (its `parent_id` then names a job that is gone), as `depends_on`
-- may name deleted jobs.
ALTER TABLE jobs ADD COLUMN parent_id uuid;

-- `GET /v1/jobs?parent_id=`, newest first. Only children get an entry: the jobs most jobs
-- are (no parent) cost their transitions nothing here.
CREATE INDEX jobs_parent_created_idx ON jobs (parent_id, created_at DESC, id DESC)
    WHERE parent_id IS NOT NULL;
