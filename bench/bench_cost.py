"""Cost per million jobs (single and batch submission) and idle monthly cost per environment.

Measures, in process on an embedded Postgres (the model and its prices: bench/cost_model.py):
- the API Lambda's handler (`functions.api.handler.handler`, with its Powertools logger and
  metrics) creating one job (`POST /v1/jobs`) and 100 jobs (`POST /v1/jobs/batch`), with SQS
  a constant-time stub: Taskmill's own time, SQL round trips, SQS calls, bytes logged;
- the worker Lambda's handler on full batches of noop jobs (bench_worker's set-up);
- the recovery sweep's handler on an idle database (the one thing an idle environment runs);
- the authorizer's handler (for the cache-miss upper bound).
Then synthesizes every environment in cdk.json (no bundling: assets do not change prices)
and prices each template: per million jobs, and idle per month, line by line.

`--templates DIR` prices DIR/taskmill-<env>.template.json instead (e.g. cdk.out after
`make synth`, or a template from another branch). BENCH_COST_REQUESTS, BENCH_COST_BATCHES,
BENCH_COST_JOBS and BENCH_COST_SWEEPS change the run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers"))

# As in Lambda, Powertools adds the trace id to every log line (counted in the bytes logged).
os.environ.setdefault("_X_AMZN_TRACE_ID", "Root=1-6742a6e3-3c8e3a5f1e2d4b6a7c8d9e0f;Sampled=1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Taskmill")

from summary import add_row  # noqa: E402

from bench.cost_model import (  # noqa: E402
    CUSTOM_METRIC_MONTH,
    PRICES_STATED,
    REGION,
    IdleCost,
    Invocation,
    Measured,
    Template,
    idle_monthly,
    per_million,
    table,
    upper_bounds,
)

REQUESTS = int(os.environ.get("BENCH_COST_REQUESTS", "300"))
BATCHES = int(os.environ.get("BENCH_COST_BATCHES", "30"))
BATCH_JOBS = 100
WORKER_JOBS = int(os.environ.get("BENCH_COST_JOBS", "2000"))
SWEEPS = int(os.environ.get("BENCH_COST_SWEEPS", "30"))
WARM_UP = 10
IDLE_TARGETS = {"dev": "<= $50 (issue 13)"}
QUEUE_URLS = {
    f"TASKMILL_{kind}_URL_{p}": f"https://sqs.us-east-1.amazonaws.com/123456789012/cost-{p}{sfx}"
    for kind, sfx in (("QUEUE", ""), ("DLQ", "-dlq"))
    for p in ("HIGH", "NORMAL", "LOW")
}


class CountingSink(io.TextIOBase):
    """Where log lines and EMF records go: counted (bytes as UTF-8, events as lines) and kept
    (to find the custom metrics they publish)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.events = 0
        self.chunks: list[str] = []

    def write(self, text: str) -> int:
        self.bytes += len(text.rstrip("\n").encode())
        self.events += text.count("\n")
        self.chunks.append(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.chunks)


@contextlib.contextmanager
def logs_into(sink: CountingSink, *loggers: Any) -> Iterator[None]:
    """The handlers' Powertools loggers (their stream was bound at import) and stdout (EMF)
    write into `sink` for the block."""
    handlers = [logger.registered_handler for logger in loggers]
    previous = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.setStream(sink)
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.setStream(stream)


def sample(call: Callable[[], Any], *, db: Any, queue: Any, sink: CountingSink) -> Invocation:
    """One invocation of `call`: times, and what `db`, `queue` (a JobQueue) and `sink` saw."""
    trips, calls, logged, events = db.round_trips, queue.calls, sink.bytes, sink.events
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    wall_ms = (time.perf_counter() - wall) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    return Invocation(
        wall_ms=wall_ms,
        cpu_ms=min(cpu_ms, wall_ms),
        sql_round_trips=db.round_trips - trips,
        sqs_calls=queue.calls - calls,
        log_bytes=sink.bytes - logged,
        log_events=sink.events - events,
    )


def median(samples: list[Invocation]) -> Invocation:
    """Each figure's median over the measured invocations (the warm-up ones dropped)."""
    kept = samples[WARM_UP:] if len(samples) > 2 * WARM_UP else samples
    return Invocation(
        **{
            name: statistics.median(getattr(s, name) for s in kept)
            for name in Invocation.__dataclass_fields__
        }
    )


def context(name: str, memory_mb: int) -> Any:
    from tests.support.lambda_events import FakeLambdaContext

    return FakeLambdaContext(
        remaining_seconds=29.0,
        function_name=f"taskmill-prod-{name}",
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:taskmill-prod-{name}",
    )


