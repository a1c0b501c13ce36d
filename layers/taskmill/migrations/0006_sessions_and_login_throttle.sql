-- Sessions: an access token names its login's refresh-token family (`sid`), and every API
-- request checks that the family still has a token nobody revoked. This partial index makes
-- that check one small probe however many rotations a long session has gone through.
CREATE INDEX refresh_tokens_live_family_idx ON refresh_tokens (family_id, user_id)
    WHERE revoked_at IS NULL;

-- Login and sign-up throttling: one row per bucket (an account, an account from one address,
-- an address), counting attempts in a fixed window that ends at `window_end`. A row whose
-- window has ended means nothing any more; such rows are deleted a few at a time by the
-- statement that counts attempts, so the table holds little more than one window's buckets.
CREATE TABLE auth_throttle (
    bucket     text PRIMARY KEY,
    window_end timestamptz NOT NULL,
    attempts   integer NOT NULL CHECK (attempts >= 0)
);
CREATE INDEX auth_throttle_window_end_idx ON auth_throttle (window_end);
