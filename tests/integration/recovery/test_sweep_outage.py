"""What an operator reads while the database is down: one warning line per failed sweep run
(no traceback), one line when it runs again; a real bug keeps its traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from taskmill.db import Database
from taskmill.errors import InvalidInput
from taskmill.jobs.store import JobStore
from taskmill.observability import Figure
from taskmill.recovery.outage import SweepOutage
from taskmill.recovery.sweep import Sweeper, SweepLimits

import functions.retry.sweep as recovery
from tests.support.factories import create_job, make_user
from tests.support.lambda_events import FakeLambdaContext

# Nothing listens on port 1: connecting is refused at once, as with a stopped instance.
DOWN = "postgresql://taskmill@127.0.0.1:1/taskmill"


class Sink:
    def __init__(self) -> None:
        self.emitted: list[tuple[dict[str, str], list[Figure]]] = []

    def emit(self, dimensions: dict[str, str], figures: list[Figure]) -> None:
        self.emitted.append((dimensions, figures))

    def names(self) -> list[str]:
        return [name for _, figures in self.emitted for name, _, _ in figures]


def sweeper_on(db: Database, job_queue: Any, job_registry: Any) -> Sweeper:
    return Sweeper(JobStore(db), job_queue, job_registry, SweepLimits(send_grace_seconds=0))


def test_an_outage_logs_one_line_per_run_and_one_when_it_ends(
    database_url: str, job_queue: Any, job_registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.recovery")
    outage = SweepOutage(logger)
    down = Database(DOWN, connect_timeout=1)
    up = Database(database_url)
    try:
        create_job(JobStore(up), make_user(up))  # never sent: the sweep's work once it runs
        sink = Sink()
        with caplog.at_level(logging.INFO, logger="test.recovery"):
            for _ in range(3):
                result = recovery.sweep(
                    lambda: sweeper_on(down, job_queue, job_registry), outage, sink
                )
                assert result["failed"] == "dependency_unavailable"
            failures = [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records]
            assert [level for level, _, _ in failures] == [logging.WARNING] * 3
            assert all(exc_info is None for _, _, exc_info in failures)  # no traceback
            assert "the database is unreachable (3 failed runs in a row)" in failures[2][1]
            assert sink.names() == ["Sweep_failed_runs"] * 3

            caplog.clear()
            result = recovery.sweep(lambda: sweeper_on(up, job_queue, job_registry), outage, sink)
            assert result["resent"] == 1
            [back] = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert back.getMessage() == "recovery sweep ran again after 3 failed runs"

            caplog.clear()
            recovery.sweep(lambda: sweeper_on(up, job_queue, job_registry), outage, sink)
            assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        down.close()
        up.close()


def test_a_bug_in_the_sweep_still_fails_the_run_with_its_traceback(
    database_url: str, job_queue: Any, job_registry: Any
) -> None:
    outage = SweepOutage(logging.getLogger("test.recovery"))
    db = Database(database_url)

    def broken() -> Sweeper:
        sweeper = sweeper_on(db, job_queue, job_registry)
        sweeper.limits = SweepLimits(batch=-1)  # LIMIT -1: an error of ours, not an outage
        return sweeper

    try:
        with pytest.raises(InvalidInput) as raised:
            recovery.sweep(broken, outage, Sink())
        assert raised.value.__traceback__ is not None
        assert outage.failed_runs == 0
    finally:
        db.close()


def test_the_lambda_logs_one_warning_per_run_without_a_traceback(
    queue_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The deployed handler, its settings from the environment, the database down."""
    monkeypatch.setattr(recovery, "_sweeper", None)
    monkeypatch.setattr(recovery, "_outage", SweepOutage(recovery.logger))
    monkeypatch.setenv("DATABASE_URL", DOWN)
    for name, value in queue_env.items():
        monkeypatch.setenv(name, value)
    context: Any = FakeLambdaContext()
    capsys.readouterr()
    for _ in range(2):
        result = recovery.handler({"source": "aws.events"}, context)
        assert result["failed"] == "dependency_unavailable"
    logged = [r for r in caplog.records if r.name == "taskmill-recovery"]
    assert [r.levelname for r in logged] == ["WARNING", "WARNING"]
    assert all(r.exc_info is None and r.stack_info is None for r in logged)
    assert "2 failed runs in a row" in logged[1].getMessage()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line["Sweep_failed_runs"] for line in emf] == [[1.0], [1.0]]
    assert all(line["service"] == "taskmill-recovery" for line in emf)
