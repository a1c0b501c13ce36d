-- What the client sent with an Idempotency-Key (a SHA-256 of the request body), so a repeat
-- with another body is told apart from a retry (409 idempotency_mismatch).
ALTER TABLE jobs ADD COLUMN idempotency_hash text;
