"""What Taskmill costs on AWS: dollars per million jobs, and what an environment costs idle.

Two models, both read from a synthesized CloudFormation template (`make synth ENV=...`, or
`bench/bench_cost.py`, which synthesizes every environment itself):

- `per_million(...)`: each job's share of API Gateway, the API and worker Lambdas, SQS,
  CloudWatch Logs, X-Ray, WAF and the endpoints' data processing, for single submission
  (`POST /v1/jobs`) and batch submission (`POST /v1/jobs/batch`, 100 a request). Durations
  come from in-process measurements (`Invocation`, measured by bench_cost.py); memory,
  architecture, batch sizes, tracing, WAF and the access-log format from the template.
- `idle_monthly(...)`: what the environment costs with no jobs at all, resource by resource.
  Every resource type in the template is either priced or listed in `FREE_WHEN_IDLE` with the
  reason; a type that is neither comes back in `IdleCost.unpriced` (the infrastructure tests
  fail on it, so a new resource cannot slip in unpriced).

Prices are public on-demand list prices for us-east-1 (the region cdk.json pins), stated on
`PRICES_STATED` from the AWS pricing pages as published; no free tier, no Savings Plans, no
tiered discounts. The model's own assumptions (how a measured duration becomes a billed one,
what a Lambda platform log line weighs) are named constants below, each with its reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# ---- prices (us-east-1, on demand, USD) -------------------------------------------------------

PRICES_STATED = "2026-11-23"
REGION = "us-east-1"
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GB = 1024**3

# AWS Lambda: duration per GB-second by architecture (first tier), requests.
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_REQUEST = 0.20 / 1e6
# SnapStart for Python: snapshot cache per GB-second while a version is active, restores per GB.
SNAPSTART_CACHE_GB_SECOND = 0.0000015046
SNAPSTART_RESTORE_GB = 0.0001397998
# API Gateway REST API requests (first 333 million a month).
API_GATEWAY_REST_REQUEST = 3.50 / 1e6
# SQS standard queue requests (each 64 KB chunk of a request is one request).
SQS_REQUEST = 0.40 / 1e6
# CloudWatch: Logs ingestion (Standard class), alarms per metric, dashboards, custom metrics.
LOGS_INGESTED_GB = 0.50
ALARM_METRIC_MONTH = 0.10
DASHBOARD_MONTH = 3.00
CUSTOM_METRIC_MONTH = 0.30
# X-Ray traces recorded.
XRAY_TRACE = 5.00 / 1e6
# WAF: web ACL, rule (a managed rule group counts as one), requests.
WAF_WEB_ACL_MONTH = 5.00
WAF_RULE_MONTH = 1.00
WAF_REQUEST = 0.60 / 1e6
# Secrets Manager: per secret per month, per API call.
SECRET_MONTH = 0.40
SECRETS_API_CALL = 0.05 / 10_000
# KMS customer managed key (each automatic rotation adds $1 a month, for the first two).
KMS_KEY_MONTH = 1.00
# VPC: interface endpoint per AZ-hour and per GB processed; NAT gateway per hour (its GB
# processed is traffic, not idle); a public IPv4 address (each NAT gateway's Elastic IP).
INTERFACE_ENDPOINT_AZ_HOUR = 0.01
INTERFACE_ENDPOINT_GB = 0.01
NAT_GATEWAY_HOUR = 0.045
PUBLIC_IPV4_HOUR = 0.005
# RDS for PostgreSQL, single-AZ instance hours (Multi-AZ with one standby: twice).
RDS_POSTGRES_HOUR = {
    "db.t4g.micro": 0.016,
    "db.t4g.small": 0.032,
    "db.t4g.medium": 0.065,
    "db.t4g.large": 0.129,
    "db.t4g.xlarge": 0.258,
}
INSTANCE_VCPUS = {
    "db.t4g.micro": 2,
    "db.t4g.small": 2,
    "db.t4g.medium": 2,
    "db.t4g.large": 2,
    "db.t4g.xlarge": 4,
}
# gp3 storage per GB-month, single-AZ (Multi-AZ: twice). Backups up to the provisioned size
# are free.
RDS_GP3_GB_MONTH = 0.115
# RDS Proxy per vCPU-hour of the instance behind it, billed for at least 2 vCPUs.
RDS_PROXY_VCPU_HOUR = 0.015
RDS_PROXY_MIN_VCPUS = 2

# ---- the model's assumptions ------------------------------------------------------------------

# Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB. The
# measured CPU time (one core of the bench machine, taken as equal to a Lambda vCPU) is
# stretched by 1769/memory below that.
FULL_VCPU_MB = 1769
# What the in-process measurement cannot see: each SQS call's network round trip in the
# region (the bench's SQS is a constant-time stub), and each SQL round trip's network + TLS +
# EBS commit on RDS beyond the local server's unix socket. Assumed, not measured here.
SQS_CALL_MS = 10.0
SQL_ROUND_TRIP_MS = 1.0
# Lambda's START, END and REPORT lines (REPORT with its X-Ray line), per invocation.
PLATFORM_LOG_BYTES = 330
PLATFORM_LOG_EVENTS = 3
# CloudWatch Logs counts each event as its UTF-8 bytes plus 26 bytes.
LOG_EVENT_OVERHEAD_BYTES = 26
# X-Ray's default sampling rule: the first request each second and 5 % of the rest. Above a
# few requests a second that is ~5 %; at or below one a second, every request is traced.
XRAY_SAMPLED = 0.05
# Bytes through an interface endpoint per SQS call (request + response, TLS framing).
ENDPOINT_BYTES_PER_SQS_CALL = 3000
# An idle SQS event source mapping: Lambda keeps about five long polls (20 s) open per queue.
IDLE_POLLERS_PER_MAPPING = 5
LONG_POLL_SECONDS = 20
# Flow-log records of an idle VPC (the sweep's connections): well under a GB a month.
IDLE_FLOW_LOG_GB_MONTH = 0.05
# One API Gateway access-log line: the template's format with values of typical length.
ACCESS_LOG_SAMPLE_VALUES = {
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "identity.sourceIp": "203.0.113.107",
    "identity.user": "-",
    "requestTime": "23/Nov/2026:23:30:11 +0000",
    "httpMethod": "POST",
    "resourcePath": "/v1/{proxy+}",
    "status": "201",
    "protocol": "HTTP/1.1",
    "responseLength": "1143",
}


# ---- the template -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A synthesized CloudFormation template of one environment."""

    name: str
    body: Mapping[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.body["Resources"])

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def function(self, service: str) -> tuple[str, dict[str, Any]]:
        """A Taskmill function by its Powertools service name (`taskmill-api`, ...)."""
        for logical, resource in self.of_type("AWS::Lambda::Function").items():
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            if variables.get("POWERTOOLS_SERVICE_NAME") == service:
                return logical, resource
        raise KeyError(f"{self.name}: no function with POWERTOOLS_SERVICE_NAME={service}")

    def lambda_config(self, service: str) -> LambdaConfig:
        logical, resource = self.function(service)
        props = resource["Properties"]
        return LambdaConfig(
            logical_id=logical,
            memory_mb=int(props.get("MemorySize", 128)),
            architecture=(props.get("Architectures") or ["x86_64"])[0],
            traced=props.get("TracingConfig", {}).get("Mode") == "Active",
        )

    def worker_batch_size(self) -> int:
        """Jobs per worker invocation at full batches: the smallest mapping's BatchSize."""
        worker, _ = self.function("taskmill-worker")
        sizes = [
            int(m["Properties"].get("BatchSize", 10))
            for m in self.of_type("AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": worker}
        ]
        return min(sizes)

    def access_log_bytes(self) -> int:
        """One access-log line as the stage's format writes it (0 without access logs)."""
        for stage in self.of_type("AWS::ApiGateway::Stage").values():
            fmt = stage["Properties"].get("AccessLogSetting", {}).get("Format")
            if fmt:
                line = re.sub(
                    r"\$context\.([A-Za-z.]+)",
                    lambda m: ACCESS_LOG_SAMPLE_VALUES.get(m.group(1), "x" * 10),
                    fmt,
                )
                return len(line.encode())
        return 0

    def has_waf(self) -> bool:
        return bool(self.of_type("AWS::WAFv2::WebACLAssociation"))

    def api_tracing(self) -> bool:
        return any(
            s["Properties"].get("TracingEnabled")
            for s in self.of_type("AWS::ApiGateway::Stage").values()
        )

    def endpoint_services(self) -> set[str]:
        """The interface endpoints, named as network.interface_endpoints names them."""
        return {
            endpoint_service(endpoint)
            for endpoint in self.of_type("AWS::EC2::VPCEndpoint").values()
            if endpoint["Properties"].get("VpcEndpointType") == "Interface"
        }


