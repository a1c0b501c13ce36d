"""What platform job types need from outside: settings and lazily created AWS clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskmill.jobs.retry import PermanentJobFailure
from taskmill.settings import WorkerSettings


def boto3_client(service: str) -> Any:
    import boto3

    return boto3.client(service)


@dataclass
class PlatformServices:
    settings: WorkerSettings
    client_factory: Callable[[str], Any] = boto3_client
    _clients: dict[str, Any] = field(default_factory=dict)
    _webhook_secret: str | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client_factory(service)
        return self._clients[service]

    def webhook_secret(self) -> str:
        """The key that signs completion webhooks; read once per container."""
        if self._webhook_secret is None:
            if self.settings.webhook_secret is not None:
                self._webhook_secret = self.settings.webhook_secret.get_secret_value()
            elif self.settings.webhook_secret_arn:
                response = self.client("secretsmanager").get_secret_value(
                    SecretId=self.settings.webhook_secret_arn
                )
                self._webhook_secret = str(response["SecretString"])
            else:
                raise PermanentJobFailure(
                    "webhooks are not configured: set TASKMILL_WEBHOOK_SECRET or "
                    "TASKMILL_WEBHOOK_SECRET_ARN"
                )
        return self._webhook_secret
