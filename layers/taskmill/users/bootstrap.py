"""The first admin: the one account that is not created through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskmill.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from taskmill.db import Database
from taskmill.db.credentials import default_secrets_client
from taskmill.errors import SettingsError
from taskmill.settings import MigrationSettings
from taskmill.users.store import User, UserStore


def ensure_first_admin(db: Database, email: str, password: str) -> tuple[User, bool]:
    """Create `email` as an admin unless an account with that e-mail exists (whatever its
    role: a later demotion or password change is never undone by a redeploy)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SettingsError(f"the first admin's password needs {MIN_PASSWORD_LENGTH}+ characters")
    return UserStore(db).ensure_admin(email, hash_password(password))


def bootstrap_password(
    settings: MigrationSettings, secrets_client_factory: Callable[[], Any] = default_secrets_client
) -> str | None:
    if settings.bootstrap_admin_password is not None:
        return settings.bootstrap_admin_password.get_secret_value()
    if settings.bootstrap_admin_secret_arn:
        response = secrets_client_factory().get_secret_value(
            SecretId=settings.bootstrap_admin_secret_arn
        )
        return str(response["SecretString"])
    return None
