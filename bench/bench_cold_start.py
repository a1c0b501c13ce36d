"""Cold starts as deployed: each function's code laid out as Lambda sees it, timed in fresh
processes.

The bundle is built by the deployed assets' own logic (`taskmill_cdk.packaging`, which
`taskmill_cdk.bundling` plugs into CDK): the function directory as `/var/task`, the dependency layer
(`pip install` of requirements.txt, minus what the runtime ships) and the package layer
(`layers/`) merged as `/opt/python`, plus the SDK the Lambda runtime provides (boto3 and
botocore, pinned as in constraints.txt). Nothing is written while it runs (`-B`,
PYTHONDONTWRITEBYTECODE=1): Lambda's filesystem is read-only, so what the bundle lacks in
bytecode is compiled again at every cold start. The wheels are this machine's Python's
(3.11); the runtime's are 3.14.

Two bundles of this checkout are timed, interleaved:
- "bytecode": the layers compiled as bundling ships them (`taskmill_cdk.packaging.compile_bytecode`,
  here for this interpreter's version; a deployment compiles for 3.14 with Pyodide);
- "no bytecode": sources only, what a deployment ships when no compiler for the runtime's
  Python is found, and what Taskmill shipped before.

One cold start = a fresh interpreter that has already loaded what Lambda's own bootstrap
loads (json, logging, http.client, ...), then: import the handler module + its first
invocation (which builds settings, reads secrets, connects) with a representative event,
against a real Postgres (embedded pgserver unless DATABASE_URL is set) and a moto server for
SQS and Secrets Manager (AWS_ENDPOINT_URL). The figure is the median of 7 per function.

    python bench/bench_cold_start.py                     # the table, as deployed
    python bench/bench_cold_start.py --against main=../main  # with another checkout (sources)
    python bench/bench_cold_start.py --importtime        # where the import time goes
    python bench/bench_cold_start.py --profile 40        # cProfile of one cold start each

Figures are printed, never asserted; each invocation's answer is checked, so a failing path
cannot pass for a fast one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from summary import add_row  # noqa: E402

from taskmill_cdk import packaging  # noqa: E402

RUNS = int(os.environ.get("BENCH_COLD_STARTS", "7"))
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PLATFORM = "manylinux2014_x86_64"
ACCOUNT = "123456789012"
REGION = "us-east-1"
PREFIX = "taskmill-bench"


@dataclass(frozen=True)
class Function:
    name: str
    asset: str  # functions/<asset>
    module: str  # the handler module in it
    target_ms: float
    memory_mb: int
    timeout_s: int


FUNCTIONS = (
    Function("api", "api", "handler", 450, 512, 29),
    Function("authorizer", "api", "authorizer", 300, 512, 10),
    Function("worker", "worker", "handler", 500, 512, 900),
    Function("recovery", "retry", "sweep", 500, 512, 55),
)

# Runs in the fresh interpreter. What Lambda's runtime bootstrap (awslambdaric) has imported
# before it imports the handler is imported first, outside the timed part.
CHILD = r"""
import importlib, json, logging, os, sys, time, traceback, decimal, http.client, socket
spec = json.loads(open(sys.argv[1]).read())
sys.path[:0] = spec["path"]


class Context:
    function_name = spec["function_name"]
    function_version = "$LATEST"
    invoked_function_arn = spec["function_arn"]
    memory_limit_in_mb = spec["memory_mb"]
    aws_request_id = spec["request_id"]
    log_group_name = "/aws/lambda/" + spec["function_name"]
    log_stream_name = "2026/01/01/[$LATEST]bench"
    client_context = None
    identity = None

    def __init__(self):
        self.deadline = time.monotonic() + spec["timeout_s"]

    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)


profiler = None
if spec.get("profile"):
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
before = set(sys.modules)
started = time.perf_counter()
module = importlib.import_module(spec["module"])
imported = time.perf_counter()
error = None
try:
    result = module.handler(spec["event"], Context())
except Exception as exc:  # reported, and the parent fails the run
    result, error = None, traceback.format_exc()
