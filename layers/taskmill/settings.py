"""Settings: one pydantic model per function, validated once at cold start.

Nothing else in the package reads os.environ: handlers build their settings object and
pass it (or what it configures) down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from taskmill.errors import SettingsError, field_message
from taskmill.topology import Priority

# The largest job payload, as compact JSON: what the API takes in a create, a batch or a
# schedule's template (413 above it), and what a body may give a child job (`context.submit`).
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024

_PREFIX = "TASKMILL_"


class _Base(BaseModel):
    # Plain pydantic models filled from the environment by `load_settings`: pydantic-settings
    # would cost every cold start ~40 ms of imports for what is a dictionary lookup here.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stage: str = "local"


class DatabaseSettings(_Base):
    # Locally and in tests a plain URL; in AWS the RDS secret (host, port, username,
    # password, dbname) and optionally the RDS Proxy endpoint that replaces its host.
    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    db_secret_arn: str | None = None
    db_proxy_host: str | None = None
    db_sslmode: str = "prefer"
    db_connect_timeout_seconds: int = 5
    db_statement_timeout_ms: int = 15_000

    @model_validator(mode="after")
    def _one_database_source(self) -> Self:
        if self.database_url is None and self.db_secret_arn is None:
            raise ValueError("set DATABASE_URL or TASKMILL_DB_SECRET_ARN")
        return self


class QueueSettings(_Base):
    queue_url_high: str
    queue_url_normal: str
    queue_url_low: str
    dlq_url_high: str
    dlq_url_normal: str
    dlq_url_low: str

    def queue_url(self, priority: Priority | str) -> str:
        return str(getattr(self, f"queue_url_{Priority(priority).value}"))

    def dlq_url(self, priority: Priority | str) -> str:
        return str(getattr(self, f"dlq_url_{Priority(priority).value}"))


class JwtSettings(_Base):
    # Locally a generated key; in AWS the key is read from Secrets Manager at cold start.
    jwt_secret: SecretStr | None = None
    jwt_secret_arn: str | None = None
    jwt_issuer: str = "taskmill"
    jwt_audience: str = "taskmill-api"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if self.jwt_secret is None and self.jwt_secret_arn is None:
            raise ValueError("set TASKMILL_JWT_SECRET or TASKMILL_JWT_SECRET_ARN")
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("TASKMILL_JWT_SECRET must be at least 32 characters")
        return self


class JobTypeSettings(_Base):
    # Comma-separated Python modules that register user job types at import.
    job_modules: str = ""
    # JSON list of external job type declarations (name, payload schema, defaults).
    external_types: str = "[]"

    @property
    def job_module_names(self) -> list[str]:
        return [name.strip() for name in self.job_modules.split(",") if name.strip()]


class WebhookSettings(_Base):
    # The platform's webhook key, from which each owner's signing key is derived
    # (`taskmill.jobtypes.webhook_deliver.owner_webhook_secret`): a value locally, an ARN
    # in AWS. The worker signs with it; the API hands each user their own derived key.
    webhook_secret: SecretStr | None = None
    webhook_secret_arn: str | None = None


class AuthorizerSettings(JwtSettings):
    pass


S = TypeVar("S", bound=_Base)


def _variable_name(cls: type[BaseModel], field: str) -> str:
    info = cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    return f"{_PREFIX}{field.upper()}"


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """Build settings from the environment (`TASKMILL_<FIELD>`, or the field's alias such as
    `DATABASE_URL`), turning validation errors into one clear message naming the variables."""
    source = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in cls.model_fields:
        name = _variable_name(cls, field)
        if name in source:
            values[field] = source[name]
    values.update(overrides)
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = [str(part) for part in error["loc"]]
            if location:
                name = _variable_name(cls, location[0])
                problems.append(f"{name}: {field_message(error).lower()}")
            else:
                problems.append(field_message(error))
        raise SettingsError(f"{cls.__name__} is invalid: " + "; ".join(problems)) from None


class FlowSettings(_Base):
    """Flow control (SPEC §6) where jobs are claimed or limits are shown."""

    # The default concurrency of every `owner:<id>` key without a limit of its own: fair
    # sharing between tenants. Unset: owners are not limited unless a limit says so.
    owner_concurrency: int | None = Field(default=None, ge=1)


class EventSourceSettings(_Base):
    """The worker's SQS event source mapping ids, in AWS (pausing a queue disables its own)."""

    worker_event_source_high: str | None = None
    worker_event_source_normal: str | None = None
    worker_event_source_low: str | None = None

    def event_source_ids(self) -> dict[Priority, str]:
        found = {p: getattr(self, f"worker_event_source_{p.value}") for p in Priority}
        return {p: mapping for p, mapping in found.items() if mapping}


