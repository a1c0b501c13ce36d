"""Users and refresh tokens in Postgres: all their SQL in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict

from taskmill.db import Database
from taskmill.errors import Conflict, Forbidden, NotFound, Unauthorized

# Whether the session (refresh-token family) `{family}` has ended: any of its tokens revoked.
# Every revocation revokes all of a family's live tokens at once, but a refresh under way may
# add one more after it (its old token was used, not yet revoked, when the revocation read the
# family): that token is live in an ended session. `refresh_tokens_revoked_family_idx`.
_ENDED = """EXISTS (SELECT 1 FROM refresh_tokens e
               WHERE e.family_id = {family} AND e.revoked_at IS NOT NULL)"""

# The caller's current account and whether its session still stands: one index probe each
# (users' primary key; the live tokens of a family, `refresh_tokens_live_family_idx`; its
# revoked ones, `_ENDED`). A session is the refresh-token family its login started; logging
# out, a reused refresh token, a disable or a password change revoke its tokens, and so end
# it. Shared with the statement that creates jobs, which checks the same thing without a
# round trip of its own.
# Parameters: %(caller)s (user id) and %(session)s (session id).
SESSION_ACCOUNT_SQL = (
    """
SELECT u.id, u.role, u.email, u.disabled,
       EXISTS (SELECT 1 FROM refresh_tokens t
               WHERE t.family_id = %(session)s AND t.user_id = u.id
                 AND t.revoked_at IS NULL)
       AND NOT """
    + _ENDED.replace("{family}", "%(session)s")
    + """ AS session_live
