"""Functions, packaging, event source mappings, schedules and the connection budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from taskmill.topology import QUEUES, VISIBILITY_TIMEOUT_SECONDS, Priority

from taskmill_cdk.config import EnvironmentConfig, load_environment
from taskmill_cdk.functions import job_type_environment
from taskmill_cdk.runtime import ARCHITECTURE, RUNTIME
from tests.infrastructure.conftest import Synthesized


def taskmill_functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Our functions (the ones with the two layers), not CDK's framework functions."""
    return {
        logical: resource
        for logical, resource in synthesized.of_type("AWS::Lambda::Function").items()
        if len(resource["Properties"].get("Layers", [])) == 2
    }


def test_every_function_runs_the_chosen_runtime_with_both_layers(
    dev: Synthesized, prod: Synthesized
) -> None:
    common = [
        "authorizer.handler",
        "handler.handler",  # api
        "handler.handler",  # migrations
        "handler.handler",  # worker
        "redrive.handler",
        "sweep.handler",
    ]
    # The container events function exists where container.run does (not in dev).
    for synthesized, extra in ((dev, []), (prod, ["ecs_events.handler"])):
        functions = taskmill_functions(synthesized)
        handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
        assert handlers == sorted(common + extra)
        for function in functions.values():
            props = function["Properties"]
            assert props["Runtime"] == RUNTIME.name == "python3.14"
            assert props["Architectures"] == [ARCHITECTURE.name]
            assert props["TracingConfig"] == {"Mode": "Active"}
            assert "LogGroup" in props["LoggingConfig"]


