-- Validate 0015's CHECK on the rows written before it. In a transaction of its own, VALIDATE
-- CONSTRAINT takes SHARE UPDATE EXCLUSIVE: the scan runs while the API and the workers go on
-- reading and writing `jobs`.
ALTER TABLE jobs VALIDATE CONSTRAINT jobs_run_at_range_check;
