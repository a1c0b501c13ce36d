"""The sweep makes the worker's event source mappings match the paused queues (SPEC §6): a
pause or resume whose own Lambda call failed is put right within a minute. moto's Lambda
keeps the mappings' state as AWS reports it."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from taskmill.db import Database
from taskmill.event_sources import EventSources
from taskmill.flow.pauses import PauseKind, PauseStore
from taskmill.jobs.store import JobStore
from taskmill.queue.sqs import JobQueue
from taskmill.recovery.sweep import Sweeper, SweepLimits
from taskmill.topology import Priority

LIMITS = SweepLimits(batch=100, send_grace_seconds=0)


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def lambda_client(aws: None) -> Any:
    import boto3

    return boto3.client("lambda")


@pytest.fixture
def mappings(lambda_client: Any, job_queue: JobQueue, sqs: Any) -> dict[Priority, str]:
    """A worker function and one mapping per queue, all enabled, as the stack deploys them."""
    import boto3

    role = boto3.client("iam").create_role(
        RoleName="worker", AssumeRolePolicyDocument="{}", Path="/"
    )["Role"]["Arn"]
    lambda_client.create_function(
        FunctionName="worker",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _code()},
    )
    found = {}
    for priority in Priority:
        arn = sqs.get_queue_attributes(
            QueueUrl=job_queue.queue_url(priority.value), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        found[priority] = lambda_client.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="worker", Enabled=True
        )["UUID"]
    return found


def states(lambda_client: Any, mappings: dict[Priority, str]) -> dict[Priority, str]:
    return {
        p: lambda_client.get_event_source_mapping(UUID=mapping)["State"]
        for p, mapping in mappings.items()
    }


def sweeper(db: Database, job_queue: JobQueue, job_registry: Any, sources: EventSources) -> Sweeper:
    return Sweeper(
        JobStore(db),
        job_queue,
        job_registry,
        LIMITS,
        pauses=PauseStore(db),
        event_sources=sources,
    )


def test_a_paused_queue_whose_mapping_stayed_enabled_is_disabled_and_back(
    db, job_queue, job_registry, lambda_client, mappings
) -> None:
    # The pause was recorded but its Lambda call failed: the mapping still runs.
    PauseStore(db).pause(PauseKind.QUEUE, "normal", actor="admin:test")
    sources = EventSources(mappings, client_factory=lambda: lambda_client)
    sweep = sweeper(db, job_queue, job_registry, sources)

    report, _ = sweep.run()
    assert report.mappings_synced == 1
    assert states(lambda_client, mappings) == {
        Priority.HIGH: "Enabled",
        Priority.NORMAL: "Disabled",
        Priority.LOW: "Enabled",
    }
    assert sweep.run()[0].mappings_synced == 0  # nothing left to do

    # A resume whose call failed: the mapping stays disabled until the sweep.
    PauseStore(db).resume(PauseKind.QUEUE, "normal")
    assert sweep.run()[0].mappings_synced == 1
    assert set(states(lambda_client, mappings).values()) == {"Enabled"}


def test_a_paused_job_type_does_not_touch_the_mappings(
    db, job_queue, job_registry, lambda_client, mappings
) -> None:
    PauseStore(db).pause(PauseKind.TYPE, "noop", actor="admin:test")
    sources = EventSources(mappings, client_factory=lambda: lambda_client)
    assert sweeper(db, job_queue, job_registry, sources).run()[0].mappings_synced == 0
    assert set(states(lambda_client, mappings).values()) == {"Enabled"}


def test_lambda_trouble_is_logged_and_the_rest_of_the_sweep_runs(
    db, job_queue, job_registry, lambda_client, mappings
) -> None:
    """A mapping that cannot be read (gone, throttled) does not stop the sweep's other work;
    the next run tries again."""
    PauseStore(db).pause(PauseKind.QUEUE, "low", actor="admin:test")
    lambda_client.delete_event_source_mapping(UUID=mappings[Priority.HIGH])
    sources = EventSources(mappings, client_factory=lambda: lambda_client)
    report, _ = sweeper(db, job_queue, job_registry, sources).run()
    assert report.mappings_synced == 1
    assert lambda_client.get_event_source_mapping(UUID=mappings[Priority.LOW])["State"] == (
        "Disabled"
    )


def test_without_mappings_configured_nothing_is_called(db, job_queue, job_registry) -> None:
    """Locally (no mappings) the sweep never builds a Lambda client."""

    def no_client() -> Any:
        raise AssertionError("no Lambda client without mappings")

    PauseStore(db).pause(PauseKind.QUEUE, "normal", actor="admin:test")
    sources = EventSources({}, client_factory=no_client)
    assert sweeper(db, job_queue, job_registry, sources).run()[0].mappings_synced == 0
