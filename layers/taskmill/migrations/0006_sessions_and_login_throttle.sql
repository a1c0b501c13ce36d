-- Sessions: an access token names its login's refresh-token family (`sid`), and every API
-- request checks that the family still has a token nobody revoked. This partial index makes
-- that check one small probe however many rotations a long session has gone through.
CREATE INDEX refresh_tokens_live_family_idx ON refresh_tokens (family_id, user_id)
    WHERE revoked_at IS NULL;
