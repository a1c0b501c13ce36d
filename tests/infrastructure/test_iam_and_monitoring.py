"""Least privilege, secrets, logs and tags; the dashboard and the alarms."""

from __future__ import annotations

import json
from typing import Any

from taskmill.topology import Priority

from taskmill_cdk.nag import ACTIONS_WITHOUT_RESOURCES
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.test_compute import taskmill_functions


def console_deployment_policy(synthesized: Synthesized) -> str | None:
    """The CDK's BucketDeployment role's policy (taskmill_cdk/console.py): its grants are the CDK's
    grantRead/grantReadWrite, with wildcard object actions on two buckets."""
    console = synthesized.stack.taskmill.console
    if console is None:
        return None
    policy = console.deployment.handler_role.node.find_child("DefaultPolicy")
    return str(synthesized.stack.get_logical_id(policy.node.default_child))


def statements(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    found = []
    skipped = console_deployment_policy(synthesized)
    for logical, policy in synthesized.of_type("AWS::IAM::Policy").items():
        if logical == skipped:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found.append((logical, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(synthesized: Synthesized, function: Any) -> set[str]:
    role = synthesized.stack.get_logical_id(function.role.node.default_child)
    actions: set[str] = set()
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions.update(as_list(statement["Action"]))
    return actions


def test_no_wildcard_actions_and_star_resources_only_where_unavoidable(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        for logical, statement in statements(synthesized):
            for action in as_list(statement["Action"]):
                assert "*" not in action.split(":", 1)[1], (logical, action)
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= ACTIONS_WITHOUT_RESOURCES, logical


def test_the_console_deployment_may_touch_only_the_asset_and_console_buckets(
    dev: Synthesized,
) -> None:
    logical = console_deployment_policy(dev)
    assert logical is not None
    policy = dev.resources[logical]["Properties"]["PolicyDocument"]
    console_bucket = dev.logical_id(dev.stack.taskmill.console.bucket)
    for statement in policy["Statement"]:
        actions = as_list(statement["Action"])
        resources = json.dumps(as_list(statement["Resource"]))
        if all(a.startswith("s3:") for a in actions):
            assert console_bucket in resources or "cdk-hnb659fds-assets" in resources, statement
            assert "s3:*" not in actions
        else:
            # Invalidating the console's distribution after each deployment.
            assert set(actions) <= {"cloudfront:GetInvalidation", "cloudfront:CreateInvalidation"}


def test_each_function_may_call_only_what_it_calls(dev: Synthesized, prod: Synthesized) -> None:
    xray = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    read_secret = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    for synthesized in (dev, prod):
        stack = synthesized.stack
        assert actions_of(synthesized, stack.taskmill.api.authorizer_function) == xray | read_secret
        api = actions_of(synthesized, stack.taskmill.api.function)
        assert "lambda:InvokeFunction" in api
        assert "sqs:SendMessage" in api
        assert not any(a.startswith(("ecs:", "ses:", "iam:")) for a in api)
        worker = actions_of(synthesized, stack.taskmill.workers.function)
        assert "sqs:ChangeMessageVisibility" in worker
        assert "lambda:InvokeFunction" not in worker
        recovery = actions_of(synthesized, stack.taskmill.recovery.sweep_function)
        # It stops container.run tasks (timed out, cancelled) where there are containers.
        stops = {"ecs:StopTask"} if stack.taskmill.containers is not None else set()
        assert {a for a in recovery if a.startswith(("ecs:", "iam:"))} == stops
        # Its only Lambda calls: the queue mappings (test_only_the_api_and_the_sweep_...).
        assert {a for a in recovery if a.startswith("lambda:")} == PAUSE_ACTIONS
        migrations = actions_of(synthesized, stack.taskmill.database.migrations_function)
        assert migrations == xray | read_secret
    # container.run and e-mail only where the environment has them.
    dev_worker = actions_of(dev, dev.stack.taskmill.workers.function)
    assert not any(a.startswith(("ecs:", "iam:", "ses:")) for a in dev_worker)
    assert {"ecs:RunTask", "ecs:StopTask", "iam:PassRole"} <= actions_of(
        prod, prod.stack.taskmill.workers.function
    )


PAUSE_ACTIONS = {"lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"}


def mapping_ids(synthesized: Synthesized) -> dict[Priority, str]:
    """The worker's event source mappings' logical ids, by the priority of their queue."""
    queues = {
        synthesized.logical_id(queue): priority
        for priority, queue in synthesized.stack.taskmill.job_queues.queues.items()
    }
    return {
        queues[mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]: logical
        for logical, mapping in synthesized.of_type("AWS::Lambda::EventSourceMapping").items()
    }


def mapping_arn(region: str, mapping: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                f"arn:aws:lambda:{region}:",
                {"Ref": "AWS::AccountId"},
                ":event-source-mapping:",
                {"Ref": mapping},
            ],
        ]
    }


def test_only_the_api_and_the_sweep_may_switch_the_queue_mappings_and_only_those(
    dev: Synthesized, prod: Synthesized
) -> None:
    """Pausing a queue disables its mapping (SPEC §6): the API does it, the sweep repairs a
    failed call. Each gets the three mapping ids and may get or update those three only."""
    for synthesized in (dev, prod):
        stack = synthesized.stack
        mappings = mapping_ids(synthesized)
        assert len(mappings) == 3
        allowed = {
            synthesized.stack.get_logical_id(function.role.node.default_child)
            for function in (stack.taskmill.api.function, stack.taskmill.recovery.sweep_function)
        }
        granted: dict[str, list[Any]] = {}
        for policy in synthesized.of_type("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = set(as_list(statement["Action"]))
                if actions & PAUSE_ACTIONS or any("EventSourceMapping" in a for a in actions):
                    assert actions == PAUSE_ACTIONS, actions
                    for role in policy["Properties"]["Roles"]:
                        granted[role["Ref"]] = as_list(statement["Resource"])
        assert set(granted) == allowed
        expected = sorted(
            (mapping_arn(stack.region, m) for m in mappings.values()),
            key=lambda arn: json.dumps(arn),
        )
        for resources in granted.values():
            assert sorted(resources, key=lambda arn: json.dumps(arn)) == expected

        for function in (stack.taskmill.api.function, stack.taskmill.recovery.sweep_function):
            variables = synthesized.resources[synthesized.logical_id(function)]["Properties"][
                "Environment"
            ]["Variables"]
            for priority, mapping in mappings.items():
                name = f"TASKMILL_WORKER_EVENT_SOURCE_{priority.value.upper()}"
                assert variables[name] == {"Ref": mapping}, name
        for logical, function in synthesized.of_type("AWS::Lambda::Function").items():
            if logical in {
                synthesized.logical_id(f)
                for f in (stack.taskmill.api.function, stack.taskmill.recovery.sweep_function)
            }:
                continue
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            assert not any(name.startswith("TASKMILL_WORKER_EVENT_SOURCE") for name in variables)


def test_run_task_is_limited_to_the_environments_cluster(prod: Synthesized) -> None:
    assert prod.stack.taskmill.containers is not None
    cluster = prod.logical_id(prod.stack.taskmill.containers.cluster)
    [run_task] = [s for _, s in statements(prod) if s["Action"] == "ecs:RunTask"]
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}
    [pass_role] = [s for _, s in statements(prod) if s["Action"] == "iam:PassRole"]
    assert len(as_list(pass_role["Resource"])) == 2


def test_the_sweep_and_the_worker_may_stop_only_the_environments_tasks(prod: Synthesized) -> None:
    assert prod.stack.taskmill.containers is not None
    cluster = prod.logical_id(prod.stack.taskmill.containers.cluster)
    stops = [s for _, s in statements(prod) if s["Action"] == "ecs:StopTask"]
    assert len(stops) == 2  # the sweep's and the worker's
    assert stops[0] == stops[1]
    stop = stops[0]
    assert stop["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}
    # Tasks of that cluster only: arn:…:task/<cluster name>/*
    [parts] = stop["Resource"]["Fn::Join"][1:]
    assert parts[-3:] == [":task/", {"Ref": cluster}, "/*"]
    sweep = prod.template.to_json()["Resources"][
        prod.logical_id(prod.stack.taskmill.recovery.sweep_function)
    ]
    variables = sweep["Properties"]["Environment"]["Variables"]
    assert variables["TASKMILL_ECS_CLUSTER_ARN"] == {"Fn::GetAtt": [cluster, "Arn"]}


def test_secrets_reach_functions_by_arn_only(dev: Synthesized, prod: Synthesized) -> None:
    for synthesized in (dev, prod):
        for function in synthesized.of_type("AWS::Lambda::Function").values():
            variables = function["Properties"].get("Environment", {}).get("Variables", {})
            for name, value in variables.items():
                if any(word in name for word in ("SECRET", "PASSWORD", "KEY", "TOKEN")):
                    assert name.endswith("_ARN"), name
                    assert isinstance(value, dict), name  # a reference, never a literal
        template = json.dumps(synthesized.template.to_json())
        assert "BOOTSTRAP_ADMIN_PASSWORD" not in template
        assert 'JWT_SECRET"' not in template


def test_every_log_group_has_a_retention_and_every_resource_its_tags(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        groups = synthesized.of_type("AWS::Logs::LogGroup").values()
        days = synthesized.config.log_retention_days
        assert groups
        assert all(g["Properties"]["RetentionInDays"] >= days for g in groups)
        for function in taskmill_functions(synthesized).values():
            tags = {t["Key"]: t["Value"] for t in function["Properties"]["Tags"]}
            assert tags["environment"] == synthesized.config.name
            assert tags["project"] == "taskmill"
        [instance] = synthesized.of_type("AWS::RDS::DBInstance").values()
        assert {"Key": "environment", "Value": synthesized.config.name} in instance["Properties"][
            "Tags"
        ]


def test_dashboard_shows_each_queue_function_api_database_and_job_metrics(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Without a proxy (dev) the dashboard has no proxy graph; without containers, no container
    # events function.
    [dev_dashboard] = dev.of_type("AWS::CloudWatch::Dashboard").values()
    dev_body = json.dumps(dev_dashboard["Properties"]["DashboardBody"])
    assert "ClientConnections" not in dev_body
    assert "DatabaseConnections" in dev_body
    assert dev.logical_id(dev.stack.taskmill.workers.function) in dev_body
    assert "container-events" not in dev_body

    [dashboard] = prod.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    stack = prod.stack
    for priority in Priority:
        for queue in (
            stack.taskmill.job_queues.queues[priority],
            stack.taskmill.job_queues.dead_letter_queues[priority],
        ):
            assert prod.logical_id(queue) in body
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
    ):
        assert metric in body
    for function in (
        stack.taskmill.api.function,
        stack.taskmill.api.authorizer_function,
        stack.taskmill.workers.function,
        stack.taskmill.recovery.sweep_function,
        stack.taskmill.recovery.redrive_function,
        stack.taskmill.recovery.ecs_events_function,
        stack.taskmill.database.migrations_function,
    ):
        assert prod.logical_id(function) in body
    for metric in ("Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"):
        assert f'\\"{metric}\\"' in body
    assert '\\"p50\\"' in body
    assert '\\"p99\\"' in body
    for metric in ("Count", "4XXError", "5XXError", "Latency"):
        assert f'\\"{metric}\\"' in body
    for metric in (
        "CPUUtilization",
        "DatabaseConnections",
        "FreeStorageSpace",
        "ClientConnections",
    ):
        assert metric in body
    for metric in ("JobsCreated", "JobsSucceeded", "JobsFailed", "JobsRetried", "QueueWait"):
        assert f'MetricName=\\\\\\"{metric}\\\\\\"' in body, metric


def alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmDescription"]: alarm["Properties"]
        for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_alarms_page_the_topic(dev: Synthesized, prod: Synthesized) -> None:
    topic = {"Ref": dev.logical_id(dev.stack.taskmill.monitoring.topic)}
    found = alarms(dev)
    for properties in found.values():
        assert properties["AlarmActions"] == [topic]
        assert properties["OKActions"] == [topic]
    descriptions = " | ".join(found)
    for priority in Priority:
        assert f"dead-lettered on the {priority.value} queue" in descriptions
        assert f"The {priority.value} queue is falling behind" in descriptions
    assert "of API requests failed with a 5xx" in descriptions
    assert "The worker function failed" in descriptions
    assert "Database CPU" in descriptions
    assert "free storage" in descriptions
    dlq_alarm = next(p for d, p in found.items() if "dead-lettered on the high" in d)
    assert dlq_alarm["Threshold"] == 1
    [query] = dlq_alarm["Metrics"]
    metric = query["MetricStat"]["Metric"]
    assert metric["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert metric["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": [
            dev.logical_id(dev.stack.taskmill.job_queues.dead_letter_queues[Priority.HIGH]),
            "QueueName",
        ]
    }
    # The configured e-mail is subscribed where one is configured.
    assert dev.of_type("AWS::SNS::Subscription") == {}
    [subscription] = prod.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == prod.config.alarm_email
    [topic_resource] = dev.of_type("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic_resource["Properties"]


def test_email_is_allowed_only_from_the_configured_sender(prod: Synthesized) -> None:
    sender = prod.config.worker.ses_sender
    assert sender == "noreply@example.com"
    worker = prod.resources[prod.logical_id(prod.stack.taskmill.workers.function)]
    assert worker["Properties"]["Environment"]["Variables"]["TASKMILL_SES_SENDER"] == sender
    [statement] = [s for _, s in statements(prod) if "ses:SendEmail" in as_list(s["Action"])]
    identities = [json.dumps(resource) for resource in as_list(statement["Resource"])]
    assert len(identities) == 2
    assert any(":identity/noreply@example.com" in identity for identity in identities)
    assert any(identity.endswith(':identity/example.com"]]}') for identity in identities)
    assert "ses:SendEmail" in actions_of(prod, prod.stack.taskmill.workers.function)


def test_alarm_thresholds_come_from_the_environment(dev: Synthesized) -> None:
    thresholds = dev.config.alarms
    found = alarms(dev)
    for priority in Priority:
        [age] = [p for d, p in found.items() if f"The {priority.value} queue is falling" in d]
        assert age["Threshold"] == thresholds.oldest_message_age_seconds[priority]
        assert age["EvaluationPeriods"] == 5
    [api] = [p for d, p in found.items() if "5xx" in d]
    assert api["Threshold"] == thresholds.api_5xx_percent
    [storage] = [p for d, p in found.items() if "free storage" in d]
    assert storage["Threshold"] == thresholds.rds_free_storage_gb * 1024**3


def test_a_sweep_stopped_by_an_outage_pages(dev: Synthesized) -> None:
    """Such a run ends its invocation normally (one warning line, no traceback), so the
    function's error alarm misses it: the sweep's own metric has an alarm."""
    [sweep] = [p for d, p in alarms(dev).items() if "recovery sweep could not run" in d]
    assert sweep["Threshold"] == 1
    assert (sweep["Namespace"], sweep["MetricName"]) == ("Taskmill", "Sweep_failed_runs")
    assert sweep["Dimensions"] == [{"Name": "service", "Value": "taskmill-recovery"}]
