"""Attack tests run against the real authorizer and API handler (API Gateway event shapes,
real Postgres, moto): the API tests' fixtures, shared rather than copied."""

from __future__ import annotations

from tests.integration.api.conftest import (  # noqa: F401 - fixtures, registered by import
    api_settings,
    app,
    as_admin,
    as_other,
    as_user,
    as_worker,
    client,
    services,
)
