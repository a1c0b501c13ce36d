"""Network, database, proxy and the migrations custom resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from taskmill_cdk.bundling import package_layer_fingerprint as package_fingerprint
from tests.infrastructure.conftest import Synthesized


def service_of(resource: dict[str, Any]) -> str:
    """An endpoint's service as `network.interface_endpoints` names it (`ecr.api`, `sqs`)."""
    service = json.dumps(resource["Properties"]["ServiceName"])
    # "com.amazonaws.us-east-1.ecr.dkr", or a join of "com.amazonaws.", the region and ".s3".
    for region in ('"AWS::Region"}, ".', "us-east-1."):
        service = service.rsplit(region, 1)[-1]
    return service.strip('"]} ')


def endpoints(synthesized: Synthesized, kind: str) -> dict[str, dict[str, Any]]:
    return {
        service_of(resource): resource
        for resource in synthesized.of_type("AWS::EC2::VPCEndpoint").values()
        if resource["Properties"].get("VpcEndpointType", "Gateway") == kind
    }


def subnet_az(synthesized: Synthesized, subnet_ref: dict[str, str]) -> str:
    """The AZ of a subnet the template references (Fn::Select over Fn::GetAZs: an index)."""
    subnet = synthesized.resources[subnet_ref["Ref"]]
    return json.dumps(subnet["Properties"]["AvailabilityZone"], sort_keys=True)


def test_dev_has_no_nat_and_reaches_aws_through_endpoints(dev: Synthesized) -> None:
    assert dev.of_type("AWS::EC2::NatGateway") == {}
    assert dev.of_type("AWS::EC2::InternetGateway") == {}
    subnets = dev.of_type("AWS::EC2::Subnet").values()
    assert subnets
    assert not any(s["Properties"].get("MapPublicIpOnLaunch") for s in subnets)
    dev.template.resource_count_is("AWS::EC2::FlowLog", 1)


def test_dev_has_exactly_the_endpoints_its_functions_call(dev: Synthesized) -> None:
    # SQS (every function), Secrets Manager (every function, rotation), Lambda (the API
    # starting a redrive). No ecs/ecr/logs: dev runs no containers; no email: no sender.
    assert set(endpoints(dev, "Interface")) == {"sqs", "secretsmanager", "lambda"}
    assert dev.config.network.interface_endpoints == ("sqs", "secretsmanager", "lambda")
    assert set(endpoints(dev, "Gateway")) == {"s3"}  # free


def test_prod_keeps_every_endpoint_and_its_nat_gateways(prod: Synthesized) -> None:
    assert set(endpoints(prod, "Interface")) == {
        "sqs",
        "secretsmanager",
        "lambda",
        "ecs",
        "ecr.api",
        "ecr.dkr",
        "logs",
        "email",
    }
    assert len(prod.of_type("AWS::EC2::NatGateway")) == prod.config.network.nat_gateways == 2


