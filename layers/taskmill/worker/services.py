"""What platform job types need from outside: settings, AWS clients and the webhook key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskmill.aws import new_client
from taskmill.jobs.retry import PermanentJobFailure
from taskmill.secrets import Secret
from taskmill.settings import WebhookSettings, WorkerSettings


def webhook_secret_of(settings: WebhookSettings) -> Secret:
    return Secret.from_settings(
        "TASKMILL_WEBHOOK_SECRET", settings.webhook_secret, settings.webhook_secret_arn
    )


@dataclass
class PlatformServices:
    settings: WorkerSettings
    client_factory: Callable[[str], Any] = new_client
    secret: Secret | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    # Job bodies run on threads: two creating the same client would each pay for it.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.client_factory(service)
            return self._clients[service]

    def webhook_secret(self) -> str:
        """The platform's webhook key, from which each owner's signing key is derived
        (cached; re-read after its max age)."""
        if self.secret is None:
            self.secret = webhook_secret_of(self.settings)
        if not self.secret.configured:
            raise PermanentJobFailure(
                "webhooks are not configured: set TASKMILL_WEBHOOK_SECRET or "
                "TASKMILL_WEBHOOK_SECRET_ARN"
            )
        return self.secret.get()
