"""The per-environment configuration: `TaskmillConfig`, read once from `cdk.json` context by
this repository's `app.py`, or built in code by your own CDK app.

Constructs receive this object; they never read context or the environment themselves.
Every field has a safe default (`TaskmillConfig()` synthesizes); `cdk.json` states what
differs per environment.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from taskmill.topology import QUEUES, Priority


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Lambda's memory range (MB): above it the function fails on deploy.
LAMBDA_MAX_MEMORY_MB = 10240
# A browser's Origin header: scheme, host and optional port; no path, not even "/".
# An address SNS and the sign-in accept: something@domain.tld (no spaces).
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_ORIGIN = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?$")


# What each interface endpoint name in `network.interface_endpoints` serves. Each one costs
# per AZ-hour whether used or not (see docs/PERFORMANCE.md "Cost"): list only what calls it.
# Lambda's own logs, metrics (EMF) and traces leave through the Lambda service, not the VPC.
ENDPOINT_PURPOSES: dict[str, str] = {
    "sqs": "job queues (API, worker, recovery, redrive, container events)",
    "secretsmanager": "database, JWT, webhook and first-admin secrets; secret rotation",
    "lambda": "the API starting an asynchronous DLQ redrive",
    "ecs": "container.run starting Fargate tasks",
    "ecr.api": "Fargate tasks pulling images from ECR",
    "ecr.dkr": "Fargate tasks pulling images from ECR",
    "logs": "Fargate task logs (the awslogs driver)",
    "email": "email.send through SES",
}


# What the functions cannot work without when there is no NAT.
REQUIRED_WITHOUT_NAT = frozenset({"sqs", "secretsmanager", "lambda"})
# What container.run needs without NAT (images from ECR come through the S3 gateway endpoint).
CONTAINER_ENDPOINTS = frozenset({"ecs", "ecr.api", "ecr.dkr", "logs"})


class NetworkConfig(_Section):
    # The AZs the VPC spans. The data tier (the database's subnet group, RDS Proxy) uses all
    # of them: RDS needs a subnet group in two AZs even for a single-AZ instance.
    max_azs: int = Field(default=2, ge=2, le=3)
    # The AZs of the application tier: the functions, the interface endpoints (each costs per
    # AZ-hour) and container.run tasks. None: all `max_azs`. 1 trades surviving the loss of
    # an AZ for half the endpoint cost (the `dev` choice).
    app_azs: int | None = Field(default=None, ge=1, le=3)
    # 0: no NAT and no internet route; Lambdas reach AWS through interface endpoints only,
    # and job types calling the internet (http.request, webhooks) cannot reach it.
    nat_gateways: int = Field(default=0, ge=0, le=3)
    interface_endpoints: tuple[str, ...] = tuple(ENDPOINT_PURPOSES)

    @property
    def application_azs(self) -> int:
        return self.app_azs or self.max_azs

    @model_validator(mode="after")
    def _known_endpoints(self) -> Self:
        unknown = set(self.interface_endpoints) - set(ENDPOINT_PURPOSES)
        if unknown:
            raise ValueError(f"unknown interface endpoints: {sorted(unknown)}")
        if len(set(self.interface_endpoints)) != len(self.interface_endpoints):
            raise ValueError("interface_endpoints lists an endpoint twice")
        if self.nat_gateways > self.max_azs:
            # The CDK puts at most one NAT gateway in each AZ's public subnet.
            raise ValueError(
                f"nat_gateways ({self.nat_gateways}) cannot exceed max_azs ({self.max_azs})"
            )
        if self.app_azs is not None and self.app_azs > self.max_azs:
            raise ValueError(f"app_azs ({self.app_azs}) cannot exceed max_azs ({self.max_azs})")
        self.require_endpoints(REQUIRED_WITHOUT_NAT, "the functions reach")
        return self

    def require_endpoints(self, needed: frozenset[str], who: str) -> None:
        """Without NAT, `who` reaches AWS only through these endpoints."""
        missing = needed - set(self.interface_endpoints)
        if self.nat_gateways == 0 and missing:
            raise ValueError(
                f"without NAT {who} AWS only through endpoints: add {sorted(missing)} to "
                "network.interface_endpoints"
            )


# The Postgres majors Taskmill is built and tested on: the SQL needs 13+ (gen_random_uuid in
# core, MATERIALIZED CTEs), the local stack and the tests run 16, and 17 is the deployed
# default. RDS takes a full `major.minor`; a major alone makes a template cfn-lint flags
# (W3691) and lets RDS pick a minor.
SUPPORTED_POSTGRES_MAJORS = ("16", "17")
_ENGINE_VERSION = re.compile(r"^([0-9]+)\.[0-9]+$")


class DatabaseConfig(_Section):
    engine_version: str = "17.9"
    # The EC2-style class name; RDS's "db." is added by the CDK.
    instance_type: str = Field(default="t4g.micro", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    allocated_storage_gb: int = Field(default=20, ge=20)
    max_allocated_storage_gb: int = Field(default=100, ge=20)
    multi_az: bool = False
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    deletion_protection: bool = True
    # RDS Proxy between the functions and the instance: pooled connections, faster failover,
    # bursts queued rather than refused. Off, the functions connect to the instance itself
    # (same secret, TLS and security-group chain) and save the proxy's per-vCPU hours; the
    # concurrency caps below still bound the connections.
    proxy: bool = True
    # Postgres max_connections of the instance class (t4g.micro: ~80 usable); the functions
    # may use `proxy_max_connections_percent` of it (the proxy's pool, or directly without
    # one). The Lambda concurrency below must fit in it.
    max_connections: int = Field(default=80, ge=20)
    proxy_max_connections_percent: int = Field(default=90, ge=10, le=100)
    rotation_days: int = Field(default=30, ge=1, le=365)

    @property
    def proxy_connections(self) -> int:
        """The connections the functions may hold (through the proxy or not)."""
        return self.max_connections * self.proxy_max_connections_percent // 100

    @model_validator(mode="before")
    @classmethod
    def _no_db_prefix(cls, data: Any) -> Any:
        if isinstance(data, dict) and str(data.get("instance_type", "")).startswith("db."):
            raise ValueError(
                f"instance_type {data['instance_type']!r}: give the class without the 'db.' "
                "prefix (e.g. t4g.micro); the CDK adds it"
            )
        return data

    @field_validator("engine_version")
    @classmethod
    def _supported_engine(cls, version: str) -> str:
        match = _ENGINE_VERSION.match(version)
        if match is None or match[1] not in SUPPORTED_POSTGRES_MAJORS:
            raise ValueError(
                f"{version!r} is not a version Taskmill supports: give a Postgres "
                f"major.minor of major {' or '.join(SUPPORTED_POSTGRES_MAJORS)} (e.g. 17.9)"
            )
        return version

    @model_validator(mode="after")
    def _storage_can_grow(self) -> Self:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError(
                f"max_allocated_storage_gb ({self.max_allocated_storage_gb}) must be at least "
                f"allocated_storage_gb ({self.allocated_storage_gb})"
            )
        return self


class ApiConfig(_Section):
    throttle_rate_limit: float = Field(default=50, gt=0)
    throttle_burst_limit: int = Field(default=100, ge=1)
    reserved_concurrency: int = Field(default=20, ge=1)
    memory_mb: int = Field(default=512, ge=128, le=LAMBDA_MAX_MEMORY_MB)
    # Compared with the browser's Origin header exactly: "https://app.example.com".
    cors_origins: tuple[str, ...] = ()
    # WAF in front of the stage with a per-IP rate-based rule (requests per 5 minutes).
    waf: bool = False
    waf_rate_limit: int = Field(default=2000, ge=100, le=2_000_000_000)
    # Lambda SnapStart for these of the user-facing functions: they are initialized when a
    # version is published, snapshotted, and restored instead of cold-started; API Gateway
    # then calls their `live` alias. Off by default: docs/PERFORMANCE.md, "SnapStart".
    snap_start: tuple[Literal["api", "authorizer"], ...] = ()

    @model_validator(mode="after")
    def _burst_covers_rate(self) -> Self:
        # API Gateway's token bucket holds `burst` requests and refills `rate` a second: with
        # less burst than rate, clients' ordinary clumps are refused (429) well below the rate
        # the config seems to allow. Refused rather than warned: a synth warning goes unread,
        # and burst = rate is always there for whoever wants the rate to be the bound.
        if self.throttle_burst_limit < self.throttle_rate_limit:
            raise ValueError(
                f"throttle_burst_limit ({self.throttle_burst_limit}) is below "
                f"throttle_rate_limit ({self.throttle_rate_limit}): requests in a burst would "
                "be refused below the rate; set the burst at least to the rate"
            )
        return self

    @model_validator(mode="after")
    def _origins(self) -> Self:
        bad = [o for o in self.cors_origins if o != "*" and not _ORIGIN.match(o)]
        if bad:
            raise ValueError(
                f"cors_origins {bad}: an origin is scheme://host[:port] with no path or "
                "trailing slash (browsers send it so, and it is compared exactly)"
            )
        return self


class WorkerConfig(_Section):
    memory_mb: int = Field(default=1024, ge=128, le=LAMBDA_MAX_MEMORY_MB)
    # MaximumConcurrency of each queue's event source mapping (Lambda's minimum is 2).
    queue_concurrency: dict[Priority, int] = Field(
        default_factory=lambda: {d.priority: d.max_concurrency for d in QUEUES}
    )
    ses_sender: str | None = None
    # container.run on ECS Fargate: the cluster, the task roles, the stopped-task rule and
    # its function. Off, the type fails at once with a clear message (no cluster here), and
    # without NAT the ecs/ecr/logs endpoints it would need are not needed either.
    container_jobs: bool = True

    @model_validator(mode="after")
    def _concurrency(self) -> Self:
        if set(self.queue_concurrency) != set(Priority):
            raise ValueError("queue_concurrency needs high, normal and low")
        if any(value < 2 or value > 1000 for value in self.queue_concurrency.values()):
            raise ValueError("queue_concurrency values must be between 2 and 1000")
        if self.queue_concurrency[Priority.HIGH] < max(self.queue_concurrency.values()):
            raise ValueError("high must have the most concurrency, so it is never starved")
        return self


class AlarmConfig(_Section):
    # A queue whose oldest message waits longer than this (5 minutes running) is behind.
    oldest_message_age_seconds: dict[Priority, int] = Field(
        default_factory=lambda: {Priority.HIGH: 300, Priority.NORMAL: 900, Priority.LOW: 3600}
    )
    api_5xx_percent: float = Field(default=5, gt=0, le=100)
    rds_cpu_percent: float = Field(default=80, gt=0, le=100)
    rds_free_storage_gb: float = Field(default=2, gt=0)

    @model_validator(mode="after")
    def _every_queue(self) -> Self:
        if set(self.oldest_message_age_seconds) != set(Priority):
            raise ValueError("oldest_message_age_seconds needs high, normal and low")
        not_positive = sorted(p.value for p, s in self.oldest_message_age_seconds.items() if s < 1)
        if not_positive:
            # 0 would alarm on every message, however briefly it waits.
            raise ValueError(f"oldest_message_age_seconds of {not_positive} must be at least 1")
        return self


class ConsoleConfig(_Section):
    # The web console (console/) on S3 + CloudFront, pointed at this environment's API. On,
    # the API's CORS allows the console's origin (and any other origins listed in
    # api.cors_origins, never "*"). Off, CORS is api.cors_origins alone.
    enabled: bool = True
    # CloudFront's edge locations: PriceClass_100 (North America, Europe), _200, _All.
    price_class: Literal["100", "200", "All"] = "100"


# Functions that hold a database connection besides the API and the workers, with the
# reserved concurrency each gets (recovery, redrive, container events, migrations).
OTHER_DATABASE_CONCURRENCY: dict[str, int] = {
    "recovery": 1,
    "redrive": 2,
    "container-events": 2,
    "migrations": 1,
}


class TaskmillConfig(_Section):
    # The environment's name: the API stage, the `environment` tag, alarm texts.
    name: str = "default"
    account: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
    # Names every named resource (functions, queues, log groups, dashboard): two Taskmills
    # in one account and region need two prefixes.
    resource_prefix: str = Field(default="taskmill", pattern=r"^[a-z][a-z0-9-]{2,40}$")
    alarm_email: str | None = Field(default=None, pattern=_EMAIL)
    # The first admin's e-mail; the password is generated into Secrets Manager on deploy.
    admin_email: str | None = Field(default=None, pattern=_EMAIL)
    allow_signup: bool = False
    max_unfinished_jobs: int = Field(default=1000, ge=1)
    # Schedules one user may keep (POST /v1/schedules answers 429 past it).
    max_schedules_per_user: int = Field(default=100, ge=1)
    # Fairness between tenants (SPEC §6): at most this many running jobs per owner, for
    # every owner without a limit of its own on `owner:<id>`. null: owners are not limited.
    owner_concurrency: int | None = Field(default=None, ge=1)
    # How long an Idempotency-Key is remembered per user (SPEC §3). The key lives on its job's
    # row, which the sweep deletes `retention_days` after the job finished: at most that long.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    retention_days: int = Field(default=30, ge=1)
    # A queued job untouched (and past due) this long gets a new message in case its own is
    # gone; set it above the longest backlog wait you expect (each period a waiting job gets
    # one duplicate message, which its claim skips).
    requeue_after_seconds: int = Field(default=1800, ge=60)
    log_retention_days: int = Field(default=30, ge=1)
    removal_policy: Literal["destroy", "retain"] = "retain"
    # Your job types: modules that register code types (their packages must be importable
    # where the app synthesizes: beside your CDK app, or in layers/ in this repository; the
    # package layer ships them), and declarations of external types; see README "Adding a
    # job type".
    job_modules: tuple[str, ...] = ()
    external_job_types: tuple[dict[str, Any], ...] = ()
    network: NetworkConfig = NetworkConfig()
    database: DatabaseConfig = DatabaseConfig()
    api: ApiConfig = ApiConfig()
    worker: WorkerConfig = WorkerConfig()
    alarms: AlarmConfig = AlarmConfig()
    console: ConsoleConfig = ConsoleConfig()

    def flow_environment(self) -> dict[str, str]:
        """What the functions that claim jobs or show limits (API, worker) read of it."""
        if self.owner_concurrency is None:
            return {}
        return {"TASKMILL_OWNER_CONCURRENCY": str(self.owner_concurrency)}

    @property
    def database_clients(self) -> int:
        """The most Lambda containers that can hold a database connection at once (each
        holds one): every function's concurrency is capped, so this is a hard bound."""
        others = {
            name: concurrency
            for name, concurrency in OTHER_DATABASE_CONCURRENCY.items()
            if self.worker.container_jobs or name != "container-events"
        }
        return (
            sum(self.worker.queue_concurrency.values())
            + self.api.reserved_concurrency
            + sum(others.values())
        )

    @model_validator(mode="after")
    def _connections_fit(self) -> Self:
        if self.database_clients > self.database.proxy_connections:
            through = "the proxy may open" if self.database.proxy else "the database allows"
            raise ValueError(
                f"{self.name}: up to {self.database_clients} Lambda containers may connect "
                f"but {through} only {self.database.proxy_connections} connections; "
                "lower api.reserved_concurrency/worker.queue_concurrency or raise "
                "database.max_connections (a larger instance class)"
            )
        return self

    @model_validator(mode="after")
    def _idempotency_within_retention(self) -> Self:
        retention_seconds = self.retention_days * 86400
        if self.idempotency_ttl_seconds > retention_seconds:
            raise ValueError(
                f"{self.name}: idempotency_ttl_seconds ({self.idempotency_ttl_seconds}) is "
                f"longer than retention_days ({self.retention_days}, {retention_seconds} s): a "
                "key is kept on its job, which is deleted after retention_days, so it could "
                "not be remembered that long; lower it or raise retention_days"
            )
        return self

    @model_validator(mode="after")
    def _storage_alarm_can_clear(self) -> Self:
        # At or above the allocated size the alarm fires from the first minute and never clears.
        if self.alarms.rds_free_storage_gb >= self.database.allocated_storage_gb:
            raise ValueError(
                f"{self.name}: alarms.rds_free_storage_gb ({self.alarms.rds_free_storage_gb}) "
                "must be below database.allocated_storage_gb "
                f"({self.database.allocated_storage_gb})"
            )
        return self

    @model_validator(mode="after")
    def _destroy_can_delete_the_database(self) -> Self:
        if self.removal_policy == "destroy" and self.database.deletion_protection:
            raise ValueError(
                f"{self.name}: removal_policy 'destroy' with database.deletion_protection true: "
                "`cdk destroy` would stop at the protected database, half done; set "
                "deletion_protection to false (a disposable environment) or removal_policy to "
                "'retain'"
            )
        return self

    @model_validator(mode="after")
    def _console_origin_only(self) -> Self:
        if self.console.enabled and "*" in self.api.cors_origins:
            raise ValueError(
                f"{self.name}: api.cors_origins has '*' but the console is on: any site could "
                "then call the API from a signed-in user's browser; list real origins (the "
                "console's own is added) or set console.enabled to false"
            )
        return self

    @model_validator(mode="after")
    def _endpoints_for_features(self) -> Self:
        if self.worker.container_jobs:
            self.network.require_endpoints(CONTAINER_ENDPOINTS, "container.run tasks reach")
        if self.worker.ses_sender:
            self.network.require_endpoints(frozenset({"email"}), "email.send reaches")
        return self


# The name this model had before it was a public construct's config; kept for existing code.
EnvironmentConfig = TaskmillConfig


def load_environment(context: dict[str, Any], name: str) -> TaskmillConfig:
    environments = context.get("environments") or {}
    if name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise SystemExit(
            f"unknown environment {name!r} (cdk.json declares: {known}); use -c env=NAME"
        )
    settings = environments[name]
    if not isinstance(settings, dict):
        raise SystemExit(
            f"cdk.json environment {name!r} must be an object of settings, not "
            f"{type(settings).__name__}"
        )
    if "name" in settings:
        raise SystemExit(
            f"cdk.json environment {name!r}: 'name' is not a setting: the environment is named "
            "by its key in `environments`"
        )
    try:
        # Strictly, as the JSON it was read from: `true` is not 1, "10" is not 10, 1 is not
        # true (lax coercion would take a typo or a quoted number for a deliberate value).
        # JSON strings still name enum values (priorities) and arrays fill tuples.
        return TaskmillConfig.model_validate_json(
            json.dumps({**settings, "name": name}), strict=True
        )
    except ValidationError as exc:
        raise SystemExit(f"cdk.json environment {name!r} is invalid:\n{exc}") from None
