"""Job bodies that misbehave, as a user's own job type might: each ends its job with a
clear outcome and leaves the rest of the batch, and the worker, unharmed."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, Field
from taskmill.jobs.model import JobStatus
from taskmill.jobs.retry import JobFailure
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.settings import JobTypeSettings

from tests.integration.worker.conftest import failures, queue_messages
from tests.support.sqs_rules import enforce_sqs_characters


def raising(error: BaseException) -> Callable[[Any, Any], Any]:
    def body(context: Any, payload: Any) -> Any:
        raise error

    return body


def returning(result: Any) -> Callable[[Any, Any], Any]:
    return lambda context, payload: result


BASE_EXCEPTIONS = {
    "exits": (SystemExit(3), "SystemExit: 3"),
    "interrupts": (KeyboardInterrupt("stop"), "KeyboardInterrupt: stop"),
    "closes": (GeneratorExit("closed"), "GeneratorExit: closed"),
}


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message here")


# Errors whose message Postgres cannot store, or that have none to read: the statement
# recording the failure was refused (or never ran), the handler raised, and the job stayed
# running until its lease expired; the rest of the batch's outcomes were lost with it.
UNRECORDABLE_ERRORS = {
    "nul": (JobFailure("bad\x00byte"), "bad\ufffdbyte"),
    "surrogate": (ValueError("caf\udce9"), "ValueError: caf\ufffd"),
    "unprintable": (
        Unprintable(),
        "Unprintable: (its message could not be read: RuntimeError: no message here)",
    ),
}


class Forgetful(JobFailure):
    """A user's own failure type that forgot `super().__init__`: it has no `retryable`."""

    def __init__(self, code: int) -> None:
        self.code = code


class Undecided(JobFailure):
    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        raise RuntimeError("cannot say")


class Exiting(Exception):
    def __str__(self) -> str:
        raise SystemExit(9)


class Nested(Exception):
    def __str__(self) -> str:
        raise Unprintable()


class Endless(Exception):
    """An error whose message never comes (its __str__ waits for something that never is)."""

    release = threading.Event()

    def __str__(self) -> str:
        Endless.release.wait()
        return "at last"


# Errors the worker itself tripped over while recording them (on its own thread, outside
# the body): the handler raised, the job stayed running until its lease expired, and the
# outcomes of the batch's jobs recorded after it were lost (they stayed running too).
BROKEN_ERRORS = {
    "no-retryable": (Forgetful(5), "5", 1),
    "retryable-raises": (Undecided("gave up"), "gave up", 1),
    "str-exits": (Exiting(), "Exiting: (its message could not be read: SystemExit: 9)", 1),
    "str-raises-unprintable": (
        Nested(),
        "Nested: (its message could not be read: Unprintable)",
        1,
    ),
}

# JSON the encoder writes but Postgres's jsonb refuses, with what `last_error` must name.
UNSTORABLE_RESULTS = {
    "nan": ({"score": math.nan}, "NaN"),
    "infinity": ([1.0, -math.inf], "Infinity"),
    "nul": ({"text": "a\x00b"}, "NUL"),
    "nul-key": ({"a\x00": 1}, "NUL"),
    "surrogate": ({"text": "a\ud800b"}, "surrogate"),
}


# What `context.progress` used to do with these: psycopg's "cannot adapt type 'dict'",
# int()'s "cannot convert float NaN to integer", bytes stored as their hex escape.
JUNK_PROGRESS = {
    "nan": ((math.nan,), "ValueError: progress percent must be a finite number, not nan"),
    "infinity": ((math.inf, "x"), "ValueError: progress percent must be a finite number, not inf"),
    "list": (([50],), "ValueError: progress percent must be a finite number, not [50]"),
    "dict": ((50, {"step": 1}), "ValueError: progress message must be text or None, not dict"),
    "bytes": ((50, b"bytes"), "ValueError: progress message must be text or None, not bytes"),
}


class Measure(BaseModel):
    value: float


class Depth(BaseModel):
    levels: int


class Often(BaseModel):
    fail: bool = False


class Mail(BaseModel):
    sender: str = Field(alias="from")


def reporting(report: tuple[Any, ...]) -> Callable[[Any, Any], Any]:
    return lambda context, payload: context.progress(*report)