def test_event_source_mappings_report_partial_failures_with_per_queue_caps(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        worker = synthesized.logical_id(synthesized.stack.taskmill.workers.function)
        mappings = {
            m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"]
            for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        }
        assert len(mappings) == 3
        for definition in QUEUES:
            queue = synthesized.logical_id(
                synthesized.stack.taskmill.job_queues.queues[definition.priority]
            )
            mapping = mappings[queue]
            assert mapping["FunctionName"] == {"Ref": worker}
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert mapping["BatchSize"] == definition.batch_size
            assert mapping.get("MaximumBatchingWindowInSeconds", 0) == (
                definition.max_batching_window_seconds
            )
            assert (
                mapping["ScalingConfig"]["MaximumConcurrency"]
                == (synthesized.config.worker.queue_concurrency[definition.priority])
            )
        caps = {p: synthesized.config.worker.queue_concurrency[p] for p in Priority}
        assert caps[Priority.HIGH] > caps[Priority.NORMAL] > caps[Priority.LOW]
    assert prod.config.worker.queue_concurrency != dev.config.worker.queue_concurrency


def test_queue_visibility_is_six_times_the_worker_timeout(dev: Synthesized) -> None:
    worker = dev.resources[dev.logical_id(dev.stack.taskmill.workers.function)]
    assert 6 * worker["Properties"]["Timeout"] <= VISIBILITY_TIMEOUT_SECONDS


def test_database_clients_are_capped_below_the_proxy_pool(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        functions = taskmill_functions(synthesized)
        worker = synthesized.logical_id(synthesized.stack.taskmill.workers.function)
        authorizer = synthesized.logical_id(synthesized.stack.taskmill.api.authorizer_function)
        in_vpc = {k: f for k, f in functions.items() if "VpcConfig" in f["Properties"]}
        assert authorizer not in in_vpc  # no database, no VPC
        capped = 0
        for logical, function in in_vpc.items():
            if logical == worker:
                capped += sum(
                    m["Properties"]["ScalingConfig"]["MaximumConcurrency"]
                    for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
                )
            else:
                capped += function["Properties"]["ReservedConcurrentExecutions"]
        assert capped == synthesized.config.database_clients
        assert capped <= synthesized.config.database.proxy_connections


def test_a_config_that_could_exhaust_the_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="proxy may open only"):
        EnvironmentConfig(
            name="tiny",
            resource_prefix="taskmill-tiny",
            database={"max_connections": 20},
            api={"reserved_concurrency": 50},
        )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"worker": {"queue_concurrency": {"high": 2, "normal": 5, "low": 2}}}, "high must"),
        ({"worker": {"queue_concurrency": {"high": 10, "normal": 1, "low": 2}}}, "between 2"),
        ({"network": {"interface_endpoints": ["sqs", "carrier-pigeon"]}}, "unknown interface"),
        ({"network": {"interface_endpoints": ["sqs", "lambda"]}}, "add \\['secretsmanager'\\]"),
        ({"network": {"max_azs": 2, "app_azs": 3}}, "cannot exceed max_azs"),
        ({"network": {"interface_endpoints": ["sqs", "sqs"]}}, "twice"),
        (
            {"network": {"interface_endpoints": ["sqs", "secretsmanager", "lambda"]}},
            "container.run tasks reach AWS only through endpoints: add \\['ecr.api', 'ecr.dkr', "
            "'ecs', 'logs'\\]",
        ),
        (
            {
                "network": {"interface_endpoints": ["sqs", "secretsmanager", "lambda"]},
                "worker": {"container_jobs": False, "ses_sender": "a@example.com"},
            },
            "email.send reaches AWS only through endpoints: add \\['email'\\]",
        ),
        ({"surprise": True}, "surprise"),
        # Each of these synthesized and failed only on deploy (or never matched a browser).
        (
            {"database": {"allocated_storage_gb": 100, "max_allocated_storage_gb": 50}},
            "max_allocated_storage_gb \\(50\\) must be at least allocated_storage_gb \\(100\\)",
        ),
        ({"database": {"instance_type": "db.t4g.micro"}}, "without the 'db.' prefix"),
        ({"database": {"instance_type": "t4g micro"}}, "instance_type"),
        ({"api": {"memory_mb": 20480}}, "api.memory_mb"),
        ({"worker": {"memory_mb": 10241}}, "worker.memory_mb"),
        ({"api": {"waf_rate_limit": 3_000_000_000}}, "api.waf_rate_limit"),
        ({"api": {"cors_origins": ["app.example.com"]}}, "scheme://host\\[:port\\]"),
        ({"api": {"cors_origins": ["https://app.example.com/"]}}, "'https://app.example.com/'"),
        ({"alarms": {"oldest_message_age_seconds": {"high": 0, "normal": 9, "low": 9}}}, "high"),
        ({"network": {"max_azs": 2, "nat_gateways": 3}}, "nat_gateways \\(3\\) cannot exceed"),
        (
            {"alarms": {"rds_free_storage_gb": 20}, "database": {"allocated_storage_gb": 20}},
            "rds_free_storage_gb \\(20.0\\) must be below database.allocated_storage_gb \\(20\\)",
        ),
        (
            {"removal_policy": "destroy", "database": {"deletion_protection": True}},
            "removal_policy 'destroy' with database.deletion_protection",
        ),
        # The engine, the throttle and the idempotency window: each refused at synth.
        ({"database": {"engine_version": "15.4"}}, "database.engine_version\n.*'15.4' is not"),
        ({"database": {"engine_version": "17"}}, "database.engine_version\n.*major.minor"),
        (
            {"api": {"throttle_rate_limit": 100, "throttle_burst_limit": 50}},
            "throttle_burst_limit \\(50\\) is below throttle_rate_limit \\(100.0\\)",
        ),
        (
            {"retention_days": 7, "idempotency_ttl_seconds": 8 * 86400},
            "x: idempotency_ttl_seconds \\(691200\\) is longer than retention_days \\(7,",
        ),
        # cdk.json is JSON: no coercion of one type into another.
        ({"api": {"throttle_burst_limit": True}}, "api.throttle_burst_limit\n.*valid integer"),
        ({"api": {"throttle_rate_limit": "10"}}, "api.throttle_rate_limit\n.*valid number"),
        ({"max_unfinished_jobs": "10"}, "max_unfinished_jobs\n.*valid integer"),
        ({"retention_days": 1.5}, "retention_days\n.*valid integer"),
        ({"allow_signup": 1}, "allow_signup\n.*valid boolean"),
        ({"database": {"multi_az": "true"}}, "database.multi_az\n.*valid boolean"),
        (
            {"worker": {"queue_concurrency": {"high": "10", "normal": 5, "low": 2}}},
            "worker.queue_concurrency.high\n.*valid integer",
        ),
        ({"account": "12345"}, "account\n  String should match pattern"),
        ({"region": "us-east"}, "region\n  String should match pattern"),
        ({"alarm_email": "ops.example.com"}, "alarm_email\n  String should match pattern"),
        ({"admin_email": "admin@localhost"}, "admin_email\n  String should match pattern"),
    ],
)
def test_invalid_environments_fail_the_synth_clearly(
    override: dict[str, Any], message: str
) -> None:
    context = {"environments": {"x": {"resource_prefix": "taskmill-x", **override}}}
    with pytest.raises(SystemExit, match=message):
        load_environment(context, "x")


