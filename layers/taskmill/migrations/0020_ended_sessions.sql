-- A session (a refresh-token family) has ended once any of its tokens is revoked: every
-- revocation (logout, a reused token, a password change, a disable) revokes all of a family's
-- live tokens at once, and a refresh under way then may still add one new token after it
-- (its old one was used, not yet revoked, when the revocation read the family). Checking for
-- a revoked token, not only for a live one, keeps that token from carrying the session on.
-- taskmill.users.store's SESSION_ACCOUNT_SQL and RefreshTokenStore.use probe this index.
CREATE INDEX refresh_tokens_revoked_family_idx ON refresh_tokens (family_id)
    WHERE revoked_at IS NOT NULL;