finished = time.perf_counter()
if profiler is not None:
    profiler.disable()
    profiler.dump_stats(spec["profile"])
loaded = set(sys.modules) - before
with open(spec["out"], "w") as out:
    json.dump(
        {
            "total_ms": (finished - started) * 1000,
            "import_ms": (imported - started) * 1000,
            "invoke_ms": (finished - imported) * 1000,
            "modules": len(loaded),
            "xray": "aws_xray_sdk" in loaded,
            "boto3": "boto3" in loaded,
            "botocore": "botocore.client" in loaded,
            "psycopg": "psycopg" in loaded,
            "result": result,
            "error": error,
        },
        out,
        default=str,
    )
"""


@dataclass
class Variant:
    """One bundle: a checkout's code laid out as deployed, with or without bytecode."""

    label: str
    source: Path
    bytecode: bool
    directory: Path = field(default=Path())

    def task(self, function: Function) -> Path:
        return self.directory / "task" / function.asset

    @property
    def opt_python(self) -> Path:
        return self.directory / "opt" / "python"


def build_variant(variant: Variant, into: Path) -> None:
    """`/var/task` per function asset and `/opt/python` (both layers merged, as Lambda
    extracts them), from `variant.source`, with the deployed assets' packaging logic."""
    variant.directory = into
    packaging.install_layer(
        variant.opt_python,
        variant.source / "requirements.txt",
        python_version=PYTHON_VERSION,
        platform=PLATFORM,
    )
    packaging.copy_package_layer(variant.source / "layers", variant.opt_python)
    for asset in sorted({f.asset for f in FUNCTIONS}):
        packaging.copy_function(variant.source / "functions" / asset, into / "task" / asset)
    if variant.bytecode:
        # The layers, as bundling compiles them (the function assets stay sources).
        packaging.compile_bytecode(variant.opt_python, PYTHON_VERSION)


def build_runtime_sdk(into: Path, *, bytecode: bool) -> None:
    """What the Lambda Python runtime ships besides the standard library: boto3/botocore
    (the version constraints.txt pins). The runtime's image installs them with pip, which
    compiles them, so by default they are measured with bytecode."""
    pins = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith(("boto3==", "botocore=="))
    ]
    requirements = into.parent / "runtime-requirements.txt"
    requirements.write_text("\n".join(pins) + "\n")
    subprocess.run(
        packaging.pip_arguments(
            requirements, into, python_version=PYTHON_VERSION, platform=PLATFORM
        ),
        check=True,
    )
    if bytecode:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(into)], check=True)


def free_port() -> int:
    wanted = os.environ.get("BENCH_PORT")
    if wanted:
        return int(wanted)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str]:
    from taskmill_local.postgres import embedded_postgres

    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="bench-cold-pg-") as tmp,
        embedded_postgres(Path(tmp), keep_data=False) as server,
    ):
        yield server