@pytest.fixture
def registry() -> JobTypeRegistry:
    registry = build_registry(JobTypeSettings())
    for name, (error, _) in BASE_EXCEPTIONS.items():
        registry.register(name, max_attempts=1)(raising(error))
    for name, (error, _) in UNRECORDABLE_ERRORS.items():
        registry.register(f"raises-{name}", max_attempts=1)(raising(error))
    for name, (result, _) in UNSTORABLE_RESULTS.items():
        registry.register(f"returns-{name}", max_attempts=1)(returning(result))
    for name, (error, _, _) in BROKEN_ERRORS.items():
        registry.register(f"broken-{name}", max_attempts=1)(raising(error))
    registry.register("broken-endless", max_attempts=1, timeout_seconds=1)(raising(Endless()))

    @registry.register("async", max_attempts=1)
    async def asynchronous(context: Any, payload: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        context.progress(50, "half way")
        return {"loop": type(asyncio.get_running_loop()).__name__ != "", "done": True}

    @registry.register("async-fails", max_attempts=1)
    async def asynchronous_failure(context: Any, payload: Any) -> None:
        await asyncio.sleep(0)
        raise JobFailure("gave up asynchronously")

    @registry.register("reports-often", payload=Often, max_attempts=1)
    def reports_often(context: Any, payload: Often) -> None:
        for step in range(1, 10_001):
            context.progress(step / 100, f"item {step}")
        if payload.fail:
            raise JobFailure("stopped after the last item")

    @registry.register("reports-then-works", max_attempts=1)
    def reports_then_works(context: Any, payload: Any) -> None:
        context.progress(10, "downloading")
        context.progress(20, "resizing")  # within the write interval: held back
        ReportsThenWorks.seen.wait(timeout=15)  # minutes of work, no more reports

    registry.register("raises-huge", max_attempts=1)(raising(ValueError("x" * 1_000_000)))

    @registry.register("returns-nested", payload=Depth, max_attempts=3)
    def returns_nested(context: Any, payload: Depth) -> Any:
        result: Any = "bottom [{"
        for _ in range(payload.levels):
            result = [result]
        return result

    # Text that merely looks like a NUL escape is fine.
    registry.register("returns-backslash")(returning({"text": "\\u0000 \\\\u0000"}))

    # What a body running a command line tool often fails with: its coloured output.
    registry.register("raises-terminal", max_attempts=1)(
        raising(JobFailure("\x1b[31mbuild failed\x1b[0m\x01\x7f"))
    )

    for name, (report, _) in JUNK_PROGRESS.items():
        registry.register(f"reports-{name}", max_attempts=1)(reporting(report))
    registry.register("reports-long")(reporting((1e9, "x" * 10_000)))
    registry.register("reports-unstorable")(reporting((-5, "half\x00way \ud800")))

    @registry.register("measure", payload=Measure)
    def measure(context: Any, payload: Measure) -> float:
        return payload.value

    @registry.register("mail", payload=Mail, max_attempts=1)
    def mail(context: Any, payload: Mail) -> dict[str, str]:
        return {"from": payload.sender}

    @registry.register("submits-nan", max_attempts=1)
    def submits_nan(context: Any, payload: Any) -> None:
        context.submit("measure", {"value": math.nan})

    @registry.register("measure-retried", payload=Measure, max_attempts=3, backoff_base_seconds=0)
    def measure_retried(context: Any, payload: Measure) -> float:
        return payload.value

    @registry.register("logs-clashing", max_attempts=1)
    def logs_clashing(context: Any, payload: Any) -> None:
        # Keys the standard library keeps for itself made it raise KeyError ("Attempt to
        # overwrite 'message' in LogRecord"), failing the job over a log line.
        context.logger.info(
            "clashing",
            extra={"message": "mine", "name": "n", "lineno": 7, "extra_name": "kept", "job_id": 1},
        )
        context.logger.warning("where")  # LOGGED_AT

    @registry.register("logs", max_attempts=1)
    def logs(context: Any, payload: Any) -> None:
        # The logger as a user knows it from the standard library.
        context.logger.info("resized %s to %d px", "a.png", 640)
        try:
            raise ValueError("disk full")
        except ValueError:
            context.logger.exception("could not save %s", "a.png")
        context.logger.warning("slow", exc_info=False, extra={"job_id": "spoofed", "step": 2})

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


@pytest.mark.parametrize("name", list(BROKEN_ERRORS))
def test_an_error_the_worker_cannot_read_fails_only_its_own_job(
    name: str, enqueue, deliver, store: JobStore
) -> None:
    before = enqueue("noop")
    job = enqueue(f"broken-{name}")
    after = enqueue("raises-nul")  # a failure recorded after this one
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert (failed.status, failed.attempts, failed.last_error) == (
        JobStatus.FAILED,
        BROKEN_ERRORS[name][2],
        BROKEN_ERRORS[name][1],
    )
    assert store.get(before.id).status is JobStatus.SUCCEEDED
    assert store.get(after.id).status is JobStatus.FAILED
    later = enqueue("noop")
    assert failures(deliver()) == []  # the worker still takes jobs
    assert store.get(later.id).status is JobStatus.SUCCEEDED


def test_an_error_whose_message_never_comes_is_the_bodys_timeout(
    enqueue, deliver, store: JobStore
) -> None:
    # Its message was read by the thread recording the batch, which waited for ever.
    job, sibling = enqueue("broken-endless"), enqueue("noop")
    try:
        assert failures(deliver()) == []
        failed = store.get(job.id)
        assert (failed.status, failed.last_error) == (JobStatus.FAILED, "timed out after 1 s")
        assert store.get(sibling.id).status is JobStatus.SUCCEEDED
    finally:
        Endless.release.set()


@pytest.mark.parametrize("fail", [False, True])
def test_a_body_reporting_progress_in_a_tight_loop_costs_few_writes(
    fail: bool, enqueue, deliver, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each of its 10,000 reports was an UPDATE of the job's row (seconds of the database's
    # time on the connection the batch shares, and WAL for every one).
    writes = []
    original = JobStore.set_progress

    def counted(self: JobStore, *args: Any) -> Any:
        writes.append(args)
        return original(self, *args)

    monkeypatch.setattr(JobStore, "set_progress", counted)
    job = enqueue("reports-often", {"fail": fail} if fail else {})
    assert failures(deliver()) == []
    done = store.get(job.id)
    assert len(writes) < 100
    # The last report is kept all the same.
    assert done.progress_message == "item 10000"
    assert (done.status, done.progress) == (
        (JobStatus.FAILED, 100) if fail else (JobStatus.SUCCEEDED, 100)
    )


class ReportsThenWorks:
    seen = threading.Event()


def test_a_held_back_progress_report_is_written_while_the_body_still_works(
    enqueue, deliver, store: JobStore
) -> None:
    """The write interval held the second of two quick reports until the body ended, so a
    body that then worked for minutes showed its first report all that time."""
    job = enqueue("reports-then-works")
    shown: list[str | None] = []

    def watch() -> None:
        watcher = JobStore(store._db)
        for _ in range(100):
            shown.append(watcher.get(job.id).progress_message)
            if shown[-1] == "resizing":
                break
            threading.Event().wait(0.1)
        ReportsThenWorks.seen.set()

    ReportsThenWorks.seen.clear()
    threading.Thread(target=watch).start()
    assert failures(deliver()) == []
    assert shown[-1] == "resizing"  # seen while the body was still at work
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_a_huge_error_is_logged_as_it_is_kept(
    enqueue, deliver, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The job kept 4,000 characters of it, but the worker's log line carried the whole
    # megabyte: past CloudWatch's 256 KB per event, a structured line cut in two.
    job = enqueue("raises-huge")
    with caplog.at_level(logging.WARNING, logger="taskmill.worker"):
        assert failures(deliver()) == []
    failed = store.get(job.id)
    assert failed.last_error is not None
    assert failed.last_error.startswith("ValueError: xxx")
    assert len(failed.last_error) == 4000
    [line] = [r for r in caplog.records if r.getMessage() == "job attempt failed"]
    assert line.error == failed.last_error  # type: ignore[attr-defined]


def test_a_result_nested_deeper_than_the_api_answers_fails_its_job(
    enqueue, deliver, store: JobStore
) -> None:
    # Stored, it made GET /v1/jobs/{id}, and every page of GET /v1/jobs holding it, answer
    # 500 for ever: the API's serializer gives up at 255 levels.
    deep, fits = (
        enqueue("returns-nested", {"levels": 300}),
        enqueue("returns-nested", {"levels": 64}),
    )
    assert failures(deliver()) == []
    failed = store.get(deep.id)
    assert (failed.status, failed.attempts, failed.last_error) == (
        JobStatus.FAILED,
        1,  # the same body would return the same again
        "the result cannot be stored as JSON: it is nested deeper than 64 levels",
    )
    done = store.get(fits.id)
    assert done.status is JobStatus.SUCCEEDED
    assert json.dumps(done.result).count("[") == 64 + 1  # the bottom string's own


def test_an_async_body_is_awaited(enqueue, deliver, store: JobStore) -> None:
    # Its coroutine was taken for the result: "the result cannot be stored as JSON: Object of
    # type coroutine is not JSON serializable", on every attempt, and the body never ran.
    done, failed = enqueue("async"), enqueue("async-fails")
    assert failures(deliver()) == []
    job = store.get(done.id)
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"loop": True, "done": True})
    job = store.get(failed.id)
    assert (job.status, job.last_error) == (JobStatus.FAILED, "gave up asynchronously")


@pytest.mark.parametrize("name", list(UNSTORABLE_RESULTS))
def test_a_result_postgres_cannot_store_fails_only_its_own_job(
    name: str, enqueue, deliver, store: JobStore
) -> None:
    # Such a result used to reach the batch's one success statement, which Postgres refused:
    # the handler raised, and every job of the batch stayed running until its lease expired.
    job = enqueue(f"returns-{name}")
    sibling = enqueue("noop")
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error is not None
    assert failed.last_error.startswith("the result cannot be stored as JSON")
    assert UNSTORABLE_RESULTS[name][1] in failed.last_error
    assert store.get(sibling.id).status is JobStatus.SUCCEEDED


def test_a_result_with_backslashes_is_stored_as_it_is(enqueue, deliver, store: JobStore) -> None:
    job = enqueue("returns-backslash")
    assert failures(deliver()) == []
    done = store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == {"text": "\\u0000 \\\\u0000"}


def test_a_body_logs_as_with_the_standard_logger(
    enqueue, deliver, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Arguments and exc_info used to raise TypeError in the body, failing the job.
    job = enqueue("logs")
    with caplog.at_level(logging.INFO, logger="taskmill.worker"):
        assert failures(deliver()) == []
    assert store.get(job.id).status is JobStatus.SUCCEEDED
    lines = [r for r in caplog.records if getattr(r, "job_type", None) == "logs"]
    assert [r.getMessage() for r in lines] == [
        "resized a.png to 640 px",
        "could not save a.png",
        "slow",
    ]
    assert lines[1].exc_info is not None
    assert "disk full" in str(lines[1].exc_info[1])
    # Every line names its job, whatever the body passes as `extra`.
    assert {getattr(r, "job_id", None) for r in lines} == {str(job.id)}
    assert getattr(lines[2], "step", None) == 2


def test_a_stored_payload_its_model_no_longer_takes_fails_once_naming_the_field(
    enqueue, deliver, store: JobStore, db
) -> None:
    job = enqueue("measure-retried", {"value": 1.5})
    # As if the type's model had changed since the job was created (a field renamed).
    db.execute("UPDATE jobs SET payload = '{\"amount\": 1.5}' WHERE id = %s", (job.id,))
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)  # not retried: it cannot pass
    assert failed.last_error is not None
    assert "measure-retried" in failed.last_error
    assert "value" in failed.last_error
    assert "Field required" in failed.last_error


def test_a_body_log_line_never_fails_its_job_and_points_at_the_body(
    enqueue, deliver, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    job = enqueue("logs-clashing")
    with caplog.at_level(logging.INFO, logger="taskmill.worker"):
        assert failures(deliver()) == []
    assert store.get(job.id).status is JobStatus.SUCCEEDED
    clashing, where = [r for r in caplog.records if getattr(r, "job_type", None) == "logs-clashing"]
    # The clashing keys are kept under an `extra_` prefix; one already taken gets another.
    assert clashing.getMessage() == "clashing"
    assert (clashing.extra_message, clashing.extra_lineno) == ("mine", 7)  # type: ignore[attr-defined]
    assert (clashing.extra_name, clashing.extra_extra_name) == ("kept", "n")  # type: ignore[attr-defined]
    assert clashing.job_id == str(job.id)  # type: ignore[attr-defined]
    # The line is the body's, not the platform's wrapper's.
    assert (where.pathname, where.funcName) == (__file__, "logs_clashing")
    source = open(__file__).read().splitlines()  # noqa: SIM115
    assert source[where.lineno - 1].endswith("# LOGGED_AT")


@pytest.mark.parametrize("name", list(JUNK_PROGRESS))
def test_a_junk_progress_report_fails_the_attempt_saying_so(
    name: str, enqueue, deliver, store: JobStore
) -> None:
    job = enqueue(f"reports-{name}")
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert (failed.status, failed.last_error, failed.progress_message) == (
        JobStatus.FAILED,
        JUNK_PROGRESS[name][1],
        None,
    )


def test_a_progress_message_is_kept_as_the_api_keeps_one(enqueue, deliver, store: JobStore) -> None:
    # As `POST /v1/jobs/{id}/progress` takes it: at most 500 characters (a 10 MB message
    # went into the row and every poll of it), characters Postgres cannot store replaced
    # (a NUL failed the body with "a value cannot be stored"); the percent clamped.
    long, unstorable = enqueue("reports-long"), enqueue("reports-unstorable")
    assert failures(deliver()) == []
    assert (store.get(long.id).status, store.get(long.id).progress_message) == (
        JobStatus.SUCCEEDED,
        "x" * 500,
    )
    assert (store.get(unstorable.id).status, store.get(unstorable.id).progress_message) == (
        JobStatus.SUCCEEDED,
        "half\ufffdway \ufffd",
    )


def test_a_child_payload_that_json_cannot_carry_is_refused_at_submit(
    enqueue, deliver, store: JobStore, db
) -> None:
    # pydantic takes NaN for a float and writes it to JSON as null: the child used to be
    # created with {"value": null}, which its own model refuses when it runs.
    parent = enqueue("submits-nan")
    assert failures(deliver()) == []
    failed = store.get(parent.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error is not None
    assert failed.last_error.startswith("child job refused: payload for job type 'measure'")
    assert "NaN" in failed.last_error
    assert db.execute("SELECT id FROM jobs WHERE parent_id = %s", (parent.id,)) == []


def test_a_payload_model_with_aliases_runs(enqueue, deliver, store: JobStore) -> None:
    # The payload was stored by field name ({"sender": ...}), which the model, reading
    # "from", refused on every attempt: such a type's jobs were accepted and never ran.
    job = enqueue("mail", {"from": "ann@example.com"})
    assert job.payload == {"from": "ann@example.com"}
    assert failures(deliver()) == []
    done = store.get(job.id)
    assert (done.status, done.result) == (JobStatus.SUCCEEDED, {"from": "ann@example.com"})


@pytest.mark.parametrize("name", list(UNRECORDABLE_ERRORS))
def test_an_error_message_postgres_cannot_store_is_recorded_legibly(
    name: str, enqueue, deliver, store: JobStore, sqs, job_queue
) -> None:
    job = enqueue(f"raises-{name}")
    after = enqueue("raises-nul")  # a second failure, recorded after the first
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert (failed.status, failed.last_error) == (JobStatus.FAILED, UNRECORDABLE_ERRORS[name][1])
    assert store.get(after.id).status is JobStatus.FAILED
    dead = queue_messages(sqs, job_queue.dlq_url("normal"))
    assert {json.loads(m["Body"])["job_id"] for m in dead} == {str(job.id), str(after.id)}


def test_a_dead_letter_carries_an_error_sqs_would_refuse_legibly(
    enqueue, deliver, store: JobStore, sqs, job_queue
) -> None:
    """SQS refuses control characters in a message attribute (moto does not): the dead
    letter's `last_error` copy has them replaced, so the failed job has its DLQ message."""
    enforce_sqs_characters(sqs)
    job = enqueue("raises-terminal")
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == "\x1b[31mbuild failed\x1b[0m\x01\x7f"  # the job keeps it whole
    [dead] = queue_messages(sqs, job_queue.dlq_url("normal"))
    assert json.loads(dead["Body"])["job_id"] == str(job.id)
    shown = dead["MessageAttributes"]["last_error"]["StringValue"]
    assert shown == "\ufffd[31mbuild failed\ufffd[0m\ufffd\x7f"