class WorkerSettings(
    DatabaseSettings, QueueSettings, JobTypeSettings, WebhookSettings, FlowSettings
):
    """The SQS worker function."""

    # Safety margin kept free before the Lambda deadline to record outcomes.
    deadline_margin_seconds: float = Field(default=5.0, ge=0.5, le=60)
    # The API's quota of unfinished jobs per user, which child jobs (`context.submit`) count
    # against too; the same variable, set for both functions.
    max_unfinished_jobs: int = Field(default=1000, ge=1)
    # The API's limit of a job's payload, which a child job's (`context.submit`) is held to
    # too; the same variable, set for both functions.
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1024)
    http_allow_private: bool = False
    http_max_body_excerpt: int = Field(default=4096, ge=0, le=256 * 1024)
    # A completion webhook's whole exchange (connect, send, answer): a receiver slower than
    # this fails the attempt, which is retried with backoff.
    webhook_timeout_seconds: int = Field(default=10, ge=1, le=60)
    ses_sender: str | None = None
    ecs_cluster_arn: str | None = None
    ecs_subnets: str = ""
    ecs_security_groups: str = ""
    ecs_task_execution_role_arn: str | None = None
    ecs_task_role_arn: str | None = None
    ecs_log_group: str | None = None

    @staticmethod
    def split(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]


class ApiSettings(
    DatabaseSettings,
    QueueSettings,
    JwtSettings,
    JobTypeSettings,
    WebhookSettings,
    FlowSettings,
    EventSourceSettings,
):
    """The HTTP API function."""

    # A request must answer within API Gateway's 29 s: no statement of it may take long
    # (docs/ARCHITECTURE.md, "Time budget of a request").
    db_statement_timeout_ms: int = Field(default=5_000, ge=100, le=20_000)

    allow_signup: bool = True
    max_unfinished_jobs: int = Field(default=1000, ge=1)
    # Schedules one user may keep (429 past it): each fires into the sweep's shared batch.
    max_schedules_per_user: int = Field(default=100, ge=1)
    # How long an Idempotency-Key is remembered per user (SPEC §3).
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1024)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch: int = Field(default=100, ge=1, le=100)
    cors_origins: str = ""
    # The async DLQ redrive function; unset locally, where large redrives run on a thread.
    redrive_function_name: str | None = None
    # Login throttling (README, "Login throttling"): failed logins counted per window, per
    # account from one address, per account, per address. Then 429 until the window ends.
    login_window_seconds: int = Field(default=900, ge=60, le=24 * 3600)
    login_max_failures_per_account_address: int = Field(default=5, ge=1)
    login_max_failures_per_account: int = Field(default=20, ge=1)
    login_max_failures_per_address: int = Field(default=30, ge=1)
    # Sign-ups (attempts, whatever their outcome) per address per window.
    signup_window_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    signup_max_per_address: int = Field(default=20, ge=1)
    # As the worker's: a webhook_url naming a private, loopback or otherwise special address
    # is refused at creation unless this is set (local stacks and tests).
    http_allow_private: bool = False

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins browsers may call the API from (CORS), first the one answered by
        default; none: no CORS, and no preflight answered without the authorizer."""
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


class MigrationSettings(DatabaseSettings):
    """The deploy-time migrations function (and the local stack's start-up)."""

    # The first admin: created once if the e-mail has no account, never changed afterwards.
    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None
    bootstrap_admin_secret_arn: str | None = None


class RecoverySettings(DatabaseSettings, QueueSettings, JobTypeSettings, EventSourceSettings):
    """The scheduled recovery sweep."""

    retention_days: float = Field(default=30, gt=0)
    # Schedule runs count against each owner's quota, as the API's creates do.
    max_unfinished_jobs: int = Field(default=1000, ge=1)
    sweep_batch_limit: int = Field(default=500, ge=1, le=10_000)
    send_grace_seconds: float = Field(default=30, ge=0)
    requeue_after_seconds: float = Field(default=1800, ge=0)
    # The cluster of container.run's tasks, whose tasks the sweep stops once their job timed
    # out or was cancelled; unset where there are no container jobs.
    ecs_cluster_arn: str | None = None
