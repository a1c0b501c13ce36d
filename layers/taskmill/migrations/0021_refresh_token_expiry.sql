-- Refresh tokens were kept for ever: one row per refresh (every 15 minutes of an open
-- session), so the table grew without bound. The recovery sweep now deletes those long past
-- their expiry (taskmill.users.store.RefreshTokenStore.delete_expired), oldest first, which
-- this index serves.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
