"""Register, log in, refresh (rotation with reuse detection), log out."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from taskmill.audit import AuditLog
from taskmill.auth.passwords import DEFAULT_PASSWORDS, Passwords
from taskmill.auth.throttle import Bucket, ThrottleLimits
from taskmill.auth.tokens import (
    TokenConfig,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
)
from taskmill.errors import Forbidden, InvalidInput, TooManyAttempts, Unauthorized
from taskmill.users.store import RefreshTokenStore, User, UserStore
from taskmill.users.throttle import ThrottleStore


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


class AuthService:
    def __init__(
        self,
        users: UserStore,
        tokens: RefreshTokenStore,
        audit: AuditLog,
        config: TokenConfig,
        throttle: ThrottleStore,
        *,
        limits: ThrottleLimits | None = None,
        passwords: Passwords = DEFAULT_PASSWORDS,
    ) -> None:
        self.users = users
        self.tokens = tokens
        self.audit = audit
        self.config = config
        self.throttle = throttle
        self.limits = limits or ThrottleLimits()
        self.passwords = passwords

    def register(self, email: str, password: str, *, role: str = "user") -> User:
        """An account made by an admin (any role) or by `sign_up`."""
        return self.users.create(email, self.passwords.hash(password), role=role)

    def sign_up(
        self, email: str, password: str, *, source_ip: str, correlation_id: str | None = None
    ) -> User:
        """Self-service registration, throttled per address: every attempt counts, because
        each costs a password hash and an existing e-mail answers 409 (the product has no
        e-mail verification to hide that behind), so probing which e-mails have accounts is
        limited like creating them."""
        wait = self.throttle.attempt(self.limits.signup(source_ip))
        if wait is not None:
            self.audit.record(
                "auth.signup_throttled",
                actor_id=None,
                detail={"source_ip": source_ip, "retry_after": wait},
                correlation_id=correlation_id,
            )
            raise TooManyAttempts(
                "too many sign-ups from this address; retry later", retry_after=wait
            )
        return self.register(email, password)

    def _issue(self, user: User, family_id: UUID | None = None) -> TokenPair:
        """A token pair for a new session (a login) or the next of a session (a refresh):
        the refresh-token family is the session the access token names."""
        session_id = family_id or uuid4()
        access, ttl = issue_access_token(
            self.config,
            user_id=str(user.id),
            session_id=str(session_id),
            role=user.role,
            email=user.email,
        )
        refresh, refresh_hash = new_refresh_token()
        self.tokens.add(
            user.id, refresh_hash, family_id=session_id, ttl_seconds=self.config.refresh_ttl_seconds
        )
        return TokenPair(access, refresh, ttl)

    def login(
        self, email: str, password: str, *, source_ip: str, correlation_id: str | None = None
    ) -> TokenPair:
        # Checked before anything else: a throttled attempt costs no password hash, and
        # answers the same whether or not the account exists.
        buckets = self._password_attempt(
            email,
            source_ip,
            actor_id=None,
            correlation_id=correlation_id,
            refusal="too many failed sign-ins; retry later",
        )
        user = self.users.find_by_email(email)
        # Unknown accounts cost the same hash as wrong passwords: no enumeration by timing.
        verified = self.passwords.verify(
            password, user.password_hash if user else self.passwords.dummy_hash
        )
        ok = verified.ok
        if user is None or not ok or user.disabled:
            self.audit.record(
                "auth.login_failed",
                actor_id=user.id if user else None,
                detail={
                    "email": email[:320],
                    "source_ip": source_ip,
                    "reason": "disabled" if ok and user else "credentials",
                },
                correlation_id=correlation_id,
            )
            raise Unauthorized("e-mail or password is wrong")
        if verified.needs_rehash:
            # The one moment the password is known: store it at today's parameters (or out
            # of the former scrypt scheme). Unless the password changed meanwhile.
            self.users.replace_password_hash(
                user.id, old=user.password_hash, new=self.passwords.hash(password)
            )
        self.throttle.refund(buckets)  # only failures fill the buckets
        return self._issue(user)

    def _password_attempt(
        self,
        email: str,
        source_ip: str,
        *,
        actor_id: UUID | None,
        correlation_id: str | None,
        refusal: str,
    ) -> list[Bucket]:
        """Count a password attempt against the sign-in throttle (its e-mail's and its
        address's buckets) and return the buckets, to refund if the password is right; a
        throttled attempt is audited and refused (429) before any hash is computed."""
        buckets = self.limits.login(email, source_ip)
        wait = self.throttle.attempt(buckets)
        if wait is not None:
            self.audit.record(
                "auth.login_throttled",
                actor_id=actor_id,
                detail={"email": email[:320], "source_ip": source_ip, "retry_after": wait},
                correlation_id=correlation_id,
            )
            raise TooManyAttempts(refusal, retry_after=wait)
        return buckets

    def confirm_password(
        self,
        user: User,
        password: str | None,
        *,
        source_ip: str,
        correlation_id: str | None = None,
        action: str = "change your own e-mail or password",
    ) -> None:
        """Proof that the account's owner, not just a holder of one of its access tokens, is
        changing its password or e-mail, or deleting it: else a token copied for minutes would
        take (or end) the account for good. Guesses fill the same buckets as failed logins."""
        if not password:
            raise InvalidInput(f"current_password is needed to {action}")
        buckets = self._password_attempt(
            user.email,
            source_ip,
            actor_id=user.id,
            correlation_id=correlation_id,
            refusal="too many wrong passwords; retry later",
        )
        if not self.passwords.verify(password, user.password_hash).ok:
            self.audit.record(
                "auth.password_check_failed",
                actor_id=user.id,
                detail={"source_ip": source_ip},
                correlation_id=correlation_id,
            )
            raise Forbidden("current_password is wrong")
        self.throttle.refund(buckets)

    def refresh(self, refresh_token: str, *, correlation_id: str | None = None) -> TokenPair:
        row = self.tokens.use(hash_refresh_token(refresh_token))
        if row is None or row["expired"] or (row["revoked"] and not row["reused"]):
            raise Unauthorized("refresh token invalid or expired")
        if row["reused"]:
            # A rotated (or revoked) token came back: someone else holds a copy. End the
            # whole login so neither copy works any more.
            revoked = self.tokens.revoke_family(row["family_id"])
            self.audit.record(
                "auth.refresh_reuse",
                actor_id=row["user_id"],
                target_type="token_family",
                target_id=str(row["family_id"]),
                detail={"revoked_tokens": revoked},
                correlation_id=correlation_id,
            )
            raise Unauthorized("refresh token was already used; sign in again")
        user = self.users.get(row["user_id"])
        if user.disabled:
            raise Forbidden("account disabled")
        return self._issue(user, family_id=row["family_id"])

    def logout(self, refresh_token: str, user_id: UUID, session_id: UUID) -> None:
        """End the caller's session: its access tokens stop working on their next request."""
        self.tokens.log_out(user_id, session_id, hash_refresh_token(refresh_token))
