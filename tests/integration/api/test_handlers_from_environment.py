"""The Lambda entry points as deployed: settings from the environment, built on first call."""

from __future__ import annotations

import json
from typing import Any

import boto3

import functions.api.authorizer as authorizer_module
import functions.api.handler as api_module
from tests.integration.api.conftest import PASSWORD, make_account
from tests.support.apigw import rest_event, token_event
from tests.support.lambda_events import FakeLambdaContext


def _environment(monkeypatch: Any, api_settings: Any, secret_arn: str) -> None:
    monkeypatch.setenv("DATABASE_URL", api_settings.database_url.get_secret_value())
    monkeypatch.setenv("TASKMILL_JWT_SECRET_ARN", secret_arn)
    monkeypatch.delenv("TASKMILL_JWT_SECRET", raising=False)
    for priority in ("high", "normal", "low"):
        monkeypatch.setenv(
            f"TASKMILL_QUEUE_URL_{priority.upper()}", api_settings.queue_url(priority)
        )
        monkeypatch.setenv(f"TASKMILL_DLQ_URL_{priority.upper()}", api_settings.dlq_url(priority))


def test_login_then_authorized_request_through_both_handlers(
    monkeypatch, api_settings, db, aws
) -> None:
    # In AWS the signing key lives in Secrets Manager, never in an environment variable.
    arn = boto3.client("secretsmanager").create_secret(Name="jwt", SecretString="s" * 48)["ARN"]
    _environment(monkeypatch, api_settings, arn)
    monkeypatch.setattr(api_module, "_app", None)
    monkeypatch.setattr(authorizer_module, "_config", None)
    make_account(db, "ann@example.com")
    context: Any = FakeLambdaContext()

    login = api_module.handler(
        rest_event(
            "POST", "/v1/auth/login", body={"email": "ann@example.com", "password": PASSWORD}
        ),
        context,
    )
    assert login["statusCode"] == 200
    token = json.loads(login["body"])["access_token"]

    policy = authorizer_module.handler(token_event("GET", "/v1/auth/me", token), context)
    authorizer = {**policy["context"], "principalId": policy["principalId"]}
    me = api_module.handler(rest_event("GET", "/v1/auth/me", authorizer=authorizer), context)
    assert me["statusCode"] == 200
    assert json.loads(me["body"])["email"] == "ann@example.com"