def measure(server_url: str) -> tuple[Measured, Invocation]:
    """The figures the model needs, and the authorizer's (for the cache-miss bound)."""
    from taskmill.db import Database
    from taskmill.db.migrate import migrate
    from taskmill.jobs.store import JobStore
    from taskmill.jobtypes.defaults import build_registry
    from taskmill.queue.sqs import JobQueue
    from taskmill.recovery.sweep import Sweeper, SweepLimits
    from taskmill.schedules.store import ScheduleStore
    from taskmill.settings import RecoverySettings

    import functions.api.authorizer as authorizer_module
    import functions.api.handler as api_module
    import functions.retry.sweep as sweep_module
    import functions.worker.handler as worker_module
    from bench.bench_api import ConstantTimeSqs, api_client
    from bench.bench_worker import record, taskmill_jobs, taskmill_worker
    from taskmill_local.postgres import create_database
    from tests.support.apigw import rest_event, token_event

    pid = os.getpid()
    url = create_database(server_url, f"bench_cost_{pid}")
    migrate(url)
    sink = CountingSink()
    loggers = (
        api_module.logger,
        worker_module.logger,
        sweep_module.logger,
        authorizer_module.logger,
    )

    # API: the deployed handler with its container's app and services already built.
    client = api_client(url, ConstantTimeSqs(), QUEUE_URLS, logger=api_module.logger)
    api_module._app = (client.app, client.services)
    db, queue = client.services.db, client.services.queue
    policy = authorizer_module.check(
        token_event("POST", "/v1/jobs", client.token), client.services.tokens
    )
    caller = {**policy["context"], "principalId": policy["principalId"]}
    headers = {"Authorization": f"Bearer {client.token}"}

    def create(body: dict[str, Any], path: str) -> Callable[[], Any]:
        event = rest_event("POST", path, body=body, headers=headers, authorizer=caller)

        def call() -> None:
            response = api_module.handler(event, context("api", 512))
            assert response["statusCode"] == 201, response["body"]

        return call

    single: list[Invocation] = []
    batch: list[Invocation] = []
    authorizer: list[Invocation] = []
    authorizer_module._config = client.services.tokens
    with logs_into(sink, *loggers):
        for _ in range(WARM_UP + REQUESTS):
            single.append(
                sample(create({"type": "noop"}, "/v1/jobs"), db=db, queue=queue, sink=sink)
            )
        jobs = {"jobs": [{"type": "noop"}] * BATCH_JOBS}
        for _ in range(WARM_UP + BATCHES):
            batch.append(sample(create(jobs, "/v1/jobs/batch"), db=db, queue=queue, sink=sink))
        event = token_event("POST", "/v1/jobs", client.token)
        for _ in range(WARM_UP + REQUESTS):
            authorizer.append(
                sample(
                    lambda: authorizer_module.handler(event, context("authorizer", 512)),
                    db=db,
                    queue=queue,
                    sink=sink,
                )
            )
    db.close()

    # Worker: full batches of noop jobs through the deployed handler (bench_worker's set-up).
    ids = taskmill_jobs(url, WORKER_JOBS)
    worker, worker_db = taskmill_worker(url, logger=worker_module.logger)
    worker_module._worker = worker
    size = 10
    events = [{"Records": [record(i) for i in ids[s : s + size]]} for s in range(0, len(ids), size)]
    batches: list[Invocation] = []
    with logs_into(sink, *loggers):
        for event in events:

            def work(event: dict[str, Any] = event) -> None:
                response = worker_module.handler(event, context("worker", 1024))
                assert response == {"batchItemFailures": []}, response

            # noop batches make no SQS call (bench_worker's client would refuse one)
            batches.append(sample(work, db=worker_db, queue=worker.queue, sink=sink))
    worker_db.close()
    # Each metric name + dimension set the API and worker published is a custom metric.
    active = custom_metrics(sink.text())

    # The sweep on an idle database: what an environment with no jobs runs every minute.
    idle_url = create_database(server_url, f"bench_cost_idle_{pid}")
    migrate(idle_url)
    settings = RecoverySettings(
        database_url=idle_url,
        **{k.removeprefix("TASKMILL_").lower(): v for k, v in QUEUE_URLS.items()},
    )
    sweep_db = Database(idle_url)
    sweep_queue = JobQueue(settings, client_factory=ConstantTimeSqs)
    sweep_module._sweeper = Sweeper(
        JobStore(sweep_db),
        sweep_queue,
        build_registry(settings),
        SweepLimits(
            batch=settings.sweep_batch_limit,
            send_grace_seconds=settings.send_grace_seconds,
            requeue_after_seconds=settings.requeue_after_seconds,
            retention_days=settings.retention_days,
        ),
        schedules=ScheduleStore(sweep_db),
        logger=sweep_module.logger,
    )
    sweeps: list[Invocation] = []
    sweep_sink = CountingSink()
    with logs_into(sweep_sink, *loggers):
        for _ in range(WARM_UP + SWEEPS):
            sweeps.append(
                sample(
                    lambda: sweep_module.handler({}, context("recovery", 512)),
                    db=sweep_db,
                    queue=sweep_queue,
                    sink=sweep_sink,
                )
            )
    sweep_db.close()
    custom = custom_metrics(sweep_sink.text())

    return Measured(
        api_single=median(single),
        api_batch=median(batch),
        batch_jobs=BATCH_JOBS,
        worker_batch=median(batches),
        worker_batch_jobs=size,
        sweep=median(sweeps),
        sweep_custom_metrics=len(custom),
        active_custom_metrics=len(active),
    ), median(authorizer)