def test_the_application_tier_uses_app_azs_and_the_database_two(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized, app_azs in ((dev, 1), (prod, 2)):
        assert synthesized.config.network.application_azs == app_azs
        for resource in endpoints(synthesized, "Interface").values():
            subnets = resource["Properties"]["SubnetIds"]
            assert len({subnet_az(synthesized, s) for s in subnets}) == len(subnets) == app_azs
        for function in synthesized.of_type("AWS::Lambda::Function").values():
            vpc = function["Properties"].get("VpcConfig")
            if vpc and "SubnetIds" in vpc:
                assert len({subnet_az(synthesized, s) for s in vpc["SubnetIds"]}) == app_azs
        # RDS wants a subnet group in two AZs even for a single-AZ instance.
        [group] = synthesized.of_type("AWS::RDS::DBSubnetGroup").values()
        assert len({subnet_az(synthesized, s) for s in group["Properties"]["SubnetIds"]}) == 2
    # dev's one application AZ is the first one, where its endpoints are.
    [sqs_subnet] = endpoints(dev, "Interface")["sqs"]["Properties"]["SubnetIds"]
    worker = dev.resources[dev.logical_id(dev.stack.taskmill.workers.function)]
    assert worker["Properties"]["VpcConfig"]["SubnetIds"] == [sqs_subnet]


def test_endpoints_only_answer_the_lambdas_and_the_rotation(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        network = synthesized.stack.taskmill.network
        lambda_sg = synthesized.logical_id(network.lambda_security_group)
        endpoint_sg = synthesized.logical_id(network.endpoint_security_group)
        rotation_sg = synthesized.logical_id(
            synthesized.stack.taskmill.database.rotation_security_group
        )
        for resource in synthesized.of_type("AWS::EC2::VPCEndpoint").values():
            if resource["Properties"].get("VpcEndpointType") == "Interface":
                groups = resource["Properties"]["SecurityGroupIds"]
                assert groups == [{"Fn::GetAtt": [endpoint_sg, "GroupId"]}]
        ingress = sorted(
            (
                r["Properties"]
                for r in synthesized.of_type("AWS::EC2::SecurityGroupIngress").values()
                if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_sg, "GroupId"]}
            ),
            key=lambda rule: rule["Description"],
        )
        # The rotation function (its own group, in the app subnets) calls Secrets Manager too.
        assert ingress == [
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "GroupId": {"Fn::GetAtt": [endpoint_sg, "GroupId"]},
                "SourceSecurityGroupId": {"Fn::GetAtt": [lambda_sg, "GroupId"]},
                "Description": "HTTPS from Taskmill Lambdas and tasks",
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "GroupId": {"Fn::GetAtt": [endpoint_sg, "GroupId"]},
                "SourceSecurityGroupId": {"Fn::GetAtt": [rotation_sg, "GroupId"]},
                "Description": "HTTPS from the database secret's rotation",
            },
        ]
        [rotation] = synthesized.of_type("AWS::Serverless::Application").values()
        parameters = rotation["Properties"]["Parameters"]
        assert parameters["vpcSecurityGroupIds"] == {"Fn::GetAtt": [rotation_sg, "GroupId"]}
        assert "Endpoint" in json.dumps(parameters["endpoint"])


def db_instance(synthesized: Synthesized) -> dict[str, Any]:
    [instance] = synthesized.of_type("AWS::RDS::DBInstance").values()
    return instance


