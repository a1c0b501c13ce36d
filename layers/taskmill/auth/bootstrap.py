"""The first admin: the one account that is not created through the API."""

from __future__ import annotations

from taskmill.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from taskmill.db import Database
from taskmill.errors import SettingsError
from taskmill.secrets import Secret
from taskmill.settings import MigrationSettings
from taskmill.users.store import User, UserStore


def ensure_first_admin(db: Database, email: str, password: str) -> tuple[User, bool]:
    """Create `email` as an admin unless an account with that e-mail exists (whatever its
    role: a later demotion or password change is never undone by a redeploy)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SettingsError(f"the first admin's password needs {MIN_PASSWORD_LENGTH}+ characters")
    return UserStore(db).ensure_admin(email, hash_password(password))


def bootstrap_password_secret(settings: MigrationSettings) -> Secret:
    return Secret.from_settings(
        "TASKMILL_BOOTSTRAP_ADMIN_PASSWORD",
        settings.bootstrap_admin_password,
        settings.bootstrap_admin_secret_arn,
    )
