"""CloudFormation custom resource run on every deploy: migrate, then the first admin."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.auth.bootstrap import bootstrap_password_secret, ensure_first_admin
from taskmill.db import Database
from taskmill.db.credentials import conninfo_source
from taskmill.db.migrate import migrate
from taskmill.settings import MigrationSettings, load_settings

logger = Logger(service="taskmill-migrations")
PHYSICAL_ID = "taskmill-schema"


def run(settings: MigrationSettings) -> dict[str, Any]:
    conninfo = conninfo_source(settings)()
    applied = migrate(conninfo)
    created_admin = False
    password_secret = bootstrap_password_secret(settings)
    password = password_secret.get() if password_secret.configured else None
    if settings.bootstrap_admin_email and password:
        db = Database(conninfo, application_name="taskmill-migrations")
        try:
            _, created_admin = ensure_first_admin(db, settings.bootstrap_admin_email, password)
        finally:
            db.close()
    logger.info("migrations done", extra={"applied": applied, "created_admin": created_admin})
    return {"applied": ",".join(str(v) for v in applied) or "none", "created_admin": created_admin}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Deleting the stack must not touch the data (the database has its own removal policy).
    if event.get("RequestType") == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": run(load_settings(MigrationSettings))}
