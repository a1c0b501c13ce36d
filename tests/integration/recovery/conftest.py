"""Recovery tests drive the real worker and the real API, so they share those fixtures;
the API here knows the worker's test job types too."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from taskmill.api.services import ApiServices
from taskmill.auth.tokens import TokenConfig

from tests.integration.api.conftest import (  # noqa: F401
    SECRET,
    api_settings,
    app,
    as_admin,
    as_other,
    as_user,
    client,
)
from tests.integration.worker.conftest import (  # noqa: F401
    calls,
    deliver,
    enqueue,
    owner,
    platform_services,
    registry,
    store,
    worker,
    worker_settings,
)


@pytest.fixture
def services(api_settings: Any, db: Any, job_queue: Any, registry: Any) -> ApiServices:  # noqa: F811
    return ApiServices(
        settings=api_settings,
        db=db,
        queue=job_queue,
        registry=registry,
        tokens=TokenConfig(secret=SECRET, issuer="taskmill", audience="taskmill-api"),
        logger=logging.getLogger("test.api"),
    )
