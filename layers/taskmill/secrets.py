"""Secrets given either as a plain value (locally, in tests) or as a Secrets Manager ARN
(in AWS, where no secret is ever put in an environment variable).

A value read from Secrets Manager is kept for `max_age_seconds`, so a rotated secret is
picked up without a cold start, and a caller that learns the value is stale (the database
refused the password) can `invalidate()` it.

In Lambda the secrets are read without boto3 (`taskmill.secrets_http`: one signed HTTPS call,
one connection shared by the container's secrets), which keeps boto3 out of the cold start
of every function that makes no other AWS call before it answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from taskmill.aws import aws_errors, new_client
from taskmill.errors import DependencyUnavailable, SettingsError
from taskmill.secrets_http import AwsCallFailed, SecretsManagerHttp

DEFAULT_MAX_AGE_SECONDS = 300.0


class SecretValue(Protocol):
    """A setting's secret value: pydantic's `SecretStr`, or the authorizer's `PlainSecret`."""

    def get_secret_value(self) -> str: ...


# One client (and connection) per endpoint for the container's secrets.
_http_clients: dict[tuple[str, str], SecretsManagerHttp] = {}
_http_lock = threading.Lock()


def secrets_manager_client() -> Any:
    """In Lambda, the container's `SecretsManagerHttp`; elsewhere a boto3 client."""
    client = SecretsManagerHttp.from_environment()
    if client is None:
        return new_client("secretsmanager")
    with _http_lock:
        return _http_clients.setdefault((client.region, client.endpoint), client)


class Secret:
    def __init__(
        self,
        name: str,
        *,
        value: str | None = None,
        arn: str | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        client_factory: Callable[[], Any] = secrets_manager_client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name  # what to call it in an error: the setting's name
        self._value = value
        self._arn = arn
        self._max_age = max_age_seconds
        self._client_factory = client_factory
        self._client: Any = None
        self._clock = clock
        self._cached: str | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, name: str, value: SecretValue | None, arn: str | None) -> Secret:
        """The pair of settings every secret has: `<NAME>` (a value) or `<NAME>_ARN`."""
        return cls(name, value=value.get_secret_value() if value is not None else None, arn=arn)

    @property
    def configured(self) -> bool:
        return self._value is not None or bool(self._arn)

    def get(self) -> str:
        if self._value is not None:
            return self._value
        if not self._arn:
            raise SettingsError(f"{self.name} is not configured")
        with self._lock:  # job bodies run on threads; read once, not once per thread
            if self._cached is None or self._clock() - self._read_at >= self._max_age:
                self._cached = self._read(self._arn)
                self._read_at = self._clock()
            return self._cached

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _read(self, arn: str) -> str:
        if self._client is None:
            self._client = self._client_factory()
        try:
            response = self._client.get_secret_value(SecretId=arn)
        except (AwsCallFailed, *aws_errors()) as exc:  # type: ignore[misc]
            raise DependencyUnavailable(f"Secrets Manager did not return {self.name}") from exc
        return str(response["SecretString"])