def endpoint_service(endpoint: Mapping[str, Any]) -> str:
    """`com.amazonaws.us-east-1.ecr.dkr` -> `ecr.dkr`."""
    return json.dumps(endpoint["Properties"]["ServiceName"]).strip('"').split(f"{REGION}.", 1)[-1]


@dataclass(frozen=True)
class LambdaConfig:
    logical_id: str
    memory_mb: int
    architecture: str
    traced: bool

    @property
    def gb(self) -> float:
        return self.memory_mb / 1024


# ---- measured invocations and what Lambda bills for them --------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One invocation as measured in process (medians): wall and CPU time on the bench
    machine, SQL round trips, SQS calls, and what it logged (bytes and events)."""

    wall_ms: float
    cpu_ms: float
    sql_round_trips: float
    sqs_calls: float
    log_bytes: float
    log_events: float

    def billed_ms(self, memory_mb: int) -> int:
        """Lambda's billed duration (1 ms granularity): the measured CPU stretched to the
        function's CPU share, the database's own time as measured, plus the network round
        trips the bench does not make."""
        return math.ceil(self.modelled_ms(memory_mb))

    def modelled_ms(self, memory_mb: int) -> float:
        cpu_scale = max(1.0, FULL_VCPU_MB / memory_mb)
        waiting = max(0.0, self.wall_ms - self.cpu_ms)
        return (
            self.cpu_ms * cpu_scale
            + waiting
            + self.sql_round_trips * SQL_ROUND_TRIP_MS
            + self.sqs_calls * SQS_CALL_MS
        )

    def logged_gb(self) -> float:
        """CloudWatch Logs ingestion of one invocation, Lambda's own lines included."""
        events = self.log_events + PLATFORM_LOG_EVENTS
        return (self.log_bytes + PLATFORM_LOG_BYTES + events * LOG_EVENT_OVERHEAD_BYTES) / GB


