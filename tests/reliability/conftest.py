"""Reliability tests reuse the worker's fixtures (real Postgres, moto SQS, the real worker)."""

from __future__ import annotations

from tests.integration.worker.conftest import (  # noqa: F401
    calls,
    deliver,
    enqueue,
    http_receiver,
    owner,
    platform_services,
    registry,
    store,
    worker,
    worker_settings,
)
