from __future__ import annotations

from typing import Any

import pytest
from taskmill.api.app import create_app
from taskmill.api.services import ApiServices
from taskmill.auth.passwords import Argon2Params, Passwords
from taskmill.auth.tokens import TokenConfig
from taskmill.db import Database
from taskmill.jobtypes.defaults import build_registry
from taskmill.queue.sqs import JobQueue
from taskmill.settings import ApiSettings, JobTypeSettings
from taskmill.users.store import UserStore

from tests.support.apigw import ApiClient

SECRET = "k" * 48
PASSWORD = "correct horse battery"
# argon2id at its minimum cost: the same code path as production, in microseconds.
FAST = Passwords(Argon2Params(time_cost=1, memory_kib=8, parallelism=1))


@pytest.fixture
def api_settings(queue_settings: Any, database_url: str) -> ApiSettings:
    urls = {
        k: v for k, v in queue_settings.model_dump().items() if k.startswith(("queue_", "dlq_"))
    }
    return ApiSettings(
        database_url=database_url,
        jwt_secret=SECRET,
        max_unfinished_jobs=50,
        max_body_bytes=64 * 1024,
        max_payload_bytes=8 * 1024,
        **urls,
    )


@pytest.fixture
def services(api_settings: ApiSettings, db: Database, job_queue: JobQueue) -> ApiServices:
    import logging

    return ApiServices(
        settings=api_settings,
        db=db,
        queue=job_queue,
        registry=build_registry(
            JobTypeSettings(external_types='[{"name": "render", "schema": {"type": "object"}}]')
        ),
        tokens=TokenConfig(secret=SECRET, issuer="taskmill", audience="taskmill-api"),
        logger=logging.getLogger("test.api"),
        passwords=FAST,
    )


@pytest.fixture
def app(services: ApiServices) -> Any:
    return create_app(services)


def make_account(db: Database, email: str, role: str = "user") -> Any:
    return UserStore(db).create(email, FAST.hash(PASSWORD), role=role)


@pytest.fixture
def client(app: Any, services: ApiServices) -> ApiClient:
    return ApiClient(app, services)


@pytest.fixture
def as_user(app: Any, services: ApiServices, db: Database) -> ApiClient:
    make_account(db, "ann@example.com")
    c = ApiClient(app, services)
    c.login("ann@example.com", PASSWORD)
    return c


@pytest.fixture
def as_other(app: Any, services: ApiServices, db: Database) -> ApiClient:
    make_account(db, "bob@example.com")
    c = ApiClient(app, services)
    c.login("bob@example.com", PASSWORD)
    return c


@pytest.fixture
def as_admin(app: Any, services: ApiServices, db: Database) -> ApiClient:
    make_account(db, "root@example.com", role="admin")
    c = ApiClient(app, services)
    c.login("root@example.com", PASSWORD)
    return c


@pytest.fixture
def as_worker(app: Any, services: ApiServices, db: Database) -> ApiClient:
    make_account(db, "robot@example.com", role="worker")
    c = ApiClient(app, services)
    c.login("robot@example.com", PASSWORD)
    return c
