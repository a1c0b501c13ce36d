"""The token signing key and its settings: all the authorizer needs besides `tokens`.

Kept apart from the API's services on purpose: the authorizer imports this, not the stores,
routes or psycopg, so verifying a JWT costs only what verifying a JWT needs.
"""

from __future__ import annotations

from typing import Protocol

from taskmill.auth.tokens import TokenConfig
from taskmill.secrets import Secret, SecretValue


class JwtKeySettings(Protocol):
    """What the key needs from settings: `taskmill.settings.JwtSettings` (pydantic, the API)
    or `taskmill.auth.authorizer_settings.LightAuthorizerSettings` (the authorizer)."""

    @property
    def jwt_secret(self) -> SecretValue | None: ...
    @property
    def jwt_secret_arn(self) -> str | None: ...
    @property
    def jwt_issuer(self) -> str: ...
    @property
    def jwt_audience(self) -> str: ...
    @property
    def access_token_ttl_seconds(self) -> int: ...
    @property
    def refresh_token_ttl_seconds(self) -> int: ...


def jwt_secret(settings: JwtKeySettings) -> Secret:
    return Secret.from_settings("TASKMILL_JWT_SECRET", settings.jwt_secret, settings.jwt_secret_arn)


def token_config(settings: JwtKeySettings, secret: Secret | None = None) -> TokenConfig:
    """The key is read once per container (locally from the environment, in AWS from
    Secrets Manager): tokens carry no key id yet, so a key cannot roll over mid-container
    anyway."""
    return TokenConfig(
        secret=(secret or jwt_secret(settings)).get(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )
