"""`Taskmill` as a construct in a user's own stack: with the user's VPC, with its own, and the
logical ids this repository's stacks must keep (a new one replaces the resource on deploy).

Bundling is skipped here (the assets are the repository's, checked in test_packaging);
tests/infrastructure/test_wheel.py synthesizes the same apps from an installed wheel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure.conftest import Synthesized


def _app(outdir: Path) -> Any:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    context = {"aws:cdk:bundling-stacks": [], "aws:cdk:enable-path-metadata": True}
    app = cdk.App(outdir=str(outdir), context=context)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


def _users_vpc(stack: Any) -> Any:
    from aws_cdk import aws_ec2 as ec2

    vpc = ec2.Vpc(
        stack,
        "MyVpc",
        max_azs=2,
        nat_gateways=1,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )
    vpc.add_flow_log("FlowLog")  # the user's own, so cdk-nag has nothing to say about it
    return vpc


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def _subnets_named(template: dict[str, Any], group: str) -> set[str]:
    return {
        logical_id
        for logical_id, subnet in _resources(template, "AWS::EC2::Subnet").items()
        if {"Key": "aws-cdk:subnet-name", "Value": group} in subnet["Properties"]["Tags"]
    }


def _violations(outdir: Path) -> list[tuple[str, str]]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        (violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
    ]


def test_taskmill_in_a_users_stack_uses_the_passed_vpc_and_adds_no_other(
    tmp_path: Path,
) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_rds as rds
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_sqs as sqs
    from aws_cdk.aws_cloudwatch import Dashboard
    from taskmill.topology import Priority

    from taskmill_cdk import Taskmill, TaskmillConfig

    app = _app(tmp_path)
    stack = cdk.Stack(app, "MyApp")
    vpc = _users_vpc(stack)
    jobs = Taskmill(stack, "Jobs", config=TaskmillConfig(), vpc=vpc)
    assembly = app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    template = assembly.get_stack_by_name("MyApp").template

    # The user's VPC is the only one; Taskmill adds no flow log or gateway endpoint to it.
    assert list(_resources(template, "AWS::EC2::VPC")) == [
        stack.get_logical_id(vpc.node.default_child)
    ]
    assert len(_resources(template, "AWS::EC2::FlowLog")) == 1
    endpoints = _resources(template, "AWS::EC2::VPCEndpoint").values()
    assert all(e["Properties"]["VpcEndpointType"] == "Interface" for e in endpoints)
    assert endpoints
    # Its endpoints belong to the construct, not to the user's VPC construct.
    assert all(e["Metadata"]["aws:cdk:path"].startswith("MyApp/Jobs/Network/") for e in endpoints)

    # Functions in the private subnets with egress, the database in the isolated ones.
    private, isolated = _subnets_named(template, "private"), _subnets_named(template, "db")
    functions = _resources(template, "AWS::Lambda::Function")
    in_vpc = [f for f in functions.values() if "VpcConfig" in f["Properties"]]
    assert in_vpc
    for function in in_vpc:
        subnets = {ref["Ref"] for ref in function["Properties"]["VpcConfig"]["SubnetIds"]}
        assert subnets == private
    [subnet_group] = _resources(template, "AWS::RDS::DBSubnetGroup").values()
    assert {ref["Ref"] for ref in subnet_group["Properties"]["SubnetIds"]} == isolated

    # Taskmill's acknowledgements travelled with it: nothing left for the user to accept.
    assert _violations(tmp_path) == []

    # What a user extends is exposed as the CDK types they expect.
    assert isinstance(jobs.queues.queues[Priority.HIGH], sqs.Queue)
    assert isinstance(jobs.api.rest_api.url, str)
    assert set(jobs.functions) == {
        "api",
        "authorizer",
        "worker",
        "recovery",
        "redrive",
        "migrations",
        "container-events",
    }
    assert all(isinstance(f, lambda_.Function) for f in jobs.functions.values())
    assert isinstance(jobs.database.instance, rds.DatabaseInstance)
    assert jobs.database.secret.secret_arn  # the secret (attached to the instance)
    assert isinstance(jobs.alarm_topic, sns.Topic)
    assert isinstance(jobs.dashboard, Dashboard)


def test_taskmill_without_a_vpc_creates_its_own(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from taskmill_cdk import Taskmill, TaskmillConfig

    app = _app(tmp_path)
    stack = cdk.Stack(app, "MyApp")
    jobs = Taskmill(stack, "Jobs", config=TaskmillConfig(resource_prefix="myapp-jobs"))
    template = app.synth().get_stack_by_name("MyApp").template

    [vpc] = _resources(template, "AWS::EC2::VPC").values()
    assert vpc["Metadata"]["aws:cdk:path"] == "MyApp/Jobs/Network/Vpc/Resource"
    assert jobs.network.vpc.node.scope is jobs.network
    assert len(_resources(template, "AWS::EC2::FlowLog")) == 1
    types = [
        e["Properties"]["VpcEndpointType"]
        for e in _resources(template, "AWS::EC2::VPCEndpoint").values()
    ]
    assert "Gateway" in types  # the free S3 endpoint, in a VPC of its own
    names = {
        f["Properties"]["FunctionName"]
        for f in _resources(template, "AWS::Lambda::Function").values()
        if "FunctionName" in f["Properties"]
    }
    assert "myapp-jobs-api" in names
    assert _violations(tmp_path) == []


def test_a_stack_pinned_to_an_account_and_region_leaves_nothing_for_cdk_nag(
    tmp_path: Path,
) -> None:
    """The usual production stack names its account: the CDK then writes it literally into
    ARNs (the console's BucketDeployment grants), and cdk-nag's findings with it."""
    import aws_cdk as cdk

    from taskmill_cdk import Taskmill, TaskmillConfig

    app = _app(tmp_path)
    env = cdk.Environment(account="111111111111", region="eu-west-1")
    stack = cdk.Stack(app, "Pinned", env=env)
    Taskmill(stack, "Jobs", config=TaskmillConfig(), vpc=_users_vpc(stack))
    app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    assert _violations(tmp_path) == []


def test_a_vpc_whose_data_subnets_span_one_az_is_refused() -> None:
    """RDS needs a subnet group in two AZs even for a single-AZ instance: a one-AZ VPC would
    synthesize and fail on deploy."""
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from taskmill_cdk import Taskmill, TaskmillConfig

    stack = cdk.Stack(cdk.App(), "OneAz")
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=1,
        nat_gateways=1,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )
    with pytest.raises(ValueError, match="data subnets span 1 availability zone"):
        Taskmill(stack, "Jobs", config=TaskmillConfig(), vpc=vpc)


def test_two_taskmills_with_one_resource_prefix_in_one_place_are_refused() -> None:
    """Same prefix, same account and region: every named resource twice. A user's app without
    `@aws-cdk/core:validateAgainstDefaultRules` synthesized this and failed on deploy."""
    import aws_cdk as cdk

    from taskmill_cdk import Taskmill, TaskmillConfig

    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    one = cdk.Stack(app, "One", env=cdk.Environment(account="111111111111", region="us-east-1"))
    Taskmill(one, "A", config=TaskmillConfig())
    # Another region (or account) is another place: the same names may live there.
    other_region = cdk.Environment(account="111111111111", region="eu-west-1")
    Taskmill(cdk.Stack(app, "Two", env=other_region), "A", config=TaskmillConfig())
    Taskmill(one, "C", config=TaskmillConfig(resource_prefix="taskmill-c"))

    with pytest.raises(ValueError, match="One/B and One/A share resource_prefix 'taskmill'"):
        Taskmill(one, "B", config=TaskmillConfig())
    # An environment-agnostic stack may deploy anywhere, so it meets every other stack.
    with pytest.raises(ValueError, match="Three/A and One/A share resource_prefix 'taskmill'"):
        Taskmill(cdk.Stack(app, "Three"), "A", config=TaskmillConfig())


@pytest.mark.parametrize("construct_id", ["Jobs!", "Jobé", "Jobs#1"])
def test_a_construct_id_aws_would_refuse_in_tags_and_descriptions_is_refused(
    construct_id: str,
) -> None:
    """The id goes into the path that CDK writes into Name tags and security-group
    descriptions; AWS refuses these characters there, on deploy."""
    import aws_cdk as cdk

    from taskmill_cdk import Taskmill, TaskmillConfig

    stack = cdk.Stack(cdk.App(), "MyApp")
    with pytest.raises(ValueError, match=f"construct id {construct_id!r}"):
        Taskmill(stack, construct_id, config=TaskmillConfig())


def test_three_azs_in_a_stack_without_an_environment_are_refused() -> None:
    """An environment-agnostic stack's VPC gets two AZs whatever max_azs says (the CDK cannot
    list a region it does not know): three would silently be two."""
    import aws_cdk as cdk

    from taskmill_cdk import NetworkConfig, Taskmill, TaskmillConfig

    config = TaskmillConfig(network=NetworkConfig(max_azs=3))
    with pytest.raises(ValueError, match=r"network\.max_azs 3 needs a stack with an account"):
        Taskmill(cdk.Stack(cdk.App(), "Agnostic"), "Jobs", config=config)


def test_explicit_subnets_win_and_a_vpc_without_private_subnets_is_refused(
    tmp_path: Path,
) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from taskmill_cdk import Taskmill, TaskmillConfig

    app = _app(tmp_path)
    stack = cdk.Stack(app, "MyApp")
    vpc = _users_vpc(stack)
    Taskmill(
        stack,
        "Jobs",
        config=TaskmillConfig(),
        vpc=vpc,
        app_subnets=ec2.SubnetSelection(subnet_group_name="db"),
    )
    template = app.synth().get_stack_by_name("MyApp").template
    isolated = _subnets_named(template, "db")
    for function in _resources(template, "AWS::Lambda::Function").values():
        if "VpcConfig" in function["Properties"]:
            subnets = {ref["Ref"] for ref in function["Properties"]["VpcConfig"]["SubnetIds"]}
            assert subnets == isolated

    public_only = cdk.Stack(cdk.App(), "Public")
    vpc = ec2.Vpc(
        public_only,
        "Vpc",
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
        ],
    )
    with pytest.raises(ValueError, match="no private subnets"):
        Taskmill(public_only, "Jobs", config=TaskmillConfig(), vpc=vpc)


# The logical ids of the stateful resources as deployed before `Taskmill` was a construct.
# CloudFormation replaces a resource whose logical id changes: a new database, new queues.
STATEFUL = {
    "AWS::RDS::DBInstance": {"DatabaseInstanceAA8A5FDE"},
    "AWS::SQS::Queue": {
        "QueuesHighQueueA74530F4",
        "QueuesHighDlq5102E786",
        "QueuesNormalQueueE52331A2",
        "QueuesNormalDlq3495D821",
        "QueuesLowQueueEFE64FA6",
        "QueuesLowDlq6C242E06",
    },
    "AWS::EC2::VPC": {"NetworkVpc7FB7348F"},
    "AWS::SecretsManager::Secret": {
        "ApiJwtSigningKeyC66D8B45",
        "DatabaseFirstAdminPassword846D9D43",
        "WorkersWebhookSigningKey980544D8",
    },
}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_repositorys_stacks_keep_their_logical_ids(
    env: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(env)
    for resource_type, logical_ids in STATEFUL.items():
        found = set(synthesized.of_type(resource_type))
        if resource_type == "AWS::SecretsManager::Secret":
            # The database's own secret is named after the stack by CDK: taskmill<env>...
            found = {i for i in found if not i.startswith(f"taskmill{env}Database")}
        assert found == logical_ids, resource_type
    # The construct's id is the one CDK leaves out of logical ids; its paths carry it.
    [instance] = synthesized.of_type("AWS::RDS::DBInstance").values()
    assert (
        instance["Metadata"]["aws:cdk:path"] == f"taskmill-{env}/Default/Database/Instance/Resource"
    )
