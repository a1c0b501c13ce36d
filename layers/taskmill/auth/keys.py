"""The token signing key and its settings: all the authorizer needs besides `tokens`.

Kept apart from the API's services on purpose: the authorizer imports this, not the stores,
routes or psycopg, so verifying a JWT costs only what verifying a JWT needs.
"""

from __future__ import annotations

from taskmill.auth.tokens import TokenConfig
from taskmill.secrets import Secret
from taskmill.settings import JwtSettings


def jwt_secret(settings: JwtSettings) -> Secret:
    return Secret.from_settings("TASKMILL_JWT_SECRET", settings.jwt_secret, settings.jwt_secret_arn)


def token_config(settings: JwtSettings, secret: Secret | None = None) -> TokenConfig:
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