@contextmanager
def moto_server(port: int) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def xray_daemon() -> Iterator[tuple[str, list[int]]]:
    """A UDP socket where the X-Ray SDK (when a function loads it) sends its segments, as to
    the daemon Lambda runs; the count shows whether a run traced anything itself."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", int(os.environ.get("BENCH_XRAY_PORT", "0"))))
    sink.setblocking(False)
    received = [0]
    try:
        yield f"127.0.0.1:{sink.getsockname()[1]}", received
    finally:
        sink.close()


@dataclass
class Platform:
    """The deployment's stand-in: database, queues, secrets, one user and a client of the
    API (in this process) to create jobs with."""

    sqs: Any
    env: dict[str, str]
    client: Any
    job_id: str
    token: str
    authorizer_context: dict[str, Any]
    db: Any


def set_up_platform(server_url: str, endpoint: str, stack: ExitStack) -> Platform:
    import boto3
    from psycopg.conninfo import conninfo_to_dict
    from taskmill.api.app import create_app
    from taskmill.api.services import ApiServices
    from taskmill.auth.passwords import Argon2Params, Passwords
    from taskmill.auth.tokens import TokenConfig
    from taskmill.db import Database
    from taskmill.db.migrate import migrate
    from taskmill.jobtypes.defaults import build_registry
    from taskmill.queue.sqs import JobQueue
    from taskmill.settings import ApiSettings, JobTypeSettings
    from taskmill.users.store import UserStore

    from taskmill_local.postgres import create_database
    from taskmill_local.queues import create_queues
    from tests.support.apigw import ApiClient, token_event

    dbname = f"bench_cold_{os.getpid()}"
    url = create_database(server_url, dbname)
    migrate(url)
    fake = "bench"  # moto accepts any credentials; nothing here can reach AWS
    session = boto3.session.Session(
        aws_access_key_id=fake, aws_secret_access_key=fake, region_name=REGION
    )
    sqs = session.client("sqs", endpoint_url=endpoint)
    secrets = session.client("secretsmanager", endpoint_url=endpoint)
    queue_env = create_queues(sqs, PREFIX)
    parts = conninfo_to_dict(url)
    db_secret = {
        "engine": "postgres",
        "host": parts.get("host", "127.0.0.1"),
        "port": int(parts.get("port") or 5432),
        "username": parts.get("user", "postgres"),
        "password": parts.get("password") or "",
        "dbname": dbname,
    }
    jwt_key = uuid.uuid4().hex + uuid.uuid4().hex

    def secret(name: str, value: str) -> str:
        try:
            return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=name, SecretString=value)
            return str(secrets.describe_secret(SecretId=name)["ARN"])

    env = {
        "TASKMILL_DB_SECRET_ARN": secret(f"{PREFIX}/db", json.dumps(db_secret)),
        # Deployed: RDS Proxy with TLS. Here: the socket, without TLS (its handshake is
        # not in the figures).
        "TASKMILL_DB_PROXY_HOST": str(db_secret["host"]),
        "TASKMILL_DB_SSLMODE": "disable",
        "TASKMILL_JWT_SECRET_ARN": secret(f"{PREFIX}/jwt", jwt_key),
        "TASKMILL_WEBHOOK_SECRET_ARN": secret(f"{PREFIX}/webhook", uuid.uuid4().hex * 2),
        **queue_env,
    }

    urls = {name.removeprefix("TASKMILL_").lower(): value for name, value in queue_env.items()}
    settings = ApiSettings(database_url=url, jwt_secret=jwt_key, **urls)
    db = Database(url)
    stack.callback(db.close)
    tokens = TokenConfig(jwt_key, "taskmill", "taskmill-api")
    services = ApiServices(
        settings,
        db,
        JobQueue(settings, client_factory=lambda: sqs),
        build_registry(JobTypeSettings()),
        tokens,
        logging.getLogger("bench"),
        passwords=Passwords(Argon2Params(time_cost=1, memory_kib=8, parallelism=1)),
    )
    client = ApiClient(create_app(services), services)
    UserStore(db).create("cold@example.com", services.passwords.hash("cold start bench"))
    client.login("cold@example.com", "cold start bench")
    response = client.post("/v1/jobs", {"type": "noop", "run_at": "2099-01-01T00:00:00Z"})
    assert response.status == 201, response.body
    job_id = response.body["id"]
    from functions.api.authorizer import check

    assert client.token is not None
    policy = check(token_event("GET", f"/v1/jobs/{job_id}", client.token), tokens)
    return Platform(
        sqs=sqs,
        env=env,
        client=client,
        job_id=job_id,
        token=client.token,
        authorizer_context={**policy["context"], "principalId": policy["principalId"]},
        db=db,
    )


def function_environment(
    function: Function, platform: Platform, endpoint: str, xray_address: str
) -> dict[str, str]:
    """What the function's process has in Lambda: the runtime's variables and the ones
    `infra/` configures (names as in the synthesized template; values are local)."""
    name = f"{PREFIX}-{function.name}"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_XRAY_DAEMON_ADDRESS": xray_address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=1"
        ),
        "_HANDLER": f"{function.module}.handler",
        "TASKMILL_STAGE": "bench",
        "POWERTOOLS_SERVICE_NAME": f"taskmill-{function.name}",
        "POWERTOOLS_METRICS_NAMESPACE": "Taskmill",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    database = {k: v for k, v in platform.env.items() if k.startswith("TASKMILL_DB_")}
    queues = {
        k: v for k, v in platform.env.items() if k.startswith(("TASKMILL_QUEUE_", "TASKMILL_DLQ_"))
    }
    jwt = {"TASKMILL_JWT_SECRET_ARN": platform.env["TASKMILL_JWT_SECRET_ARN"]}
    webhook = {"TASKMILL_WEBHOOK_SECRET_ARN": platform.env["TASKMILL_WEBHOOK_SECRET_ARN"]}
    job_types = {"TASKMILL_JOB_MODULES": "", "TASKMILL_EXTERNAL_TYPES": "[]"}
    if function.name == "authorizer":
        env.update(jwt)
    elif function.name == "api":
        env.update(
            {
                **database,
                **queues,
                **jwt,
                **job_types,
                **webhook,
                "TASKMILL_ALLOW_SIGNUP": "true",
                "TASKMILL_MAX_UNFINISHED_JOBS": "1000",
                "TASKMILL_IDEMPOTENCY_TTL_SECONDS": "86400",
                "TASKMILL_CORS_ORIGINS": "*",
                "TASKMILL_REDRIVE_FUNCTION_NAME": f"{PREFIX}-redrive",
            }
        )
    elif function.name == "worker":
        env.update(
            {
                **database,
                **queues,
                **job_types,
                **webhook,
                "TASKMILL_ECS_CLUSTER_ARN": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{PREFIX}",
                "TASKMILL_ECS_SUBNETS": "subnet-1,subnet-2",
                "TASKMILL_ECS_SECURITY_GROUPS": "sg-1",
                "TASKMILL_ECS_TASK_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/exec",
                "TASKMILL_ECS_TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/task",
                "TASKMILL_ECS_LOG_GROUP": f"/{PREFIX}/containers",
            }
        )
    else:
        env.update(
            {
                **database,
                **queues,
                **job_types,
                "TASKMILL_RETENTION_DAYS": "14",
                "TASKMILL_REQUEUE_AFTER_SECONDS": "900",
            }
        )
    return env


def event_for(function: Function, platform: Platform) -> tuple[dict[str, Any], Any]:
    """A representative first event, and a check of the function's answer to it."""
    from taskmill.jobs.store import JobStore

    from tests.support.apigw import rest_event, token_event
    from tests.support.lambda_events import sqs_record

    if function.name == "api":
        path = f"/v1/jobs/{platform.job_id}"
        event = rest_event(
            "GET",
            path,
            headers={"Authorization": f"Bearer {platform.token}"},
            authorizer=platform.authorizer_context,
        )

        def api_ok(result: dict[str, Any]) -> None:
            assert result["statusCode"] == 200, result
            assert json.loads(result["body"])["id"] == platform.job_id

        return event, api_ok
    if function.name == "authorizer":

        def allowed(result: dict[str, Any]) -> None:
            assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow", result

        return token_event("GET", f"/v1/jobs/{platform.job_id}", platform.token), allowed
    if function.name == "worker":
        created = platform.client.post("/v1/jobs", {"type": "noop"})
        assert created.status == 201, created.body
        job_id = created.body["id"]
        queue_url = platform.env["TASKMILL_QUEUE_URL_NORMAL"]
        arn = platform.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        [message] = platform.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=1,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )["Messages"]
        # The event source mapping deletes what the function answered for; done up front
        # here so a later receive finds only the next job's message.
        platform.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

        def job_ran(result: dict[str, Any]) -> None:
            assert result == {"batchItemFailures": []}, result
            job = JobStore(platform.db).get(uuid.UUID(job_id))
            assert job.status == "succeeded", job.status

        return {"Records": [sqs_record(message, arn)]}, job_ran

    def swept(result: dict[str, Any]) -> None:
        assert isinstance(result, dict), result

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": now,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{PREFIX}-sweep"],
        "detail": {},
    }
    return scheduled, swept


