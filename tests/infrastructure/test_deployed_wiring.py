"""The synthesized stack's wiring, run: each function's environment variables as the dev and
prod templates set them (references resolved the way CloudFormation would, to moto resources
and the test Postgres) build working handlers. A variable the stack misnames, forgets or points
at the wrong resource fails here rather than after a deploy. prod goes through RDS Proxy; dev
has none and its functions connect to the instance the secret names.

Only TLS is relaxed: the embedded Postgres has none, so `TASKMILL_DB_SSLMODE` (`require` in
the template, asserted elsewhere) is set to `disable`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict
from taskmill.auth.authorizer_settings import load_authorizer_settings
from taskmill.settings import (
    ApiSettings,
    AuthorizerSettings,
    DatabaseSettings,
    MigrationSettings,
    RecoverySettings,
    WorkerSettings,
    load_settings,
)
from taskmill.topology import Priority

import functions.api.authorizer as authorizer_module
import functions.api.handler as api_module
import functions.migrations.handler as migrations_module
import functions.retry.sweep as recovery_module
import functions.worker.handler as worker_module
from taskmill_local.postgres import create_database, drop_database
from taskmill_local.queues import create_queues
from tests.infrastructure.conftest import Synthesized
from tests.support.apigw import rest_event, token_event
from tests.support.lambda_events import FakeLambdaContext, receive_event


class Deployment:
    """What CloudFormation would substitute for the template's references."""

    def __init__(self, synthesized: Synthesized, database_url: str) -> None:
        self.synthesized = synthesized
        stack = synthesized.stack
        secrets = boto3.client("secretsmanager")
        sqs = boto3.client("sqs")
        params = conninfo_to_dict(database_url)
        host = str(params.get("host") or "localhost")
        self.admin_password = "first admin password 123"

        def secret(name: str, value: str) -> str:
            return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])

        self.database_secret = {
            "host": host,
            "port": int(params.get("port") or 5432),
            "username": params.get("user"),
            "password": params.get("password") or "",
            "dbname": params.get("dbname"),
        }
        self.database_secret_arn = secret("db", json.dumps(self.database_secret))
        self.values: dict[str, str] = {
            self.key(stack.taskmill.database.secret.secret_arn): self.database_secret_arn,
            self.key(stack.taskmill.api.jwt_secret.secret_arn): secret("jwt", "k" * 64),
            self.key(stack.taskmill.workers.webhook_secret.secret_arn): secret("webhook", "w" * 64),
            self.key(stack.taskmill.recovery.redrive_function.function_name): "taskmill-redrive",
        }
        if stack.taskmill.database.proxy is not None:
            self.values[self.key(stack.taskmill.database.proxy.endpoint)] = host
        assert stack.taskmill.database.admin_secret is not None
        self.values[self.key(stack.taskmill.database.admin_secret.secret_arn)] = secret(
            "admin", self.admin_password
        )
        urls = create_queues(sqs, synthesized.config.resource_prefix)
        for priority in Priority:
            self.values[self.key(stack.taskmill.job_queues.queues[priority].queue_url)] = urls[
                f"TASKMILL_QUEUE_URL_{priority.value.upper()}"
            ]
            self.values[
                self.key(stack.taskmill.job_queues.dead_letter_queues[priority].queue_url)
            ] = urls[f"TASKMILL_DLQ_URL_{priority.value.upper()}"]
        self.queue_urls = urls

    def make_instance_unreachable(self) -> None:
        """From now on only the proxy host reaches the database (as in the VPC)."""
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.database_secret_arn,
            SecretString=json.dumps({**self.database_secret, "host": "rds-instance.invalid"}),
        )

    def key(self, token: Any) -> str:
        return json.dumps(self.synthesized.stack.resolve(token), sort_keys=True)

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        # Anything not listed (ECS ARNs, subnet ids) is opaque to these handlers.
        return self.values.get(json.dumps(value, sort_keys=True), f"unresolved:{value}")

    def environment(self, function: Any) -> dict[str, str]:
        properties = self.synthesized.resources[self.synthesized.logical_id(function)]["Properties"]
        variables = {
            name: self.resolve(value)
            for name, value in properties["Environment"]["Variables"].items()
        }
        variables["TASKMILL_DB_SSLMODE"] = "disable"
        return variables


