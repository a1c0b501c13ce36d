"""How hard login and sign-up are throttled, and the buckets an attempt is counted in.

Failed logins are counted per account from one address (a guesser is stopped after a few
tries without touching the owner, who signs in from elsewhere), per account over all
addresses (a guesser with many addresses), and per address over all accounts (one address
spraying a common password). A full bucket answers 429 until its window ends, then counts
afresh: nothing is locked for longer than a window, and refused attempts are not counted, so
a third party hammering on cannot extend it. Successful logins are refunded. Buckets are keyed
by the e-mail as typed, lower-cased by Postgres as it compares e-mails (so every spelling that
finds an account counts in its buckets), whether or not an account has it, so the throttle
tells nothing about which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskmill.settings import ApiSettings
from taskmill.users.throttle import Bucket


@dataclass(frozen=True)
class ThrottleLimits:
    login_window_seconds: int = 900
    login_per_account_address: int = 5
    login_per_account: int = 20
    login_per_address: int = 30
    signup_window_seconds: int = 3600
    signup_per_address: int = 20

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> ThrottleLimits:
        return cls(
            login_window_seconds=settings.login_window_seconds,
            login_per_account_address=settings.login_max_failures_per_account_address,
            login_per_account=settings.login_max_failures_per_account,
            login_per_address=settings.login_max_failures_per_address,
            signup_window_seconds=settings.signup_window_seconds,
            signup_per_address=settings.signup_max_per_address,
        )

    def login(self, email: str, address: str) -> list[Bucket]:
        # Not lower-cased here: the store lower-cases keys as Postgres compares e-mails
        # (Python's lower() makes "İ" two characters where Postgres's makes it "i").
        account = email.strip()
        window = self.login_window_seconds
        return [
            Bucket(
                f"login:account-address:{account} {address}", self.login_per_account_address, window
            ),
            Bucket(f"login:account:{account}", self.login_per_account, window),
            Bucket(f"login:address:{address}", self.login_per_address, window),
        ]

    def signup(self, address: str) -> list[Bucket]:
        return [
            Bucket(f"signup:address:{address}", self.signup_per_address, self.signup_window_seconds)
        ]