def custom_metrics(output: str) -> set[tuple[str, tuple[str, ...]]]:
    """The distinct (metric, dimensions) pairs in a stream of EMF records."""
    found: set[tuple[str, tuple[str, ...]]] = set()
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for dimensions in directive.get("Dimensions", [[]]):
                values = tuple(f"{d}={record.get(d)}" for d in dimensions)
                for metric in directive.get("Metrics", []):
                    found.add((metric["Name"], values))
    return found


# ---- templates --------------------------------------------------------------------------------


def environments() -> list[str]:
    settings = json.loads((ROOT / "cdk.json").read_text())
    return list(settings["context"]["environments"])


def synthesized(names: list[str], templates: Path | None) -> dict[str, Template]:
    found: dict[str, Template] = {}
    if templates is not None:
        for name in names:
            path = templates / f"taskmill-{name}.template.json"
            if path.exists():
                found[name] = Template(name, json.loads(path.read_text()))
            else:
                print(f"({path} not found: `make synth ENV={name}` writes it)")
        return found
    from app import build_app

    with tempfile.TemporaryDirectory() as outdir:
        for name in names:
            app = build_app({"env": name, "aws:cdk:bundling-stacks": []}, outdir=f"{outdir}/{name}")
            [artifact] = app.synth().stacks
            found[name] = Template(name, artifact.template)
    return found


# ---- the report -------------------------------------------------------------------------------


def money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.005 or value == 0 else f"${value:,.4f}"


def print_measured(measured: Measured, authorizer: Invocation) -> None:
    print(
        f"measured in process (medians; {REQUESTS} creates, {BATCHES} batches of {BATCH_JOBS}, "
        f"{WORKER_JOBS // measured.worker_batch_jobs} worker batches of "
        f"{measured.worker_batch_jobs}, {SWEEPS} idle sweeps; SQS a constant-time stub):"
    )
    rows = [("invocation", "wall ms", "CPU ms", "SQL trips", "SQS calls", "log B", "log events")]
    for name, inv in (
        ("API POST /v1/jobs", measured.api_single),
        (f"API POST /v1/jobs/batch ({measured.batch_jobs})", measured.api_batch),
        (f"worker batch ({measured.worker_batch_jobs} noop)", measured.worker_batch),
        ("recovery sweep (idle)", measured.sweep),
        ("authorizer (cache miss)", authorizer),
    ):
        rows.append(
            (
                name,
                f"{inv.wall_ms:.2f}",
                f"{inv.cpu_ms:.2f}",
                f"{inv.sql_round_trips:.0f}",
                f"{inv.sqs_calls:.0f}",
                f"{inv.log_bytes:.0f}",
                f"{inv.log_events:.0f}",
            )
        )
    for line in table(rows, "<>>>>>>"):
        print("  " + line)
    print(f"  the sweep publishes {measured.sweep_custom_metrics} custom metrics (EMF)")