def test_the_shipped_environments_load_strictly() -> None:
    """cdk.json's own environments pass the strict reading, and the environment is named
    in every refusal."""
    context = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]
    for name in context["environments"]:
        config = load_environment(context, name)
        assert config.idempotency_ttl_seconds <= config.retention_days * 86400
        assert config.api.throttle_burst_limit >= config.api.throttle_rate_limit
    broken = {"environments": {"staging": {"api": {"throttle_burst_limit": "40"}}}}
    with pytest.raises(SystemExit, match=r"cdk\.json environment 'staging' is invalid"):
        load_environment(broken, "staging")


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"name": "x"}, "'name' is not a setting: the environment is named by its key"),
        (None, "must be an object of settings"),
        (["sqs"], "must be an object of settings"),
    ],
)
def test_an_environment_that_is_not_a_settings_object_fails_clearly(
    environment: Any, message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        load_environment({"environments": {"x": environment}}, "x")


def test_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="declares: dev, prod"):
        load_environment({"environments": {"dev": {}, "prod": {}}}, "staging")


def test_recovery_runs_every_minute(dev: Synthesized) -> None:
    recovery = dev.logical_id(dev.stack.taskmill.recovery.sweep_function)
    [rule] = [
        r
        for r in dev.of_type("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [recovery, "Arn"]}]
    assert dev.resources[recovery]["Properties"]["Timeout"] < 60


def test_the_lost_message_threshold_is_per_environment(dev: Synthesized, prod: Synthesized) -> None:
    for synthesized, seconds in ((dev, "900"), (prod, "1800")):
        sweep = synthesized.resources[
            synthesized.logical_id(synthesized.stack.taskmill.recovery.sweep_function)
        ]
        variables = sweep["Properties"]["Environment"]["Variables"]
        assert variables["TASKMILL_REQUEUE_AFTER_SECONDS"] == seconds


def test_the_idempotency_window_reaches_the_api(dev: Synthesized) -> None:
    api = dev.resources[dev.logical_id(dev.stack.taskmill.api.function)]
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["TASKMILL_IDEMPOTENCY_TTL_SECONDS"] == str(dev.config.idempotency_ttl_seconds)


def test_the_unfinished_jobs_quota_reaches_the_api_the_worker_and_the_sweep(
    prod: Synthesized,
) -> None:
    # The worker creates the child jobs bodies submit, and the sweep the runs of schedules:
    # both count against the same quota.
    for function in (
        prod.stack.taskmill.api.function,
        prod.stack.taskmill.workers.function,
        prod.stack.taskmill.recovery.sweep_function,
    ):
        variables = prod.resources[prod.logical_id(function)]["Properties"]["Environment"][
            "Variables"
        ]
        assert variables["TASKMILL_MAX_UNFINISHED_JOBS"] == str(prod.config.max_unfinished_jobs)


def test_the_api_holds_each_user_to_the_environments_schedule_cap(prod: Synthesized) -> None:
    api = prod.resources[prod.logical_id(prod.stack.taskmill.api.function)]
    variables = api["Properties"]["Environment"]["Variables"]
    assert prod.config.max_schedules_per_user == 1000  # cdk.json's prod entry
    assert variables["TASKMILL_MAX_SCHEDULES_PER_USER"] == "1000"


def test_stopped_container_tasks_reach_the_container_events_function(prod: Synthesized) -> None:
    assert prod.config.worker.container_jobs is True
    assert prod.stack.taskmill.containers is not None
    assert prod.stack.taskmill.recovery.ecs_events_function is not None
    handler = prod.logical_id(prod.stack.taskmill.recovery.ecs_events_function)
    cluster = prod.logical_id(prod.stack.taskmill.containers.cluster)
    [rule] = [
        r for r in prod.of_type("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]
    ]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"] == {
        "clusterArn": [{"Fn::GetAtt": [cluster, "Arn"]}],
        "lastStatus": ["STOPPED"],
    }
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [handler, "Arn"]}]
    worker = prod.resources[prod.logical_id(prod.stack.taskmill.workers.function)]
    variables = worker["Properties"]["Environment"]["Variables"]
    assert variables["TASKMILL_ECS_CLUSTER_ARN"] == {"Fn::GetAtt": [cluster, "Arn"]}
    assert variables["TASKMILL_ECS_TASK_ROLE_ARN"] == {
        "Fn::GetAtt": [prod.logical_id(prod.stack.taskmill.containers.task_role), "Arn"]
    }
    # Tasks run where the functions do: the application subnets.
    subnets = prod.stack.resolve(variables["TASKMILL_ECS_SUBNETS"])
    assert json.dumps(subnets).count("appSubnet") == prod.config.network.application_azs


