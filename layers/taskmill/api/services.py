"""Everything the routers use, built once per container (or handed in by tests)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskmill.audit import AuditLog
from taskmill.auth.service import AuthService
from taskmill.auth.tokens import TokenConfig
from taskmill.db import Database
from taskmill.db.credentials import database_from_settings, default_secrets_client
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.observability import MetricBatch
from taskmill.queue.sender import JobQueue, default_sqs_client
from taskmill.recovery.redrive_tasks import LambdaLauncher, TaskLauncher, ThreadLauncher, run_task
from taskmill.settings import ApiSettings, JwtSettings
from taskmill.users.store import RefreshTokenStore, UserStore


def token_config(
    settings: JwtSettings, secrets_client_factory: Callable[[], Any] = default_secrets_client
) -> TokenConfig:
    """The signing key comes from the environment locally and from Secrets Manager in AWS
    (read once per container, never put in an environment variable)."""
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
    else:
        response = secrets_client_factory().get_secret_value(SecretId=settings.jwt_secret_arn)
        secret = str(response["SecretString"])
    return TokenConfig(
        secret=secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )


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

    def redrive_launcher(self) -> TaskLauncher:
        if self.launcher is None:
            self.launcher = default_launcher(self)
        return self.launcher

    @property
    def jobs(self) -> JobStore:
        return JobStore(self.db)

    @property
    def users(self) -> UserStore:
        return UserStore(self.db)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.db)

    @property
    def auth(self) -> AuthService:
        return AuthService(self.users, RefreshTokenStore(self.db), self.audit, self.tokens)


def default_lambda_client() -> Any:
    import boto3

    return boto3.client("lambda")


def default_launcher(services: ApiServices) -> TaskLauncher:
    name = services.settings.redrive_function_name
    if name:
        return LambdaLauncher(name, default_lambda_client)

    def run_here(task_id: Any) -> None:
        # Its own connection: the API's is not for sharing with a background thread.
        db = database_from_settings(services.settings, application_name="taskmill-redrive")
        try:
            run_task(db, services.queue, task_id, logger=services.logger)
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
) -> ApiServices:
    return ApiServices(
        settings=settings,
        db=db or database_from_settings(settings, application_name="taskmill-api"),
        queue=queue or JobQueue(settings, client_factory=sqs_client_factory),
        registry=registry or build_registry(settings),
        tokens=tokens or token_config(settings),
        logger=logger or logging.getLogger("taskmill.api"),
    )