def test_database_is_encrypted_private_backed_up_and_requires_tls(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        instance = db_instance(synthesized)
        props = instance["Properties"]
        config = synthesized.config.database
        assert props["Engine"] == "postgres"
        assert props["StorageEncrypted"] is True
        assert props["PubliclyAccessible"] is False
        assert props["BackupRetentionPeriod"] == config.backup_retention_days
        assert props["MultiAZ"] is config.multi_az
        assert props["DeletionProtection"] is config.deletion_protection
        [parameters] = synthesized.of_type("AWS::RDS::DBParameterGroup").values()
        assert parameters["Properties"]["Parameters"]["rds.force_ssl"] == "1"
        # The password is generated into Secrets Manager, never written in the template.
        assert "{{resolve:secretsmanager:" in json.dumps(props["MasterUserPassword"])
    assert db_instance(prod)["Properties"]["MultiAZ"] is True
    assert db_instance(prod)["Properties"]["DeletionProtection"] is True
    assert db_instance(prod)["DeletionPolicy"] == "Snapshot"
    assert db_instance(dev)["DeletionPolicy"] == "Delete"


def database_sources(synthesized: Synthesized) -> set[str]:
    """The security groups allowed into the database's group."""
    db_sg = synthesized.logical_id(synthesized.stack.taskmill.database.security_group)
    return {
        r["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        for r in synthesized.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [db_sg, "GroupId"]}
    }


def rotation_group(synthesized: Synthesized) -> str:
    return next(
        logical
        for logical in synthesized.of_type("AWS::EC2::SecurityGroup")
        if logical.startswith("DatabaseInstanceRotationSingleUser")
    )


def database_functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """The runtime functions that connect to the database (all but the migrations)."""
    stack = synthesized.stack
    functions = [
        stack.taskmill.api.function,
        stack.taskmill.workers.function,
        stack.taskmill.recovery.sweep_function,
        stack.taskmill.recovery.redrive_function,
        stack.taskmill.recovery.ecs_events_function,
    ]
    return {
        synthesized.logical_id(f): synthesized.resources[synthesized.logical_id(f)]
        for f in functions
        if f is not None
    }


def test_prod_functions_reach_the_database_through_a_tls_proxy(prod: Synthesized) -> None:
    assert prod.config.database.proxy is True
    [proxy] = prod.of_type("AWS::RDS::DBProxy").values()
    props = proxy["Properties"]
    assert props["RequireTLS"] is True
    assert props["EngineFamily"] == "POSTGRESQL"
    [auth] = props["Auth"]
    assert auth["SecretArn"] == prod.stack.resolve(prod.stack.taskmill.database.secret.secret_arn)
    assert auth["IAMAuth"] == "DISABLED"  # the functions sign in with the rotated secret
    [target_group] = prod.of_type("AWS::RDS::DBProxyTargetGroup").values()
    pool = target_group["Properties"]["ConnectionPoolConfigurationInfo"]
    assert pool["MaxConnectionsPercent"] == prod.config.database.proxy_max_connections_percent
    # Only the proxy, the migrations (Lambda group) and the rotation function may connect.
    assert prod.stack.taskmill.database.proxy_security_group is not None
    proxy_sg = prod.logical_id(prod.stack.taskmill.database.proxy_security_group)
    lambda_sg = prod.logical_id(prod.stack.taskmill.network.lambda_security_group)
    assert database_sources(prod) == {proxy_sg, lambda_sg, rotation_group(prod)}
    assert prod.stack.taskmill.database.proxy is not None
    proxy_host = {"Fn::GetAtt": [prod.logical_id(prod.stack.taskmill.database.proxy), "Endpoint"]}
    for logical, function in database_functions(prod).items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TASKMILL_DB_PROXY_HOST"] == proxy_host, logical
        assert variables["TASKMILL_DB_SSLMODE"] == "require"


def test_dev_functions_connect_to_the_instance_without_a_proxy(dev: Synthesized) -> None:
    assert dev.config.database.proxy is False
    assert dev.stack.taskmill.database.proxy is None
    assert dev.of_type("AWS::RDS::DBProxy") == {}
    assert dev.of_type("AWS::RDS::DBProxyTargetGroup") == {}
    # No proxy host: the functions take the instance's host from the secret, with TLS.
    secret_arn = dev.stack.resolve(dev.stack.taskmill.database.secret.secret_arn)
    for logical, function in database_functions(dev).items():
        props = function["Properties"]
        variables = props["Environment"]["Variables"]
        assert "TASKMILL_DB_PROXY_HOST" not in variables, logical
        assert variables["TASKMILL_DB_SECRET_ARN"] == secret_arn
        assert variables["TASKMILL_DB_SSLMODE"] == "require"
        assert props["VpcConfig"]["SecurityGroupIds"] == [
            {
                "Fn::GetAtt": [
                    dev.logical_id(dev.stack.taskmill.network.lambda_security_group),
                    "GroupId",
                ]
            }
        ]
    # The instance lets the Lambda group in on 5432 (and rotation); nothing else.
    lambda_sg = dev.logical_id(dev.stack.taskmill.network.lambda_security_group)
    assert database_sources(dev) == {lambda_sg, rotation_group(dev)}
    [rule] = [
        r["Properties"]
        for r in dev.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("SourceSecurityGroupId") == {"Fn::GetAtt": [lambda_sg, "GroupId"]}
        and r["Properties"]["GroupId"]
        == {"Fn::GetAtt": [dev.logical_id(dev.stack.taskmill.database.security_group), "GroupId"]}
    ]
    assert (rule["FromPort"], rule["ToPort"]) == (5432, 5432)
    # ... and each function may read the secret it signs in with.
    for logical, function in database_functions(dev).items():
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        granted = [
            statement
            for policy in dev.of_type("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if "secretsmanager:GetSecretValue" in statement["Action"]
        ]
        assert any(
            statement["Resource"] == secret_arn
            or secret_arn
            in (statement["Resource"] if isinstance(statement["Resource"], list) else [])
            for statement in granted
        ), logical


def test_database_password_rotates(dev: Synthesized) -> None:
    [schedule] = dev.of_type("AWS::SecretsManager::RotationSchedule").values()
    rules = schedule["Properties"]["RotationRules"]
    assert rules["ScheduleExpression"] == f"rate({dev.config.database.rotation_days} days)"


def test_migrations_run_on_deploy_with_the_shared_runner(dev: Synthesized) -> None:
    [schema] = dev.of_type("Custom::TaskmillSchema").values()
    props = schema["Properties"]
    assert props["PackageFingerprint"] == package_fingerprint()
    assert props["AdminEmail"] == dev.config.admin_email
    migrations = dev.resources[dev.logical_id(dev.stack.taskmill.database.migrations_function)]
    assert migrations["Properties"]["Handler"] == "handler.handler"  # functions/migrations
    variables = migrations["Properties"]["Environment"]["Variables"]
    assert "TASKMILL_DB_PROXY_HOST" not in variables  # straight to the instance
    assert set(variables) >= {
        "TASKMILL_BOOTSTRAP_ADMIN_EMAIL",
        "TASKMILL_BOOTSTRAP_ADMIN_SECRET_ARN",
    }
    # The provider's framework function calls the migrations function.
    framework = [
        r
        for r in dev.of_type("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "framework.onEvent"
    ]
    assert [
        f["Properties"]["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"] for f in framework
    ] == [{"Fn::GetAtt": [dev.logical_id(dev.stack.taskmill.database.migrations_function), "Arn"]}]
    # API, worker and sweep wait for the schema.
    schema_id = next(iter(dev.of_type("Custom::TaskmillSchema")))
    for function in (dev.stack.taskmill.api.function, dev.stack.taskmill.workers.function):
        assert schema_id in dev.resources[dev.logical_id(function)]["DependsOn"]


def test_package_fingerprint_follows_the_code_not_the_caches(tmp_path: Path) -> None:
    package = tmp_path / "taskmill"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "0001_initial.sql").write_text("create table t (id int);")
    before = package_fingerprint(tmp_path)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "taskmill.egg-info").mkdir()
    (tmp_path / "taskmill.egg-info" / "PKG-INFO").write_text("machine-specific")
    assert package_fingerprint(tmp_path) == before
    (package / "migrations" / "0002_more.sql").write_text("alter table t add x int;")
    changed = package_fingerprint(tmp_path)
    assert changed != before
    jobs = tmp_path / "acme_jobs"
    jobs.mkdir()
    (jobs / "__init__.py").write_text("def register(registry): ...")
    assert package_fingerprint(tmp_path) != changed  # your own job types count too


def test_prod_keeps_its_data_and_keys_when_the_stack_goes(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized, expected in ((dev, "Delete"), (prod, "Retain")):
        stack = synthesized.stack
        for construct in (
            stack.taskmill.api.jwt_secret,
            stack.taskmill.workers.webhook_secret,
            stack.taskmill.monitoring.topic_key,
        ):
            resource = synthesized.resources[synthesized.logical_id(construct)]
            assert resource["DeletionPolicy"] == expected, construct.node.path
        for group in synthesized.of_type("AWS::Logs::LogGroup").values():
            assert group["DeletionPolicy"] == expected