def lambda_invocation_cost(invocation: Invocation, config: LambdaConfig) -> tuple[float, float]:
    """(requests, duration) in dollars for one invocation."""
    gb_seconds = config.gb * invocation.billed_ms(config.memory_mb) / 1000
    return LAMBDA_REQUEST, gb_seconds * LAMBDA_GB_SECOND[config.architecture]


# ---- per million jobs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    component: str
    single: float  # $ per million jobs submitted one per request
    batch: float  # $ per million jobs submitted `batch_jobs` per request
    detail: str


@dataclass(frozen=True)
class Measured:
    """What bench_cost.py measures: API create (1 job), API batch create (`batch_jobs`
    jobs), one worker invocation on a full batch of noop jobs, and one idle sweep."""

    api_single: Invocation
    api_batch: Invocation
    batch_jobs: int
    worker_batch: Invocation
    worker_batch_jobs: int
    sweep: Invocation
    sweep_custom_metrics: int
    # The custom metrics (EMF name + dimensions) the API and worker publish while noop jobs
    # flow: a monthly cost for each hour they are published, not a per-job one.
    active_custom_metrics: int = 0


def per_million(template: Template, measured: Measured) -> list[Row]:
    """Dollars per million noop jobs, by component, for one environment."""
    million = 1e6
    api = template.lambda_config("taskmill-api")
    worker = template.lambda_config("taskmill-worker")
    per_batch = template.worker_batch_size()
    # The worker was measured on full batches of `worker_batch_jobs`; the template decides
    # how many jobs an invocation gets.
    worker_invocations = million / per_batch
    rows: list[Row] = []

    requests = (million, million / measured.batch_jobs)
    rows.append(
        Row(
            "API Gateway REST requests",
            requests[0] * API_GATEWAY_REST_REQUEST,
            requests[1] * API_GATEWAY_REST_REQUEST,
            f"1 request per job / per {measured.batch_jobs} jobs at $3.50 per million",
        )
    )
    if template.has_waf():
        rows.append(
            Row(
                "WAF requests inspected",
                requests[0] * WAF_REQUEST,
                requests[1] * WAF_REQUEST,
                "$0.60 per million requests",
            )
        )
    api_costs = [lambda_invocation_cost(m, api) for m in (measured.api_single, measured.api_batch)]
    rows.append(
        Row(
            "API Lambda requests",
            requests[0] * api_costs[0][0],
            requests[1] * api_costs[1][0],
            "$0.20 per million invocations",
        )
    )
    rows.append(
        Row(
            "API Lambda duration",
            requests[0] * api_costs[0][1],
            requests[1] * api_costs[1][1],
            f"{measured.api_single.billed_ms(api.memory_mb)} ms / "
            f"{measured.api_batch.billed_ms(api.memory_mb)} ms billed per request at "
            f"{api.memory_mb} MB {api.architecture}",
        )
    )
    rows.append(
        Row(
            "authorizer Lambda",
            0.0,
            0.0,
            "cached per token for the stage's TTL: ~0 per job for a client reusing its token "
            "(a cache miss on every request is in the upper bounds below)",
        )
    )
    sends = (
        measured.api_single.sqs_calls * million,
        measured.api_batch.sqs_calls * million / measured.batch_jobs,
    )
    worker_sqs = measured.worker_batch.sqs_calls * worker_invocations
    # The event source mapping receives a batch and deletes what succeeded (one batch call).
    mapping_calls = 2 * worker_invocations
    rows.append(
        Row(
            "SQS requests",
            (sends[0] + mapping_calls + worker_sqs) * SQS_REQUEST,
            (sends[1] + mapping_calls + worker_sqs) * SQS_REQUEST,
            f"sends {sends[0] / million:.2f} / {sends[1] / million:.2f} per job (batches of "
            f"10), receive + delete per batch of {per_batch}, $0.40 per million",
        )
    )
    worker_cost = lambda_invocation_cost(measured.worker_batch, worker)
    rows.append(
        Row(
            "worker Lambda requests",
            worker_invocations * worker_cost[0],
            worker_invocations * worker_cost[0],
            f"one invocation per {per_batch} jobs",
        )
    )
    rows.append(
        Row(
            "worker Lambda duration",
            worker_invocations * worker_cost[1],
            worker_invocations * worker_cost[1],
            f"{measured.worker_batch.billed_ms(worker.memory_mb)} ms billed per batch of "
            f"{per_batch} at {worker.memory_mb} MB {worker.architecture}",
        )
    )
    access = (template.access_log_bytes() + LOG_EVENT_OVERHEAD_BYTES) / GB
    logs = [
        requests[i] * (m.logged_gb() + access)
        + worker_invocations * measured.worker_batch.logged_gb()
        for i, m in enumerate((measured.api_single, measured.api_batch))
    ]
    rows.append(
        Row(
            "CloudWatch Logs ingestion",
            logs[0] * LOGS_INGESTED_GB,
            logs[1] * LOGS_INGESTED_GB,
            f"{logs[0] * GB / million:,.0f} / {logs[1] * GB / million:,.0f} bytes per job "
            "(handler lines + EMF metrics + Lambda's START/END/REPORT + access log), $0.50 per GB",
        )
    )
    traces = [
        (requests[i] if (template.api_tracing() or api.traced) else 0)
        + (worker_invocations if worker.traced else 0)
        for i in range(2)
    ]
    rows.append(
        Row(
            "X-Ray traces",
            traces[0] * XRAY_SAMPLED * XRAY_TRACE,
            traces[1] * XRAY_SAMPLED * XRAY_TRACE,
            f"one trace per request and per worker batch, {XRAY_SAMPLED:.0%} sampled "
            "(default rule above ~1 request/s), $5.00 per million",
        )
    )
    if "sqs" in template.endpoint_services():
        endpoint = [s * ENDPOINT_BYTES_PER_SQS_CALL / GB for s in sends]
        rows.append(
            Row(
                "VPC endpoint data (SQS sends)",
                endpoint[0] * INTERFACE_ENDPOINT_GB,
                endpoint[1] * INTERFACE_ENDPOINT_GB,
                f"~{ENDPOINT_BYTES_PER_SQS_CALL} bytes per call at $0.01 per GB",
            )
        )
    rows.append(
        Row(
            "Secrets Manager API calls",
            0.0,
            0.0,
            "read once per container and cached, not per invocation",
        )
    )
    rows.append(Row("RDS", 0.0, 0.0, "a fixed monthly cost (instance, storage, proxy): see idle"))
    return rows


