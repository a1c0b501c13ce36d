"""Everything the routers use, built once per container (or handed in by tests)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from taskmill.api.caller import Caller, identity_from_event
from taskmill.audit import AuditLog
from taskmill.auth.keys import token_config
from taskmill.auth.passwords import DEFAULT_PASSWORDS, Passwords
from taskmill.auth.service import AuthService
from taskmill.auth.throttle import ThrottleLimits
from taskmill.auth.tokens import TokenConfig
from taskmill.aws import new_client
from taskmill.db import Database
from taskmill.db.credentials import database_from_settings
from taskmill.errors import DependencyUnavailable, InvalidInput, PayloadTooLarge
from taskmill.event_sources import EventSources
from taskmill.flow.limits import LimitStore
from taskmill.flow.pauses import PauseStore
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.destinations import DestinationRefused, check_url
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.jobtypes.webhook_deliver import owner_webhook_secret
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.observability import MetricBatch
from taskmill.queue.sqs import JobQueue, default_sqs_client
from taskmill.recovery.redrive_tasks import LambdaLauncher, TaskLauncher, ThreadLauncher, run_task
from taskmill.secrets import Secret
from taskmill.settings import ApiSettings
from taskmill.users.store import RefreshTokenStore, SessionAccount, UserStore
from taskmill.users.throttle import ThrottleStore

# Kept free at the end of a request for the answer itself.
RESPONSE_MARGIN_SECONDS = 1.0


@dataclass
class ApiServices:
    settings: ApiSettings
    db: Database
    queue: JobQueue
    registry: JobTypeRegistry
    tokens: TokenConfig
    logger: logging.Logger | Any
    # Per-invocation counts (jobs created per type and priority), flushed by the handler.
    metrics: MetricBatch = field(default_factory=MetricBatch)
    launcher: TaskLauncher | None = None
    # OWASP's argon2id parameters; tests hand in cheap ones.
    passwords: Passwords = DEFAULT_PASSWORDS
    # The platform's webhook key (read on first use, cached like every secret).
    webhook_key: Secret | None = None
    # The worker's event source mappings (none locally): pausing a queue disables its own.
    event_sources: EventSources = field(default_factory=lambda: EventSources({}))

    def send_deadline(self, lambda_context: Any) -> float | None:
        """When the request's last SQS call must be over (a `time.monotonic()` value): the
        invocation's remaining time, less two statements (clearing the "to be sent" mark,
        then reading back or auditing) and the answer. Sends past it are left to the
        recovery sweep, so the client gets its answer before API Gateway's 29 s instead of
        a 504 it would retry."""
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return None
        budget = remaining() / 1000 - 2 * self.settings.db_statement_timeout_ms / 1000
        return time.monotonic() + budget - RESPONSE_MARGIN_SECONDS

    def caller(self, event: dict[str, Any], *roles: str) -> Caller:
        """The caller as its account is now (one small read): refused if the account is
        gone or disabled, the session ended, or its role is not one of `roles` (any when
        none is given). Routes call it once per request."""
        identity = identity_from_event(event)
        account = SessionAccount.require(
            self.users.session_account(identity.id, identity.session_id), *roles
        )
        return Caller(account.id, account.role, account.email, identity.session_id)

    def check_payload_size(self, payload: Any) -> None:
        """Refuse (413) a job payload over `max_payload_bytes`, as compact JSON: whatever
        creates the job, a create, a batch or a schedule's template."""
        size = len(json.dumps(payload, separators=(",", ":")).encode())
        if size > self.settings.max_payload_bytes:
            raise PayloadTooLarge(
                f"payload is {size} bytes; the limit is {self.settings.max_payload_bytes}"
            )

    def check_webhook_url(self, url: str | None) -> None:
        """Refuse, at creation, a webhook_url the worker would refuse to call whatever DNS
        says: an IP address (in any spelling) or name of this machine that is private,
        loopback, link-local, metadata or otherwise special. Names are resolved, and
        checked again, only when the webhook is delivered."""
        if url is None:
            return
        try:
            check_url(url, allow_private=self.settings.http_allow_private)
        except DestinationRefused as exc:
            raise InvalidInput(f"webhook_url: {exc}") from None

    def owner_webhook_secret(self, owner_id: UUID) -> str:
        """The key the worker signs `owner_id`'s completion webhooks with."""
        if self.webhook_key is None:
            self.webhook_key = Secret.from_settings(
                "TASKMILL_WEBHOOK_SECRET",
                self.settings.webhook_secret,
                self.settings.webhook_secret_arn,
            )
        if not self.webhook_key.configured:
            raise DependencyUnavailable("webhooks are not configured on this deployment")
        return owner_webhook_secret(self.webhook_key.get(), owner_id)

    def redrive_launcher(self) -> TaskLauncher:
        if self.launcher is None:
            self.launcher = default_launcher(self)
        return self.launcher

    # Stores hold no state of their own: a new one per use costs nothing.
    @property
    def jobs(self) -> JobStore:
        return JobStore(self.db)

    @property
    def outcomes(self) -> Outcomes:
        return Outcomes(self.jobs, self.queue, self.registry, logger=self.logger)

    @property
    def limits(self) -> LimitStore:
        return LimitStore(self.db, owner_concurrency=self.settings.owner_concurrency)

    @property
    def pauses(self) -> PauseStore:
        return PauseStore(self.db)

    @property
    def users(self) -> UserStore:
        return UserStore(self.db)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.db)

    @property
    def auth(self) -> AuthService:
        return AuthService(
            self.users,
            RefreshTokenStore(self.db),
            self.audit,
            self.tokens,
            ThrottleStore(self.db),
            limits=ThrottleLimits.from_settings(self.settings),
            passwords=self.passwords,
        )


def default_launcher(services: ApiServices) -> TaskLauncher:
    name = services.settings.redrive_function_name
    if name:
        return LambdaLauncher(name, lambda: new_client("lambda"))

    def run_here(task_id: Any) -> None:
        # Its own connection: the API's is not for sharing with a background thread.
        db = database_from_settings(services.settings, application_name="taskmill-redrive")
        try:
            run_task(db, services.queue, services.registry, task_id, logger=services.logger)
        finally:
            db.close()

    return ThreadLauncher(run_here)


def build_services(
    settings: ApiSettings,
    *,
    db: Database | None = None,
    queue: JobQueue | None = None,
    registry: JobTypeRegistry | None = None,
    tokens: TokenConfig | None = None,
    sqs_client_factory: Callable[[], Any] = default_sqs_client,
    logger: logging.Logger | Any = None,
    event_sources: EventSources | None = None,
) -> ApiServices:
    return ApiServices(
        settings=settings,
        db=db or database_from_settings(settings, application_name="taskmill-api"),
        queue=queue or JobQueue(settings, client_factory=sqs_client_factory),
        registry=registry or build_registry(settings),
        tokens=tokens or token_config(settings),
        logger=logger or logging.getLogger("taskmill.api"),
        event_sources=event_sources or EventSources(settings.event_source_ids()),
    )