def print_per_million(
    templates: dict[str, Template], measured: Measured, authorizer: Invocation
) -> None:
    names = list(templates)
    header = ["component"]
    for name in names:
        header += [f"{name} single", f"{name} batch {measured.batch_jobs}"]
    print(
        f"\ncost per million noop jobs ({REGION} list prices stated {PRICES_STATED}; "
        "single = POST /v1/jobs, batch = POST /v1/jobs/batch with 100 jobs):"
    )
    per_env = {name: per_million(templates[name], measured) for name in names}
    bounds = {name: upper_bounds(templates[name], measured, authorizer) for name in names}
    components = list(dict.fromkeys(r.component for rows in per_env.values() for r in rows))
    rows: list[tuple[str, ...]] = [tuple(header)]
    for component in components:
        line = [component]
        for name in names:
            found = [r for r in per_env[name] if r.component == component]
            line += [money(found[0].single), money(found[0].batch)] if found else ["-", "-"]
        rows.append(tuple(line))
    totals = ["total per million jobs"]
    for name in names:
        single = sum(r.single for r in per_env[name])
        batch = sum(r.batch for r in per_env[name])
        totals += [money(single), money(batch)]
        add_row(
            "cost",
            f"per million noop jobs, {name}: single / batch of {measured.batch_jobs}",
            f"{money(single)} / {money(batch)}",
        )
    rows.append(tuple(totals))
    for bound in ("authorizer on every request", "X-Ray: every request traced"):
        line = [f"  + {bound}"]
        for name in names:
            [row] = [r for r in bounds[name] if r.component == bound]
            line += [money(row.single), money(row.batch)]
        rows.append(tuple(line))
    for text in table(rows, "<" + ">" * (len(header) - 1)):
        print("  " + text)
    monthly = measured.active_custom_metrics * CUSTOM_METRIC_MONTH
    print(
        f"  not per job: while jobs flow, the API and worker publish "
        f"{measured.active_custom_metrics} custom metrics for noop jobs (EMF; per type and "
        f"priority), ${CUSTOM_METRIC_MONTH:.2f} each for a month published every hour = "
        f"{money(monthly)} a month, more per further job type"
    )
    reference = names[-1]
    print(f"  how ({reference}):")
    for row in [*per_env[reference], *bounds[reference]]:
        print(f"    {row.component}: {row.detail}")


def print_idle(
    templates: dict[str, Template], measured: Measured, title: str = ""
) -> dict[str, IdleCost]:
    print(
        f"\nidle monthly cost per environment{title} ({REGION} list prices stated "
        f"{PRICES_STATED}, 730 h):"
    )
    costs = {
        name: idle_monthly(template, measured.sweep, measured.sweep_custom_metrics)
        for name, template in templates.items()
    }
    components = list(dict.fromkeys(c for cost in costs.values() for c, _, _ in cost.items))
    rows: list[tuple[str, ...]] = [("component", *costs)]
    for component in components:
        rows.append(
            (
                component,
                *[money(cost.by_component().get(component, 0.0)) for cost in costs.values()],
            )
        )
    rows.append(("total per month", *[money(cost.total) for cost in costs.values()]))
    if not title:
        for name, cost in costs.items():
            add_row(
                "cost", f"idle per month, {name}", money(cost.total), IDLE_TARGETS.get(name, "")
            )
    for line in table(rows, "<" + ">" * len(costs)):
        print("  " + line)
    for name, cost in costs.items():
        print(f"  {name} line items:")
        for component, monthly, detail in cost.items:
            print(f"    {money(monthly):>9}  {component}: {detail}")
        if cost.unpriced:
            print(f"    UNPRICED (add them to bench/cost_model.py): {', '.join(cost.unpriced)}")
    return costs


def run(server_url: str, templates: dict[str, Template], baseline: dict[str, Template]) -> None:
    measured, authorizer = measure(server_url)
    print_measured(measured, authorizer)
    print_per_million(templates, measured, authorizer)
    now = print_idle(templates, measured)
    if baseline:
        before = print_idle(baseline, measured, " — baseline templates")
        print("\nidle monthly, baseline -> now:")
        for name, cost in before.items():
            if name in now:
                print(f"  {name}: {money(cost.total)} -> {money(now[name].total)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, help="price DIR/taskmill-<env>.template.json")
    parser.add_argument("--env", action="append", help="environments (default: all in cdk.json)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also price DIR/taskmill-<env>.template.json idle, for a before/after comparison",
    )
    args = parser.parse_args(argv)
    names = args.env or environments()
    templates = synthesized(names, args.templates)
    baseline = synthesized(names, args.baseline) if args.baseline else {}
    from taskmill_local.postgres import embedded_postgres

    url = os.environ.get("DATABASE_URL")
    if url:
        run(url, templates, baseline)
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_postgres(Path(tmp), keep_data=False) as server,
    ):
        run(server, templates, baseline)


if __name__ == "__main__":
    main()
