-- The external worker's report (`/complete`, `/fail`) that ended the job's latest attempt, as
-- a digest of the call, its lease token and its body (taskmill.lifecycle.outcomes.report_digest;
-- never the token itself, which is the worker's secret): a repeat of that report, whose answer
-- the worker lost, is answered as the first was and changes nothing. NULL when the attempt
-- ended otherwise (the sweep, the platform's own worker) and once the job is set going again
-- by a retry or a redrive; a claim leaves it (a running job takes reports by its lease only),
-- and the end of the new attempt replaces it. Nullable without a default: no table rewrite.
ALTER TABLE jobs ADD COLUMN report_digest uuid;