@dataclass
class Sample:
    total_ms: float
    import_ms: float
    invoke_ms: float
    modules: int
    xray: bool
    boto3: bool
    botocore: bool
    psycopg: bool


def cold_start(
    variant: Variant,
    function: Function,
    platform: Platform,
    sdk: Path,
    endpoint: str,
    xray_address: str,
    work: Path,
    *,
    flags: tuple[str, ...] = (),
    profile: Path | None = None,
) -> tuple[Sample, str]:
    event, check = event_for(function, platform)
    out = work / f"out-{uuid.uuid4().hex}.json"
    spec = work / f"spec-{uuid.uuid4().hex}.json"
    name = f"{PREFIX}-{function.name}"
    spec.write_text(
        json.dumps(
            {
                "path": [str(variant.task(function)), str(variant.opt_python), str(sdk)],
                "module": function.module,
                "event": event,
                "out": str(out),
                "function_name": name,
                "function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
                "memory_mb": function.memory_mb,
                "timeout_s": function.timeout_s,
                "request_id": str(uuid.uuid4()),
                "profile": str(profile) if profile else None,
            }
        )
    )
    env = function_environment(function, platform, endpoint, xray_address)
    env["LAMBDA_TASK_ROOT"] = str(variant.task(function))
    # -E -s -S: none of this machine's settings or site-packages; -B: write no bytecode.
    process = subprocess.run(
        [sys.executable, "-E", "-s", "-S", "-B", *flags, "-c", CHILD, str(spec)],
        env=env,
        cwd=variant.task(function),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(f"{function.name} ({variant.label}) failed:\n{process.stderr}")
    report = json.loads(out.read_text())
    out.unlink()
    spec.unlink()
    if report["error"]:
        raise RuntimeError(f"{function.name} ({variant.label}) raised:\n{report['error']}")
    check(report["result"])
    sample = Sample(
        total_ms=report["total_ms"],
        import_ms=report["import_ms"],
        invoke_ms=report["invoke_ms"],
        modules=report["modules"],
        xray=report["xray"],
        boto3=report["boto3"],
        botocore=report["botocore"],
        psycopg=report["psycopg"],
    )
    return sample, process.stderr


def import_profile(function: Function, stderr: str, top: int = 12) -> str:
    """`-X importtime` output summed per top-level package (self times, so nothing counts
    twice): where a cold start's import time goes."""
    per_package: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        if name.strip().startswith("taskmill."):
            package = ".".join(name.strip().split(".")[:2])
        per_package[package] = per_package.get(package, 0) + int(own)
    ranked = sorted(per_package.items(), key=lambda item: -item[1])[:top]
    total = sum(per_package.values()) / 1000
    parts = ", ".join(f"{name} {us / 1000:.0f}" for name, us in ranked)
    return f"import time of {function.name} ({total:.0f} ms, per package, ms): {parts}"


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def table(label: str, samples: dict[str, list[Sample]]) -> list[str]:
    lines = [
        f"cold start as deployed ({label}): median of {RUNS} fresh processes, "
        "import + first invocation",
        f"{'function':<11} {'median ms':>9} {'p-max':>6} {'target':>6} {'import':>6} "
        f"{'modules':>7}  {'X-Ray SDK':<9} {'boto3':<5} {'psycopg':<7} verdict",
    ]
    for function in FUNCTIONS:
        runs = samples[function.name]
        median = statistics.median(s.total_ms for s in runs)
        last = runs[-1]
        lines.append(
            f"{function.name:<11} {median:>9.0f} {max(s.total_ms for s in runs):>6.0f} "
            f"{function.target_ms:>6.0f} {statistics.median(s.import_ms for s in runs):>6.0f} "
            f"{last.modules:>7}  {yes(last.xray):<9} {yes(last.boto3):<5} "
            f"{yes(last.psycopg):<7} {'ok' if median <= function.target_ms else 'OVER'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="[LABEL=]PATH",
        help="another checkout to bundle (sources only) and interleave (e.g. a worktree of main)",
    )
    parser.add_argument(
        "--runtime-sdk-without-bytecode",
        action="store_true",
        help="measure the runtime's boto3/botocore without .pyc files too (the pessimistic bound)",
    )
    parser.add_argument(
        "--importtime",
        action="store_true",
        help="one more cold start per function under -X importtime: import time per package",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="one more cold start per function under cProfile: print its top N entries",
    )
    parser.add_argument("--keep", type=Path, help="build the bundles here and keep them")
    args = parser.parse_args()

    variants = [
        Variant("bytecode", ROOT, bytecode=True),
        Variant("no bytecode", ROOT, bytecode=False),
    ]
    for against in args.against:
        label, _, path = against.rpartition("=")
        variants.append(Variant(label or path, Path(path).resolve(), bytecode=False))

    # The API this process runs to create jobs need not print metrics or request lines.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with ExitStack() as stack:
        work = args.keep or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cold-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for index, variant in enumerate(variants):
            build_variant(variant, work / f"bundle-{index}")
        sdk = work / "runtime-sdk"
        build_runtime_sdk(sdk, bytecode=not args.runtime_sdk_without_bytecode)
        print(f"bundles built in {time.perf_counter() - started:.0f} s under {work}")

        server_url = stack.enter_context(postgres())
        endpoint = stack.enter_context(moto_server(free_port()))
        xray_address, _ = stack.enter_context(xray_daemon())
        platform = set_up_platform(server_url, endpoint, stack)

        samples: dict[str, dict[str, list[Sample]]] = {
            v.label: {f.name: [] for f in FUNCTIONS} for v in variants
        }
        for round_ in range(RUNS):
            for function in FUNCTIONS:
                # Variants take turns going first, so none always runs after the same one.
                order = variants[round_ % len(variants) :] + variants[: round_ % len(variants)]
                for variant in order:
                    sample, _ = cold_start(
                        variant, function, platform, sdk, endpoint, xray_address, work
                    )
                    samples[variant.label][function.name].append(sample)
        if args.importtime:
            for function in FUNCTIONS:
                _, stderr = cold_start(
                    variants[1],  # sources only: where a cold start without bytecode goes
                    function,
                    platform,
                    sdk,
                    endpoint,
                    xray_address,
                    work,
                    flags=("-X", "importtime"),
                )
                (work / f"{function.name}.importtime").write_text(stderr)
                print(import_profile(function, stderr))
        if args.profile:
            import pstats

            for function in FUNCTIONS:
                stats_file = work / f"{function.name}.pstats"
                cold_start(
                    variants[1],  # sources only: where a cold start without bytecode goes
                    function,
                    platform,
                    sdk,
                    endpoint,
                    xray_address,
                    work,
                    profile=stats_file,
                )
                print(f"== cProfile of {function.name}'s cold start (cumulative)")
                pstats.Stats(str(stats_file)).sort_stats("cumulative").print_stats(args.profile)
        for variant in variants:
            if not variant.bytecode:
                written = list(variant.directory.rglob("__pycache__"))
                assert not written, f"bytecode was written in the bundle: {written[:3]}"

    machine = f"{os.cpu_count()} cores, Python {PYTHON_VERSION}"
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}")
    for variant in variants:
        for line in table(variant.label, samples[variant.label]):
            print(line)
        print()
    summary = {
        variant.label: {
            name: round(statistics.median(s.total_ms for s in runs))
            for name, runs in samples[variant.label].items()
        }
        for variant in variants
    }
    for variant in variants:
        for function in FUNCTIONS:
            add_row(
                f"cold start as deployed ({variant.label})",
                function.name,
                f"median {summary[variant.label][function.name]} ms of {RUNS}",
                f"<= {function.target_ms:.0f} ms",
            )
    print(
        json.dumps(
            {
                "cold_start_as_deployed_median_ms": summary,
                "targets_ms": {f.name: f.target_ms for f in FUNCTIONS},
            }
        )
    )


if __name__ == "__main__":
    main()