def upper_bounds(template: Template, measured: Measured, authorizer: Invocation) -> list[Row]:
    """What a worse case adds per million jobs: every request missing the authorizer cache,
    and every request and batch traced (X-Ray samples all at ≤ 1 request a second)."""
    million = 1e6
    requests = (million, million / measured.batch_jobs)
    config = template.lambda_config("taskmill-authorizer")
    fixed, duration = lambda_invocation_cost(authorizer, config)
    per_request = fixed + duration + authorizer.logged_gb() * LOGS_INGESTED_GB
    worker_invocations = million / template.worker_batch_size()
    traced = [r + worker_invocations for r in requests]
    return [
        Row(
            "authorizer on every request",
            requests[0] * per_request,
            requests[1] * per_request,
            f"{authorizer.billed_ms(config.memory_mb)} ms billed at {config.memory_mb} MB",
        ),
        Row(
            "X-Ray: every request traced",
            traced[0] * (1 - XRAY_SAMPLED) * XRAY_TRACE,
            traced[1] * (1 - XRAY_SAMPLED) * XRAY_TRACE,
            "at or below ~1 request a second the reservoir traces all",
        ),
    ]


# ---- idle ------------------------------------------------------------------------------------

# Resource types with no cost while no job runs, and why.
FREE_WHEN_IDLE: dict[str, str] = {
    "AWS::ApiGateway::Account": "configuration",
    "AWS::ApiGateway::Authorizer": "per request only",
    "AWS::ApiGateway::Deployment": "configuration",
    "AWS::ApiGateway::GatewayResponse": "configuration",
    "AWS::ApiGateway::Method": "per request only",
    "AWS::ApiGateway::RequestValidator": "configuration",
    "AWS::ApiGateway::Resource": "configuration",
    "AWS::ApiGateway::RestApi": "per request only",
    "AWS::ApiGateway::Stage": "per request only (access logs per request)",
    "AWS::CDK::Metadata": "CDK's version reporting",
    "AWS::CloudFront::Distribution": "the console: per request and GB served only",
    "AWS::CloudFront::OriginAccessControl": "configuration",
    "AWS::CloudFront::ResponseHeadersPolicy": "configuration",
    "AWS::EC2::EIP": "priced with its NAT gateway",
    "AWS::EC2::FlowLog": "priced as flow-log ingestion below",
    "AWS::EC2::InternetGateway": "no hourly charge",
    "AWS::EC2::Route": "configuration",
    "AWS::EC2::RouteTable": "configuration",
    "AWS::EC2::SecurityGroup": "configuration",
    "AWS::EC2::SecurityGroupEgress": "configuration",
    "AWS::EC2::SecurityGroupIngress": "configuration",
    "AWS::EC2::Subnet": "configuration",
    "AWS::EC2::SubnetRouteTableAssociation": "configuration",
    "AWS::EC2::VPC": "no hourly charge",
    "AWS::EC2::VPCGatewayAttachment": "configuration",
    "AWS::ECS::Cluster": "Fargate and Container Insights charge only while tasks run",
    "AWS::IAM::Policy": "free",
    "AWS::IAM::Role": "free",
    "AWS::Lambda::LayerVersion": "storage within the free code-storage quota",
    "AWS::Lambda::Permission": "configuration",
    "AWS::Logs::LogGroup": "per GB ingested/stored: the sweep's logs are priced with it",
    "AWS::RDS::DBParameterGroup": "configuration",
    "AWS::S3::Bucket": "the console's files: ~100 KB stored, a fraction of a cent",
    "AWS::S3::BucketPolicy": "configuration",
    "AWS::RDS::DBProxyTargetGroup": "priced with its proxy",
    "AWS::RDS::DBSubnetGroup": "configuration",
    "AWS::SNS::Subscription": "e-mail notifications: first 1,000 a month free",
    "AWS::SNS::Topic": "per publish only",
    "AWS::SNS::TopicPolicy": "configuration",
    "AWS::SQS::Queue": "per request (the idle polling is priced with the mappings)",
    "AWS::SQS::QueuePolicy": "configuration",
    "AWS::SecretsManager::ResourcePolicy": "configuration",
    "AWS::SecretsManager::RotationSchedule": "one rotation invocation a month",
    "AWS::SecretsManager::SecretTargetAttachment": "configuration",
    "AWS::Serverless::Application": "the rotation function: one invocation a month",
    "AWS::WAFv2::WebACLAssociation": "priced with its web ACL",
    "Custom::CDKBucketDeployment": "runs at deploy only",
    "Custom::TaskmillSchema": "runs at deploy only",
    "Custom::VpcRestrictDefaultSG": "runs at deploy only",
}


