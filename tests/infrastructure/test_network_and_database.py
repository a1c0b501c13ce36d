"""Network, database, proxy and the migrations custom resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.bundling import package_layer_fingerprint as package_fingerprint
from tests.infrastructure.conftest import Synthesized


def endpoint_services(synthesized: Synthesized) -> set[str]:
    names = set()
    for resource in synthesized.of_type("AWS::EC2::VPCEndpoint").values():
        service = json.dumps(resource["Properties"]["ServiceName"])
        names.add(service.rsplit(".", 1)[-1].strip('"]}'))
    return names


def test_dev_has_no_nat_and_reaches_aws_through_endpoints(dev: Synthesized) -> None:
    assert dev.of_type("AWS::EC2::NatGateway") == {}
    assert dev.of_type("AWS::EC2::InternetGateway") == {}
    subnets = dev.of_type("AWS::EC2::Subnet").values()
    assert subnets
    assert not any(s["Properties"].get("MapPublicIpOnLaunch") for s in subnets)
    assert {"sqs", "secretsmanager", "lambda", "ecs", "s3", "logs", "email"} <= endpoint_services(
        dev
    )
    assert {"api", "dkr"} <= endpoint_services(dev)  # ecr.api and ecr.dkr
    dev.template.resource_count_is("AWS::EC2::FlowLog", 1)


def test_prod_has_the_nat_gateways_its_config_asks_for(prod: Synthesized) -> None:
    assert len(prod.of_type("AWS::EC2::NatGateway")) == prod.config.network.nat_gateways == 2


def test_endpoints_only_answer_the_lambdas(dev: Synthesized) -> None:
    lambda_sg = dev.logical_id(dev.stack.network.lambda_security_group)
    endpoint_sg = dev.logical_id(dev.stack.network.endpoint_security_group)
    for resource in dev.of_type("AWS::EC2::VPCEndpoint").values():
        if resource["Properties"].get("VpcEndpointType") == "Interface":
            groups = resource["Properties"]["SecurityGroupIds"]
            assert groups == [{"Fn::GetAtt": [endpoint_sg, "GroupId"]}]
    ingress = [
        r["Properties"]
        for r in dev.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_sg, "GroupId"]}
    ]
    assert ingress == [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "GroupId": {"Fn::GetAtt": [endpoint_sg, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [lambda_sg, "GroupId"]},
            "Description": "HTTPS from Taskmill Lambdas and tasks",
        }
    ]


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


def test_functions_reach_the_database_through_a_tls_proxy(dev: Synthesized) -> None:
    [proxy] = dev.of_type("AWS::RDS::DBProxy").values()
    props = proxy["Properties"]
    assert props["RequireTLS"] is True
    assert props["EngineFamily"] == "POSTGRESQL"
    [auth] = props["Auth"]
    assert auth["SecretArn"] == dev.stack.resolve(dev.stack.database.secret.secret_arn)
    assert auth["IAMAuth"] == "DISABLED"  # the functions sign in with the rotated secret
    [target_group] = dev.of_type("AWS::RDS::DBProxyTargetGroup").values()
    pool = target_group["Properties"]["ConnectionPoolConfigurationInfo"]
    assert pool["MaxConnectionsPercent"] == dev.config.database.proxy_max_connections_percent
    # Only the proxy, the migrations (Lambda group) and the rotation function may connect.
    db_sg = dev.logical_id(dev.stack.database.security_group)
    proxy_sg = dev.logical_id(dev.stack.database.proxy_security_group)
    lambda_sg = dev.logical_id(dev.stack.network.lambda_security_group)
    sources = {
        r["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        for r in dev.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [db_sg, "GroupId"]}
    }
    rotation_sg = next(
        logical
        for logical in dev.of_type("AWS::EC2::SecurityGroup")
        if logical.startswith("DatabaseInstanceRotationSingleUser")
    )
    assert sources == {proxy_sg, lambda_sg, rotation_sg}
    api = dev.resources[dev.logical_id(dev.stack.api.function)]
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["TASKMILL_DB_PROXY_HOST"] == {
        "Fn::GetAtt": [dev.logical_id(dev.stack.database.proxy), "Endpoint"]
    }
    assert variables["TASKMILL_DB_SSLMODE"] == "require"


def test_database_password_rotates(dev: Synthesized) -> None:
    [schedule] = dev.of_type("AWS::SecretsManager::RotationSchedule").values()
    rules = schedule["Properties"]["RotationRules"]
    assert rules["ScheduleExpression"] == f"rate({dev.config.database.rotation_days} days)"


def test_migrations_run_on_deploy_with_the_shared_runner(dev: Synthesized) -> None:
    [schema] = dev.of_type("Custom::TaskmillSchema").values()
    props = schema["Properties"]
    assert props["PackageFingerprint"] == package_fingerprint()
    assert props["AdminEmail"] == dev.config.admin_email
    migrations = dev.resources[dev.logical_id(dev.stack.database.migrations_function)]
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
    ] == [{"Fn::GetAtt": [dev.logical_id(dev.stack.database.migrations_function), "Arn"]}]
    # API, worker and sweep wait for the schema.
    schema_id = next(iter(dev.of_type("Custom::TaskmillSchema")))
    for function in (dev.stack.api.function, dev.stack.workers.function):
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
            stack.api.jwt_secret,
            stack.workers.webhook_secret,
            stack.monitoring.topic_key,
        ):
            resource = synthesized.resources[synthesized.logical_id(construct)]
            assert resource["DeletionPolicy"] == expected, construct.node.path
        for group in synthesized.of_type("AWS::Logs::LogGroup").values():
            assert group["DeletionPolicy"] == expected