FROM users u WHERE u.id = %(caller)s"""
)

# An account's lock, for statements whose effect the account must still be allowed when
# they commit (an external claim): they hold it shared until their transaction ends, and an
# admin's disable, delete or role change of the account holds it exclusive, so either waits
# for the other. A transaction-level advisory lock in the two-key space (limit keys and the
# other advisory locks use the one-key space, apart from it); accounts whose ids hash alike
# only wait for each other. Not a `FOR SHARE` on the account's row: a share lock on a row is
# granted at once to a transaction that comes while a writer waits for the row, so a fleet of
# workers on one account, their claims overlapping, kept the admin's disable waiting, up to
# its statement timeout; Postgres queues a request for this lock behind a waiting one it
# conflicts with. Take it, then read the account (`SESSION_ACCOUNT_SQL`) in the next
# statement, whose snapshot sees a change committed while this one waited.
# Parameter: %(caller)s (user id).
ACCOUNT_LOCK_CLASS = 0x746D6163  # "tmac"
SHARE_ACCOUNT_SQL = (
    f"SELECT pg_advisory_xact_lock_shared({ACCOUNT_LOCK_CLASS}, hashtext(%(caller)s::text))"
)
_HOLD_ACCOUNT_SQL = (
    f"SELECT pg_advisory_xact_lock({ACCOUNT_LOCK_CLASS}, hashtext(%(caller)s::text))"
)

# Runs one statement and returns its rows (`Database.execute`, `Transaction.execute`).
_Statement = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    password_hash: str


class SessionAccount(BaseModel):
    """An account as it is now, seen from one of its sessions."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    role: str
    email: str
    disabled: bool
    session_live: bool

    @staticmethod
    def require(account: SessionAccount | None, *roles: str) -> SessionAccount:
        """The account if it may act now with one of `roles` (any role when none is given);
        else the error its caller gets. A deleted account or an ended session is 401 (sign
        in again); a disabled account or a role that does not fit is 403."""
        if account is None or not account.session_live:
            raise Unauthorized("the session has ended; sign in again")
        if account.disabled:
            raise Forbidden("account disabled")
        if roles and account.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role")
        return account


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, email: str, password_hash: str, role: str = "user") -> User:
        rows = self._db.execute(
            "INSERT INTO users (id, email, password_hash, role) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (lower(email)) DO NOTHING RETURNING *",
            (uuid4(), email, password_hash, role),
        )
        if not rows:
            raise Conflict("an account with this e-mail already exists")
        return User.model_validate(rows[0])

    def get(self, user_id: UUID) -> User:
        rows = self._db.execute("SELECT * FROM users WHERE id = %s", (user_id,))
        if not rows:
            raise NotFound("user not found")
        return User.model_validate(rows[0])

    def session_account(self, user_id: UUID, session_id: UUID) -> SessionAccount | None:
        rows = self._db.execute(SESSION_ACCOUNT_SQL, {"caller": user_id, "session": session_id})
        return SessionAccount.model_validate(rows[0]) if rows else None

    def find_by_email(self, email: str) -> User | None:
        rows = self._db.execute("SELECT * FROM users WHERE lower(email) = lower(%s)", (email,))
        return User.model_validate(rows[0]) if rows else None

    def list(self, *, limit: int, after: UUID | None = None) -> list[User]:
        rows = self._db.execute(
            "SELECT * FROM users WHERE (%(after)s::uuid IS NULL OR id > %(after)s::uuid) "
            "ORDER BY id LIMIT %(limit)s",
            {"after": after, "limit": limit},
        )
        return [User.model_validate(row) for row in rows]

    def update(
        self,
        user_id: UUID,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change an account; disabling the last enabled admin is refused like demoting or
        deleting it (in the same statement, so two admins disabling each other at once
        cannot both succeed)."""
        with self._held(user_id, disabled is True) as run:
            rows = run(
                """
UPDATE users SET email = coalesce(%(email)s, email),
       password_hash = coalesce(%(hash)s, password_hash),
       disabled = coalesce(%(disabled)s, disabled), updated_at = now()
WHERE id = %(id)s
  AND (%(disabled)s IS NOT TRUE OR role <> 'admin' OR disabled
       OR (SELECT count(*) FROM (SELECT 1 FROM users
                                 WHERE role = 'admin' AND NOT disabled AND id <> %(id)s
                                 FOR UPDATE) others) > 0)
RETURNING *""",
                {"email": email, "hash": password_hash, "disabled": disabled, "id": user_id},
            )
        if not rows:
            self.get(user_id)
            raise Conflict("the last admin cannot be disabled")
        return User.model_validate(rows[0])

    def replace_password_hash(self, user_id: UUID, *, old: str, new: str) -> bool:
        """Re-hash on login: a no-op if the hash changed since it was read (a password
        change in between wins)."""
        rows = self._db.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s RETURNING id",
            (new, user_id, old),
        )
        return bool(rows)

    def set_role(self, user_id: UUID, role: str) -> User:
        """Change a role; refused when it would leave no enabled admin (one statement, so
        two admins demoting each other at once cannot both succeed)."""
        with self._held(user_id) as run:
            rows = run(
                """
UPDATE users SET role = %(role)s, updated_at = now()
WHERE id = %(id)s
  AND (%(role)s = 'admin' OR role <> 'admin'
       OR (SELECT count(*) FROM (SELECT 1 FROM users
                                 WHERE role = 'admin' AND NOT disabled AND id <> %(id)s
                                 FOR UPDATE) others) > 0)
RETURNING *""",
                {"role": role, "id": user_id},
            )
        if not rows:
            self.get(user_id)
            raise Conflict("the last admin cannot be demoted")
        return User.model_validate(rows[0])

    def delete(self, user_id: UUID) -> None:
        with self._held(user_id) as run:
            rows = run(
                """
DELETE FROM users WHERE id = %(id)s
  AND (role <> 'admin'
       OR (SELECT count(*) FROM (SELECT 1 FROM users
                                 WHERE role = 'admin' AND NOT disabled AND id <> %(id)s
                                 FOR UPDATE) others) > 0)
RETURNING id""",
                {"id": user_id},
            )
        if not rows:
            self.get(user_id)
            raise Conflict("the last admin cannot be deleted")

    @contextmanager
    def _held(self, user_id: UUID, hold: bool = True) -> Iterator[_Statement]:
        """Run a change of the account in a transaction holding its lock exclusive
        (`_HOLD_ACCOUNT_SQL`; claims hold it shared, `SHARE_ACCOUNT_SQL`) when `hold`: one
        that ends what the account may do (a disable, delete or role change) waits for its
        claims under way, and those that come meanwhile wait for it. Else as one statement,
        as before."""
        if not hold:
            yield self._db.execute
            return
        with self._db.transaction() as tx:
            tx.execute(_HOLD_ACCOUNT_SQL, {"caller": user_id})
            yield tx.execute

    def ensure_admin(self, email: str, password_hash: str) -> tuple[User, bool]:
        """The first-admin bootstrap: create the account as admin if it does not exist.
        Never changes an existing account (its password may have been changed since)."""
        existing = self.find_by_email(email)
        if existing is not None:
            return existing, False
        try:
            return self.create(email, password_hash, role="admin"), True
        except Conflict:
            found = self.find_by_email(email)
            assert found is not None
            return found, False


class RefreshTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, user_id: UUID, token_hash: bytes, *, family_id: UUID, ttl_seconds: int) -> None:
        self._db.execute(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) "
            "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))",
            (uuid4(), user_id, family_id, token_hash, ttl_seconds),
        )

    def use(self, token_hash: bytes) -> dict[str, Any] | None:
        """Mark a refresh token used, once. Returns its row with `reused` telling whether it
        had been used before (the sign of a stolen token), `revoked` (the token, or another
        of its session's: the session has ended) and `expired`."""
        rows = self._db.execute(
            """
WITH target AS MATERIALIZED (
    SELECT r.*, r.revoked_at IS NOT NULL OR """
            + _ENDED.replace("{family}", "r.family_id")
            + """ AS ended
    FROM refresh_tokens r WHERE r.token_hash = %(hash)s FOR UPDATE OF r
),
used AS (
    UPDATE refresh_tokens r SET used_at = now()
    FROM target t
    WHERE r.id = t.id AND t.used_at IS NULL AND NOT t.ended AND t.expires_at > now()
    RETURNING r.id
)
SELECT t.user_id, t.family_id, t.expires_at,
       t.used_at IS NOT NULL AS reused,
       t.ended AS revoked,
       t.expires_at <= now() AS expired
FROM target t""",
            {"hash": token_hash},
        )
        return rows[0] if rows else None

    def delete_expired(self, *, older_than_seconds: float, limit: int) -> int:
        """Delete up to `limit` refresh tokens (of each kind below) that expired more than
        `older_than_seconds` ago, oldest first: a token past its expiry is refused whatever
        its row says, so it is kept only where a row still decides something.

        - A rotated token (used, not revoked): alone. A replay of it once expired is refused
          as expired, with or without its row (reuse is told from a replay while it lives).
        - A revoked token only with its whole session (family), once every token of the
          session has expired: while any lives, the revoked one is what says the session
          has ended (`_ENDED`), and a token a racing refresh added after the revocation
          would carry the session on without it.
        - A session's other tokens, likewise, with the session."""
        params = {"age": older_than_seconds, "limit": limit}
        rotated = self._db.execute(
            """
DELETE FROM refresh_tokens WHERE id IN (
    SELECT id FROM refresh_tokens
    WHERE expires_at < now() - make_interval(secs => %(age)s)
      AND used_at IS NOT NULL AND revoked_at IS NULL
    ORDER BY expires_at LIMIT %(limit)s)
RETURNING id""",
            params,
        )
        ended = self._db.execute(
            """
DELETE FROM refresh_tokens WHERE family_id IN (
    SELECT o.family_id FROM (
        SELECT family_id FROM refresh_tokens
        WHERE expires_at < now() - make_interval(secs => %(age)s)
        ORDER BY expires_at LIMIT %(limit)s) o
    WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens l
                      WHERE l.family_id = o.family_id
                        AND l.expires_at >= now() - make_interval(secs => %(age)s)))
RETURNING id""",
            params,
        )
        return len(rotated) + len(ended)

    def revoke_family(self, family_id: UUID) -> int:
        rows = self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE family_id = %s AND revoked_at IS NULL RETURNING id",
            (family_id,),
        )
        return len(rows)

    def log_out(self, user_id: UUID, session_id: UUID, token_hash: bytes) -> int:
        """End the caller's session and, if the refresh token is another of the caller's
        sessions (a client logging out with a token it kept from elsewhere), that one too.
        Someone else's token is left alone."""
        rows = self._db.execute(
            """
UPDATE refresh_tokens SET revoked_at = now()
WHERE user_id = %(user)s AND revoked_at IS NULL
  AND (family_id = %(session)s
       OR family_id IN (SELECT family_id FROM refresh_tokens
                        WHERE token_hash = %(hash)s AND user_id = %(user)s))
RETURNING id""",
            {"user": user_id, "session": session_id, "hash": token_hash},
        )
        return len(rows)

    def revoke_user(self, user_id: UUID, *, keep_session: UUID | None = None) -> None:
        """End every session of a user, except `keep_session` (the one changing its own
        password goes on)."""
        self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE user_id = %s AND revoked_at IS NULL "
            "AND family_id IS DISTINCT FROM %s::uuid",
            (user_id, keep_session),
        )
