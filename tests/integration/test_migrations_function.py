from __future__ import annotations

from typing import Any
from uuid import uuid4

import boto3
from taskmill.auth.passwords import verify_password
from taskmill.db import Database
from taskmill.users.store import UserStore

from functions.migrations.handler import handler
from taskmill_local.postgres import create_database, drop_database
from tests.support.lambda_events import FakeLambdaContext


def test_deploy_migrates_and_creates_the_first_admin_once(
    postgres_server_url, monkeypatch, aws
) -> None:
    name = f"taskmill_deploy_fn_{uuid4().hex[:8]}"
    url = create_database(postgres_server_url, name)
    arn = boto3.client("secretsmanager").create_secret(
        Name="admin", SecretString="first-admin-pass"
    )["ARN"]
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TASKMILL_BOOTSTRAP_ADMIN_EMAIL", "ops@example.com")
    monkeypatch.setenv("TASKMILL_BOOTSTRAP_ADMIN_SECRET_ARN", arn)
    context: Any = FakeLambdaContext()

    first = handler({"RequestType": "Create"}, context)
    assert first["Data"]["created_admin"] is True
    assert first["Data"]["applied"] != "none"
    db = Database(url)
    admin = UserStore(db).find_by_email("ops@example.com")
    assert admin is not None
    assert admin.role == "admin"
    assert verify_password("first-admin-pass", admin.password_hash)

    # A later deploy changes nothing, even after the admin changed role or password.
    UserStore(db).update(admin.id, password_hash="changed")
    again = handler({"RequestType": "Update"}, context)
    assert again["Data"] == {"applied": "none", "created_admin": False}
    assert UserStore(db).get(admin.id).password_hash == "changed"
    assert handler({"RequestType": "Delete", "PhysicalResourceId": "x"}, context) == {
        "PhysicalResourceId": "x"
    }
    db.close()
    drop_database(postgres_server_url, name)
