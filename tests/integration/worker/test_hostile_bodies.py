"""Job bodies that misbehave, as a user's own job type might: each ends its job with a
clear outcome and leaves the rest of the batch, and the worker, unharmed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.settings import JobTypeSettings

from tests.integration.worker.conftest import failures


def raising(error: BaseException) -> Callable[[Any, Any], Any]:
    def body(context: Any, payload: Any) -> Any:
        raise error

    return body


BASE_EXCEPTIONS = {
    "exits": (SystemExit(3), "SystemExit: 3"),
    "interrupts": (KeyboardInterrupt("stop"), "KeyboardInterrupt: stop"),
    "closes": (GeneratorExit("closed"), "GeneratorExit: closed"),
}


@pytest.fixture
def registry() -> JobTypeRegistry:
    registry = build_registry(JobTypeSettings())
    for name, (error, _) in BASE_EXCEPTIONS.items():
        registry.register(name, max_attempts=1)(raising(error))
    return registry


@pytest.mark.parametrize("name", list(BASE_EXCEPTIONS))
def test_a_body_raising_a_base_exception_fails_its_attempt(
    name: str, enqueue, deliver, store: JobStore
) -> None:
    # On a pool thread these are the body's own doing (signals reach the main thread only):
    # left to the pool they ended no attempt, and the job stayed running until its lease
    # expired, with no word of why.
    job = enqueue(name)
    sibling = enqueue("noop")
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == BASE_EXCEPTIONS[name][1]
    assert store.get(sibling.id).status is JobStatus.SUCCEEDED
    later = enqueue("noop")
    assert failures(deliver()) == []  # the worker still takes jobs
    assert store.get(later.id).status is JobStatus.SUCCEEDED