def test_dev_runs_no_containers(dev: Synthesized) -> None:
    assert dev.config.worker.container_jobs is False
    assert dev.stack.taskmill.containers is None
    assert dev.stack.taskmill.recovery.ecs_events_function is None
    assert dev.of_type("AWS::ECS::Cluster") == {}
    assert not [
        r for r in dev.of_type("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]
    ]
    worker = dev.resources[dev.logical_id(dev.stack.taskmill.workers.function)]
    variables = worker["Properties"]["Environment"]["Variables"]
    # Without a cluster, container.run fails at once ("no container runtime is available").
    assert not [name for name in variables if name.startswith("TASKMILL_ECS_")]


def test_api_knows_the_redrive_function(dev: Synthesized) -> None:
    api = dev.resources[dev.logical_id(dev.stack.taskmill.api.function)]
    assert api["Properties"]["Environment"]["Variables"]["TASKMILL_REDRIVE_FUNCTION_NAME"] == {
        "Ref": dev.logical_id(dev.stack.taskmill.recovery.redrive_function)
    }


def test_job_types_are_checked_at_synth_and_reach_the_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layers = tmp_path / "layers"
    (layers / "acme_jobs").mkdir(parents=True)
    (layers / "taskmill").mkdir()
    (layers / "taskmill" / "__init__.py").write_text("")
    (layers / "acme_jobs" / "__init__.py").write_text("")
    (layers / "acme_jobs" / "resize.py").write_text(
        "def register(registry):\n"
        "    @registry.register('image.resize')\n"
        "    def resize(context, payload):\n"
        "        return {}\n"
    )
    monkeypatch.syspath_prepend(str(layers))
    external = {"name": "video.render", "schema": {"type": "object"}, "timeout_seconds": 7200}
    config = EnvironmentConfig(
        name="x",
        resource_prefix="taskmill-x",
        job_modules=("acme_jobs.resize",),
        external_job_types=(external,),
    )
    variables = job_type_environment(config)
    assert variables["TASKMILL_JOB_MODULES"] == "acme_jobs.resize"
    assert json.loads(variables["TASKMILL_EXTERNAL_TYPES"]) == [external]

    misspelt = config.model_copy(update={"job_modules": ("acme_jobs.resise",)})
    with pytest.raises(Exception, match="resise"):
        job_type_environment(misspelt)
    elsewhere = config.model_copy(update={"job_modules": ("somewhere_else.jobs",)})
    with pytest.raises(ValueError, match="not in the package layer"):
        job_type_environment(elsewhere)
    bad = config.model_copy(update={"external_job_types": ({"schema": {}},)})
    with pytest.raises(Exception, match="name"):
        job_type_environment(bad)
    unusable = config.model_copy(
        update={"external_job_types": ({"name": "video.render", "schema": {"type": "movie"}},)}
    )
    with pytest.raises(ValueError, match=r"'video\.render': its schema is not a valid JSON Schema"):
        job_type_environment(unusable)


def test_functions_that_build_the_registry_get_the_job_type_settings(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        stack = synthesized.stack
        for function in (
            stack.taskmill.api.function,
            stack.taskmill.workers.function,
            stack.taskmill.recovery.sweep_function,
            stack.taskmill.recovery.ecs_events_function,
        ):
            if function is None:  # no container events function in dev
                continue
            variables = synthesized.resources[synthesized.logical_id(function)]["Properties"][
                "Environment"
            ]["Variables"]
            assert variables["TASKMILL_JOB_MODULES"] == ""
            assert variables["TASKMILL_EXTERNAL_TYPES"] == "[]"


def test_package_layer_ships_taskmill_and_the_job_modules_packages_minus_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskmill

    from taskmill_cdk.bundling import PackageLayerBundling, shipped_packages

    apps = tmp_path / "my-app"
    (apps / "billing_jobs" / "__pycache__").mkdir(parents=True)
    (apps / "billing_jobs" / "__init__.py").write_text("")
    (apps / "billing_jobs" / "resize.py").write_text("")
    (apps / "billing_jobs" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (apps / "single_module_jobs.py").write_text("")
    (apps / "unnamed").mkdir()  # beside them, but no job module names it
    (apps / "unnamed" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(apps))

    packages = shipped_packages(["billing_jobs.resize", "single_module_jobs", "billing_jobs"])
    assert packages == [
        Path(taskmill.__file__).resolve().parent,
        (apps / "billing_jobs").resolve(),
        (apps / "single_module_jobs.py").resolve(),
    ]
    out = tmp_path / "out"
    assert PackageLayerBundling(packages).try_bundle(str(out), image=None)  # type: ignore[arg-type]
    # (the runtime's bytecode of a single-module package goes in python/__pycache__)
    shipped = sorted(p.name for p in (out / "python").iterdir() if p.name != "__pycache__")
    assert shipped == ["billing_jobs", "single_module_jobs.py", "taskmill"]
    assert (out / "python" / "taskmill" / "migrations" / "0001_initial.sql").is_file()
    assert not list(out.rglob("x.pyc"))  # the source tree's caches are not copied
    with pytest.raises(ValueError, match="not in the package layer"):
        shipped_packages(["nowhere_to_be_found.jobs"])