@dataclass
class IdleCost:
    environment: str
    items: list[tuple[str, float, str]] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(monthly for _, monthly, _ in self.items)

    def add(self, component: str, monthly: float, detail: str) -> None:
        self.items.append((component, monthly, detail))

    def by_component(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for component, monthly, _ in self.items:
            totals[component] = totals.get(component, 0.0) + monthly
        return totals


def _rate_minutes(expression: str) -> float | None:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return value * {"minute": 1, "hour": 60, "day": 1440}[unit.rstrip("s")]


def idle_monthly(template: Template, sweep: Invocation, sweep_custom_metrics: int) -> IdleCost:
    """The monthly cost of the environment with no jobs, from its template. `sweep` is one
    idle run of the scheduled recovery function (measured by bench_cost.py)."""
    cost = IdleCost(template.name)
    resources = template.resources
    handled: set[str] = set()

    def priced(resource_type: str) -> dict[str, dict[str, Any]]:
        handled.add(resource_type)
        return template.of_type(resource_type)

    for logical, endpoint in priced("AWS::EC2::VPCEndpoint").items():
        props = endpoint["Properties"]
        if props.get("VpcEndpointType") != "Interface":
            continue  # gateway endpoints (S3) are free
        azs = len(props.get("SubnetIds", []))
        service = endpoint_service(endpoint)
        cost.add(
            "interface endpoints",
            azs * HOURS_PER_MONTH * INTERFACE_ENDPOINT_AZ_HOUR,
            f"{service} in {azs} AZ(s) ({logical})",
        )
    for logical in priced("AWS::EC2::NatGateway"):
        cost.add(
            "NAT gateways",
            HOURS_PER_MONTH * (NAT_GATEWAY_HOUR + PUBLIC_IPV4_HOUR),
            f"{logical}: $0.045/h + its public IPv4 $0.005/h (traffic extra)",
        )
    instances = priced("AWS::RDS::DBInstance")
    for logical, instance in instances.items():
        props = instance["Properties"]
        klass = props["DBInstanceClass"]
        copies = 2 if props.get("MultiAZ") else 1
        if klass not in RDS_POSTGRES_HOUR:
            cost.unpriced.append(f"AWS::RDS::DBInstance class {klass}")
            continue
        storage = int(props.get("AllocatedStorage", 20))
        cost.add(
            "RDS instance",
            copies * HOURS_PER_MONTH * RDS_POSTGRES_HOUR[klass],
            f"{logical}: {klass} {'Multi-AZ' if copies == 2 else 'single-AZ'}",
        )
        if props.get("StorageType", "gp3") != "gp3":
            cost.unpriced.append(f"RDS storage type {props.get('StorageType')}")
        cost.add(
            "RDS storage",
            copies * storage * RDS_GP3_GB_MONTH,
            f"{storage} GB gp3 x {copies}",
        )
    for logical in priced("AWS::RDS::DBProxy"):
        # Priced on the vCPUs of the instance behind it (this stack has one instance).
        klasses = [i["Properties"]["DBInstanceClass"] for i in instances.values()]
        vcpus = max([INSTANCE_VCPUS.get(k, 0) for k in klasses] + [RDS_PROXY_MIN_VCPUS])
        cost.add(
            "RDS Proxy",
            vcpus * HOURS_PER_MONTH * RDS_PROXY_VCPU_HOUR,
            f"{logical}: {vcpus} vCPUs of {', '.join(klasses)} at $0.015 per vCPU-hour",
        )
    secrets = priced("AWS::SecretsManager::Secret")
    if secrets:
        cost.add("Secrets Manager secrets", len(secrets) * SECRET_MONTH, f"{len(secrets)} secrets")
    metrics = 0
    alarms = priced("AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        queries = alarm["Properties"].get("Metrics")
        metrics += sum(1 for q in queries if "MetricStat" in q) if queries else 1
    if alarms:
        cost.add(
            "CloudWatch alarms",
            metrics * ALARM_METRIC_MONTH,
            f"{len(alarms)} alarms on {metrics} metrics",
        )
    dashboards = priced("AWS::CloudWatch::Dashboard")
    if dashboards:
        cost.add("CloudWatch dashboards", len(dashboards) * DASHBOARD_MONTH, f"{len(dashboards)}")
    keys = priced("AWS::KMS::Key")
    if keys:
        cost.add(
            "KMS keys",
            len(keys) * KMS_KEY_MONTH,
            f"{len(keys)} customer managed (+$1/month per rotation, first two years)",
        )
    for logical, acl in priced("AWS::WAFv2::WebACL").items():
        rules = len(acl["Properties"].get("Rules", []))
        cost.add(
            "WAF",
            WAF_WEB_ACL_MONTH + rules * WAF_RULE_MONTH,
            f"{logical}: web ACL + {rules} rules (managed groups included)",
        )
    mappings = priced("AWS::Lambda::EventSourceMapping")
    polls = IDLE_POLLERS_PER_MAPPING * SECONDS_PER_MONTH / LONG_POLL_SECONDS
    if mappings:
        cost.add(
            "SQS idle polling",
            len(mappings) * polls * SQS_REQUEST,
            f"{len(mappings)} event source mappings x ~{polls:,.0f} empty long polls",
        )
    for logical, rule in priced("AWS::Events::Rule").items():
        expression = rule["Properties"].get("ScheduleExpression")
        if not expression:
            continue  # event patterns (ECS task stopped): free, and only when tasks run
        minutes = _rate_minutes(expression)
        if minutes is None:
            cost.unpriced.append(f"AWS::Events::Rule {logical} schedule {expression}")
            continue
        runs = HOURS_PER_MONTH * 60 / minutes
        for target in rule["Properties"].get("Targets", []):
            function = target["Arn"].get("Fn::GetAtt", [None])[0]
            props = resources[function]["Properties"]
            config = LambdaConfig(
                function,
                int(props.get("MemorySize", 128)),
                (props.get("Architectures") or ["x86_64"])[0],
                props.get("TracingConfig", {}).get("Mode") == "Active",
            )
            fixed, duration = lambda_invocation_cost(sweep, config)
            cost.add(
                "scheduled sweep",
                runs * (fixed + duration),
                f"{runs:,.0f} runs x {sweep.billed_ms(config.memory_mb)} ms at "
                f"{config.memory_mb} MB {config.architecture}",
            )
            cost.add(
                "scheduled sweep",
                runs * sweep.logged_gb() * LOGS_INGESTED_GB,
                f"its logs: {sweep.logged_gb() * GB:,.0f} bytes a run",
            )
            if config.traced:
                # Once a minute is below the sampling reservoir: every run is traced.
                cost.add("scheduled sweep", runs * XRAY_TRACE, "X-Ray: every run traced")
            cost.add(
                "scheduled sweep",
                sweep_custom_metrics * CUSTOM_METRIC_MONTH,
                f"its EMF metrics: {sweep_custom_metrics} custom metrics",
            )
    if priced("AWS::EC2::FlowLog"):
        cost.add(
            "VPC flow logs",
            IDLE_FLOW_LOG_GB_MONTH * LOGS_INGESTED_GB,
            f"~{IDLE_FLOW_LOG_GB_MONTH} GB/month of idle flow records",
        )
    for logical, function in priced("AWS::Lambda::Function").items():
        props = function["Properties"]
        if props.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions":
            gb = int(props.get("MemorySize", 128)) / 1024
            cost.add(
                "SnapStart snapshot cache",
                gb * SECONDS_PER_MONTH * SNAPSTART_CACHE_GB_SECOND,
                f"{logical}: one active version at {props.get('MemorySize', 128)} MB "
                "(restores are per cold start)",
            )
    for logical, version in {
        **priced("AWS::Lambda::Version"),
        **priced("AWS::Lambda::Alias"),
    }.items():
        if version["Properties"].get("ProvisionedConcurrencyConfig"):
            cost.unpriced.append(f"{logical}: provisioned concurrency")
    for resource_type in sorted({r["Type"] for r in resources.values()}):
        if resource_type not in handled and resource_type not in FREE_WHEN_IDLE:
            cost.unpriced.append(resource_type)
    return cost


def table(rows: Iterable[tuple[str, ...]], aligns: str) -> list[str]:
    """Plain-text columns: `aligns` has one of '<' or '>' per column."""
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(aligns))]
    return [
        "  ".join(
            f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True)
        )
        for row in rows
    ]