@pytest.fixture(params=["dev", "prod"])
def deployed(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized


@pytest.fixture
def deployment(
    deployed: Synthesized, aws: None, postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    name = f"taskmill_deployed_{os.getpid()}"
    drop_database(postgres_server_url, name)
    url = create_database(postgres_server_url, name)  # empty: the migrations resource fills it
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for module, attribute in (
        (api_module, "_app"),
        (authorizer_module, "_config"),
        (worker_module, "_worker"),
        (recovery_module, "_sweeper"),
    ):
        monkeypatch.setattr(module, attribute, None)
    yield Deployment(deployed, url)
    # The handlers' cached connections go with monkeypatch's reset; FORCE ends any left.
    drop_database(postgres_server_url, name)


def use(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    """A function's environment: nothing of the previous function's is left."""
    for name in list(os.environ):
        if name.startswith(("TASKMILL_", "POWERTOOLS_")):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


SETTINGS: dict[str, type[DatabaseSettings] | type[AuthorizerSettings]] = {
    "api": ApiSettings,
    "authorizer": AuthorizerSettings,
    "worker": WorkerSettings,
    "recovery": RecoverySettings,
    "redrive": RecoverySettings,
    "container-events": WorkerSettings,
    "migrations": MigrationSettings,
}


def functions_by_name(synthesized: Synthesized) -> dict[str, Any]:
    stack = synthesized.stack
    return {
        "api": stack.taskmill.api.function,
        "authorizer": stack.taskmill.api.authorizer_function,
        "worker": stack.taskmill.workers.function,
        "recovery": stack.taskmill.recovery.sweep_function,
        "redrive": stack.taskmill.recovery.redrive_function,
        "container-events": stack.taskmill.recovery.ecs_events_function,
        "migrations": stack.taskmill.database.migrations_function,
    }


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_function_environment_is_valid_for_its_settings(
    deployed: Synthesized, name: str
) -> None:
    function = functions_by_name(deployed)[name]
    if function is None:
        assert name == "container-events"
        assert not deployed.config.worker.container_jobs
        return
    variables = deployed.resources[deployed.logical_id(function)]["Properties"]["Environment"][
        "Variables"
    ]
    model = SETTINGS[name]
    # Every TASKMILL_ variable the stack sets is one the function reads (no typo is ignored).
    for variable in variables:
        if variable.startswith("TASKMILL_"):
            assert variable.removeprefix("TASKMILL_").lower() in model.model_fields, variable
    settings: DatabaseSettings | AuthorizerSettings = load_settings(
        model, {k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in variables.items()}
    )
    assert settings.stage == deployed.config.name


def test_the_authorizer_reads_its_deployed_environment_without_pydantic(
    dev: Synthesized,
) -> None:
    function = functions_by_name(dev)["authorizer"]
    variables = dev.resources[dev.logical_id(function)]["Properties"]["Environment"]["Variables"]
    settings = load_authorizer_settings(
        {k: v if isinstance(v, str) else "resolved-at-deploy" for k, v in variables.items()}
    )
    assert settings.stage == "dev"
    assert settings.jwt_secret is None
    assert settings.jwt_secret_arn == "resolved-at-deploy"


def test_deployed_functions_migrate_serve_run_and_sweep(
    deployed: Synthesized, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    functions = functions_by_name(deployed)
    context: Any = FakeLambdaContext()

    # Deploy time: the custom resource migrates the empty database and creates the admin.
    use(monkeypatch, deployment.environment(functions["migrations"]))
    created = migrations_module.handler({"RequestType": "Create"}, context)
    assert created["Data"]["created_admin"] is True
    assert created["Data"]["applied"].startswith("1,")
    again = migrations_module.handler({"RequestType": "Update"}, context)
    assert again["Data"] == {"applied": "none", "created_admin": False}
    if deployed.stack.taskmill.database.proxy is not None:
        # The runtime functions must go through the proxy host the stack gives them.
        deployment.make_instance_unreachable()
    else:
        # No proxy: the functions connect to the host the secret names (the instance).
        for name in ("api", "worker", "recovery"):
            assert "TASKMILL_DB_PROXY_HOST" not in deployment.environment(functions[name])

    # The first admin logs in through the API function with the generated password.
    use(monkeypatch, deployment.environment(functions["api"]))
    login = api_module.handler(
        rest_event(
            "POST",
            "/v1/auth/login",
            body={"email": deployed.config.admin_email, "password": deployment.admin_password},
        ),
        context,
    )
    assert login["statusCode"] == 200, login["body"]
    token = json.loads(login["body"])["access_token"]

    use(monkeypatch, deployment.environment(functions["authorizer"]))
    policy = authorizer_module.handler(token_event("POST", "/v1/jobs", token), context)
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    caller = {**policy["context"], "principalId": policy["principalId"]}

    use(monkeypatch, deployment.environment(functions["api"]))
    created_job = api_module.handler(
        rest_event(
            "POST", "/v1/jobs", body={"type": "noop", "priority": "high"}, authorizer=caller
        ),
        context,
    )
    assert created_job["statusCode"] == 201, created_job["body"]
    job_id = json.loads(created_job["body"])["id"]

    # The event source mapping of the high queue hands the message to the worker.
    use(monkeypatch, deployment.environment(functions["worker"]))
    event = receive_event(boto3.client("sqs"), deployment.queue_urls["TASKMILL_QUEUE_URL_HIGH"])
    assert len(event["Records"]) == 1
    assert worker_module.handler(event, context) == {"batchItemFailures": []}

    use(monkeypatch, deployment.environment(functions["api"]))
    fetched = api_module.handler(
        rest_event("GET", f"/v1/jobs/{job_id}", authorizer=caller), context
    )
    assert json.loads(fetched["body"])["status"] == "succeeded"

    use(monkeypatch, deployment.environment(functions["recovery"]))
    report = recovery_module.handler({}, context)
    assert isinstance(report, dict)
