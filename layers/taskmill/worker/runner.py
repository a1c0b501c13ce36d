"""One SQS batch: parse, claim (one statement), run, record the outcomes.

SQL per batch of successful jobs: claim and complete, two statements whatever the batch
size (one more, the admission claim's key locks, when a limit applies to the batch;
releasing dependents only when a finished job has some). Failures, cancellations and
redrives add a statement each, which is fine: they are the exception; so does a success
with child jobs (its own transaction: the success and the children are committed
together). Outcomes are recorded by `taskmill.lifecycle.outcomes`, like every other
outcome of the platform.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from taskmill.errors import DependencyUnavailable, QueueUnavailable
from taskmill.flow.holds import hold_seconds
from taskmill.flow.keys import key_family
from taskmill.jobs.model import MAX_RESULT_BYTES, Finished, Job, JobStatus, result_bytes
from taskmill.jobs.retry import JobFailure, PermanentJobFailure, is_retryable
from taskmill.jobs.store import LEASE_SLACK_SECONDS, Hold, JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.outcomes import (
    LOST_LEASE_CAP,
    ChildJobsNotCreated,
    HeldMessage,
    Outcomes,
    Success,
    describe,
)
from taskmill.lifecycle.sending import send_pending
from taskmill.observability import MetricBatch
from taskmill.queue.messages import JobMessage, MalformedMessage, parse_message
from taskmill.queue.sqs import JobQueue
from taskmill.settings import DEFAULT_MAX_PAYLOAD_BYTES
from taskmill.topology import Priority
from taskmill.worker.context import JobContext
from taskmill.worker.results import check_result
from taskmill.worker.services import PlatformServices

ACTOR = "worker"
MAX_PARALLEL_BODIES = 10  # Lambda's SQS batch size for standard queues tops out here per poll
# A claim's lease, renewed while the body runs: if this process dies, the sweep recovers the
# job within about a lease and a sweep interval, whatever the job's own timeout.
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 20.0
# The longest the batch waits between looks at its bodies (timeouts, the deadline).
POLL_SECONDS = 0.5
# Bodies still waiting this long after their batch began (the ones ahead are slow: I/O)
# each get a thread of their own; until then one thread runs them in turn.
RELAY_SECONDS = 0.002


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    ELSEWHERE = "elsewhere"


@dataclass(frozen=True)
class Delivery:
    """One record of an SQS event, as Lambda's event source mapping delivers it."""

    message_id: str
    receipt_handle: str
    body: str
    message_attributes: dict[str, Any]
    source_arn: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Delivery:
        return cls(
            message_id=record["messageId"],
            receipt_handle=record["receiptHandle"],
            body=record.get("body") or "",
            message_attributes=record.get("messageAttributes") or {},
            source_arn=str(record.get("eventSourceARN", "")),
        )


@dataclass
class Attempt:
    delivery: Delivery
    message: HeldMessage
    job: Job
    context: JobContext
    outcome: Outcome | None = None
    result: Any = None
    error: BaseException | None = None
    future: Future[None] | None = None
    started: float | None = None  # when the body began to run (set on its thread)
    never_started: bool = False  # stopped while still waiting for a thread


class _Relay:
    """A batch's bodies waiting for a thread: taken in turn by one thread, or all at once
    to be given a thread each."""

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self._waiting = deque(attempts)
        self._lock = threading.Lock()

    def next(self) -> Attempt | None:
        with self._lock:
            return self._waiting.popleft() if self._waiting else None

    def take_all(self) -> list[Attempt]:
        with self._lock:
            taken = list(self._waiting)
            self._waiting.clear()
            return taken

    def waiting(self) -> bool:
        return bool(self._waiting)


@dataclass
class BatchReport:
    failed_message_ids: list[str] = field(default_factory=list)
    outcomes: dict[UUID, Outcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # held back by a pause or a limit
    malformed: list[str] = field(default_factory=list)
    metrics: MetricBatch = field(default_factory=MetricBatch)


class Worker:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        registry: JobTypeRegistry,
        services: PlatformServices,
        *,
        logger: logging.Logger | Any = None,
        clock: Callable[[], float] = time.monotonic,
        deadline_margin_seconds: float = 5.0,
        outcomes: Outcomes | None = None,
        lease_seconds: float = LEASE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        max_parallel_bodies: int = MAX_PARALLEL_BODIES,
        owner_concurrency: int | None = None,
        unfinished_limit: int | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        """`unfinished_limit`: the owner's unfinished-jobs quota, which the child jobs a
        body submits count against (as the API's creates do); `max_payload_bytes`: the
        API's payload limit, which a child's payload is held to."""
        self.store = store
        self.queue = queue
        self.registry = registry
        self.services = services
        self.logger = logger or logging.getLogger("taskmill.worker")
        self.outcomes = outcomes or Outcomes(store, queue, registry, logger=self.logger)
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.max_parallel_bodies = max_parallel_bodies
        # The environment's default concurrency of every owner (SPEC §6, fairness).
        self.owner_concurrency = owner_concurrency
        # Whether the last batch had limited jobs: if so this one goes straight to the
        # admission claim (a hint for speed only; the claim finds limits either way).
        self._expect_limits = False
        self.unfinished_limit = unfinished_limit
        self.max_payload_bytes = max_payload_bytes
        self._invocation_end = 0.0
        self.clock = clock
        self.margin = deadline_margin_seconds
        self._pool: ThreadPoolExecutor | None = None

    def _threads(self) -> ThreadPoolExecutor:
        # Reused across batches: starting ten threads per batch costs more than a noop job.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.max_parallel_bodies, thread_name_prefix="job"
            )
        return self._pool

    def _abandon_threads(self) -> None:
        # A body that ignored its timeout keeps its thread; later batches get a fresh pool
        # instead of queueing behind it. The stuck thread ends with the container.
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=False)
            self._pool = None

    # ---- the batch --------------------------------------------------------------------

    def process(self, records: Sequence[dict[str, Any]], remaining_seconds: float) -> BatchReport:
        """Handle one SQS batch. Returns the message ids to report as `batchItemFailures`."""
        report = BatchReport()
        self._invocation_end = self.clock() + remaining_seconds
        deadline = self._invocation_end - self.margin
        messages = self._parse(records, report)
        self._redrive_moved_back(messages)
        claim = self.store.claim_batch(
            [m.job_id for _, _, m in messages],
            lease_seconds=self._lease(),
            owner_concurrency=self.owner_concurrency,
            expect_limits=self._expect_limits,
            queues=[priority.value for _, priority, _ in messages],
        )
        self._expect_limits = claim.limited
        claimed = {job.id: job for job in claim.claimed}
        held = {hold.job.id: hold for hold in claim.held}
        attempts = []
        holding: list[tuple[Delivery, Hold]] = []
        for delivery, priority, message in messages:
            job = claimed.pop(message.job_id, None)
            if job is None:
                hold = held.pop(message.job_id, None)
                if hold is not None:
                    holding.append((delivery, hold))
                    continue
                # Running elsewhere, finished, cancelled or deleted, or moved to another
                # priority (its message there runs it): a duplicate or late delivery.
                # Acknowledge it so it is not delivered again.
                report.skipped.append(delivery.message_id)
                continue
            held_message = HeldMessage(priority, delivery.receipt_handle)
            attempts.append(self._prepare(delivery, held_message, job, deadline))
        self._hold(holding, report)
        self._run(attempts, deadline)
        self._record(attempts, report)
        return report

    def _parse(
        self, records: Sequence[dict[str, Any]], report: BatchReport
    ) -> list[tuple[Delivery, Priority, JobMessage]]:
        parsed = []
        for record in records:
            delivery = Delivery.from_record(record)
            priority = self.queue.priority_of_source(delivery.source_arn)
            if priority is None:
                # Not one of this deployment's queues (a miswired event source): leave the
                # message alone; its own queue's redrive policy deals with it.
                self.logger.error(
                    "message from an unknown queue left on it",
                    extra={"message_id": delivery.message_id, "source": delivery.source_arn},
                )
                report.failed_message_ids.append(delivery.message_id)
                continue
            try:
                message = parse_message(delivery.body, delivery.message_attributes)
            except MalformedMessage as exc:
                self.logger.error(
                    "malformed message sent to the DLQ",
                    extra={"message_id": delivery.message_id, "reason": str(exc)},
                )
                try:
                    self.queue.dead_letter_raw(priority, delivery.body, f"malformed: {exc}")
                except QueueUnavailable:
                    # Leave it on the queue: SQS's maxReceiveCount moves it to the DLQ.
                    report.failed_message_ids.append(delivery.message_id)
                    continue
                report.malformed.append(delivery.message_id)
                continue
            parsed.append((delivery, priority, message))
        return parsed

    def _redrive_moved_back(
        self, messages: Sequence[tuple[Delivery, Priority, JobMessage]]
    ) -> None:
        """A message the platform dead-lettered is back on its source queue: someone moved
        it (the console's "Start DLQ redrive" changes nothing in Postgres). Give its job a
        fresh attempt budget; the expected redrive count makes a duplicate a no-op."""
        by_count: dict[int, list[UUID]] = {}
        moved_to: dict[UUID, Priority] = {}
        for _, priority, message in messages:
            if message.dead_lettered and message.redrive_count is not None:
                by_count.setdefault(message.redrive_count, []).append(message.job_id)
                moved_to[message.job_id] = priority
        for count, job_ids in by_count.items():
            redriven = self.outcomes.redrive(
                self.store.get_many(job_ids),
                actor="dlq-redrive",
                resend=False,
                expected_redrive_count=count,
            )
            for job in redriven:
                self.logger.info("job redriven from its DLQ", extra={"job_id": str(job.id)})
            # Moved to another priority's queue: the claim refuses a message off the job's
            # own queue (a PATCHed priority), so the moved one cannot run it; send it one.
            astray = [job.id for job in redriven if job.priority is not moved_to[job.id]]
            if astray:
                send_pending(self.store, self.queue, self.store.mark_to_send(astray))

    def _hold(self, holding: Sequence[tuple[Delivery, Hold]], report: BatchReport) -> None:
        """Jobs a pause or a limit held back: queued still, their attempt unspent. Each gets
        a new message delayed by its hold (`taskmill.flow.holds`) and its delivery is
        acknowledged; if SQS refuses, the delivery comes back after its visibility timeout."""
        if not holding:
            return
        delays = {
            hold.job.id: hold_seconds(hold.reason, hold.ahead, hold.period) for _, hold in holding
        }
        sent = set(self.queue.send([hold.job for _, hold in holding], delays=delays).sent)
        for delivery, hold in holding:
            if hold.job.id in sent:
                report.held.append(delivery.message_id)
            else:
                report.failed_message_ids.append(delivery.message_id)
            report.metrics.add("JobsHeldBack", reason=hold.reason, key=key_family(hold.key))
            self.logger.info(
                "job held back",
                extra={
                    "job_id": str(hold.job.id),
                    "reason": hold.reason,
                    "limit_key": hold.key,
                    "delay_seconds": delays[hold.job.id],
                },
            )

    # ---- running ------------------------------------------------------------------------

    def _prepare(
        self, delivery: Delivery, message: HeldMessage, job: Job, deadline: float
    ) -> Attempt:
        context = JobContext(
            job,
            self.store,
            self.services,
            deadline=deadline,
            logger=self.logger,
            registry=self.registry,
            clock=self.clock,
            max_payload_bytes=self.max_payload_bytes,
        )
        return Attempt(delivery, message, job, context)

    def _lease(self) -> float:
        """A lease never outlives the invocation by more than the slack: a job whose
        worker is gone is recovered soon, whatever its timeout."""
        left = self._invocation_end - self.clock() + LEASE_SLACK_SECONDS
        return max(1.0, min(self.lease_seconds, left))

    def _run(self, attempts: Sequence[Attempt], deadline: float) -> None:
        # Bodies run on pool threads so a slow one can be timed out and the batch still
        # finishes; the bodies of one batch run side by side (they are mostly I/O). A body's
        # timeout counts from when it starts: one waiting for a free thread (the platform
        # slowed down) has not used any of it.
        #
        # One thread takes the bodies in turn: handing each to a thread of its own costs
        # more than a quick body (a wake-up each, the GIL passed around). Bodies still
        # waiting RELAY_SECONDS after the batch began get a thread each, so slow ones still
        # run side by side, that much later if the body ahead waits on I/O. One ahead that
        # computes holds the GIL, and the hand-off waits a switch interval or a few for it
        # (tens of ms), as each thread's start did when every body had its own.
        if not attempts:
            return  # every job of the batch held back or already done elsewhere
        pool = self._threads()
        for attempt in attempts:
            attempt.future = Future()
        relay = _Relay(attempts)
        pool.submit(self._run_in_turn, relay, deadline)
        running = list(attempts)
        now = self.clock()
        spill_at = now + RELAY_SECONDS
        next_beat = now + self.heartbeat_seconds
        abandoned = False
        while running:
            now = self.clock()
            if now >= spill_at:
                for attempt in relay.take_all():
                    pool.submit(self._run_attempt, attempt, deadline)
            for attempt in list(running):
                assert attempt.future is not None
                started = attempt.started
                timed_out = started is not None and now >= started + attempt.job.timeout_seconds
                if attempt.future.done():
                    running.remove(attempt)
                elif timed_out or now >= deadline:
                    running.remove(attempt)
                    abandoned = True
                    self._stop(attempt, timed_out)
            if not running:
                break
            for attempt in running:
                attempt.context.flush_progress(due_only=True)
            if now >= next_beat:
                self._heartbeat(running)
                next_beat = now + self.heartbeat_seconds
            # Wake when every body is done (the usual case: one wait per batch), or to look
            # at timeouts, the deadline and the heartbeat.
            wake = min(POLL_SECONDS, next_beat - now, deadline - now)
            if relay.waiting():
                wake = min(wake, spill_at - now)
            wait(
                [a.future for a in running if a.future is not None],
                timeout=max(0.0, wake),
                return_when=ALL_COMPLETED,
            )
        if abandoned:
            self._abandon_threads()

    def _stop(self, attempt: Attempt, timed_out: bool) -> None:
        """Python cannot kill a thread: the body is told to stop, its later reports are
        dropped (its lease is gone) and it dies with the container."""
        attempt.context.stop()
        if attempt.outcome is not None:
            return
        if timed_out:
            attempt.outcome = Outcome.FAILED
            attempt.error = JobFailure(f"timed out after {attempt.job.timeout_seconds} s")
        elif attempt.future is not None and attempt.future.cancel():
            # Still waiting for a free thread (the batch's other bodies held them all), and
            # now it never starts: it used none of its time, so the release is not counted.
            attempt.never_started = True
            attempt.outcome = Outcome.RELEASED
        elif attempt.job.lost_leases >= LOST_LEASE_CAP:
            # Refunded as often as a lost lease is: a job that needs longer than a whole
            # invocation would otherwise be released at every deadline, for ever.
            attempt.outcome = Outcome.FAILED
            attempt.error = JobFailure(
                f"timed out: a worker invocation ended before the job could finish, "
                f"{attempt.job.lost_leases + 1} times; its timeout "
                f"({attempt.job.timeout_seconds} s) is longer than a worker invocation can run "
                "it (give it a shorter timeout, or run it on an external worker)"
            )
        else:
            # The invocation ends before the job could: not the job's fault (the first
            # `LOST_LEASE_CAP` times; counted in `lost_leases`).
            attempt.outcome = Outcome.RELEASED

    def _heartbeat(self, running: Sequence[Attempt]) -> None:
        leases = [(a.job.id, a.job.lease_token) for a in running if a.job.lease_token]
        try:
            self.store.extend_leases(leases, seconds=self._lease())
        except DependencyUnavailable:
            # Postgres is in trouble: if the lease lapses the sweep recovers the job, and a
            # lost lease does not count against its attempts.
            self.logger.warning("could not renew the leases of running jobs")

    def _run_in_turn(self, relay: _Relay, deadline: float) -> None:
        while (attempt := relay.next()) is not None:
            self._run_attempt(attempt, deadline)

    def _run_attempt(self, attempt: Attempt, deadline: float) -> None:
        future = attempt.future
        assert future is not None
        if not future.set_running_or_notify_cancel():
            return  # stopped before it started (the deadline came first)
        try:
            self._run_body(attempt, deadline)
        except BaseException as exc:  # noqa: BLE001 - as a pool's own task would keep it
            future.set_exception(exc)
        else:
            future.set_result(None)

    def _run_body(self, attempt: Attempt, deadline: float) -> None:
        job = attempt.job
        attempt.started = started = self.clock()
        attempt.context.begin(min(deadline, started + job.timeout_seconds))
        try:
            job_type = self.registry.get(job.type)
            if job_type.function is None:
                raise PermanentJobFailure(f"job type {job.type!r} is not run by this worker")
            payload = job_type.parse_payload(job.payload)
            result = job_type.function(attempt.context, payload)
            if isinstance(result, Coroutine):
                # An `async def` body: run to its end in an event loop of this thread's own.
                # Imported only then, so the worker's cold start does not pay for asyncio.
                import asyncio

                result = asyncio.run(result)
            check_result(result)  # stored as JSON: refuse what Postgres cannot keep
            size = result_bytes(result)
            if size > MAX_RESULT_BYTES:
                raise PermanentJobFailure(
                    f"the result is {size} bytes as JSON; the limit is {MAX_RESULT_BYTES}"
                )
        # BaseException too: a SystemExit, KeyboardInterrupt or GeneratorExit here is the
        # body's own (signals reach the main thread only, never a pool thread). Left to the
        # pool it would end no attempt, and the job would stay running until its lease expired.
        except BaseException as exc:  # noqa: BLE001 - a job body's error is the job's outcome
            # Read here, on the body's thread and in its time: a body's own error class may
            # fail to say what it is (a `__str__` that raises or never returns), which must
            # not stop the worker's thread that records the whole batch.
            error = JobFailure(describe(exc), retryable=is_retryable(exc))
            attempt.context.flush_progress()
            if attempt.outcome is None:
                attempt.error = error
                attempt.outcome = Outcome.FAILED
            return
        # The body's last progress report, if the write interval held it back (dropped if
        # the attempt was stopped meanwhile), before its outcome is recorded.
        attempt.context.flush_progress()
        if attempt.outcome is not None:
            return  # timed out or released meanwhile; its late result is discarded
        if attempt.context.external_ref is not None:
            attempt.outcome = Outcome.ELSEWHERE
        elif attempt.context.cancel_observed:
            attempt.outcome = Outcome.CANCELLED
        else:
            attempt.result = result
            attempt.outcome = Outcome.SUCCEEDED

    # ---- recording ----------------------------------------------------------------------

    def _record(self, attempts: Sequence[Attempt], report: BatchReport) -> None:
        # Every success first, in one statement: the jobs whose bodies ran well are the ones
        # most worth keeping if a later statement fails. Then the exceptions, one statement
        # each; then what follows the successes (dependents, webhooks: SQS calls).
        finished: list[Job | Finished] = []
        finished.extend(
            self.outcomes.succeeded_in_batch(
                [
                    Success(a.job.id, a.job.lease_token, a.result)
                    for a in attempts
                    if a.outcome is Outcome.SUCCEEDED
                    and a.job.lease_token is not None
                    and not a.context.children
                ],
                actor=ACTOR,
            )
        )
        finished.extend(self._record_parents(attempts))
        finished_ids = {job.id for job in finished}
        for attempt in attempts:
            job = attempt.job
            if attempt.outcome is Outcome.FAILED:
                self._record_failure(attempt, report)
            elif attempt.outcome is Outcome.CANCELLED:
                self.outcomes.cancelled(job, actor=ACTOR)
            elif attempt.outcome is Outcome.RELEASED:
                self.outcomes.released(
                    job,
                    "the worker reached its deadline before a thread was free to start it"
                    if attempt.never_started
                    else "the worker reached its deadline",
                    actor=ACTOR,
                    message=attempt.message,
                    counted=not attempt.never_started,
                )
                report.failed_message_ids.append(attempt.delivery.message_id)
        self.outcomes.follow_up(finished)
        for attempt in attempts:
            outcome = attempt.outcome
            if outcome is Outcome.SUCCEEDED and attempt.job.id not in finished_ids:
                outcome = None  # its lease was recovered meanwhile: the recovery owns it
            if outcome is not None:
                report.outcomes[attempt.job.id] = outcome
            self._measure(attempt, outcome, report.metrics)

    def _record_parents(self, attempts: Sequence[Attempt]) -> list[Job]:
        """Successes that submitted child jobs, each in its own transaction with them. One
        whose children cannot be created becomes a failed attempt (recorded with the others)."""
        finished = []
        for attempt in attempts:
            if attempt.outcome is not Outcome.SUCCEEDED or not attempt.context.children:
                continue
            try:
                job = self.outcomes.succeeded_with_children(
                    attempt.job,
                    attempt.result,
                    attempt.context.children.specs,
                    actor=ACTOR,
                    unfinished_limit=self.unfinished_limit,
                )
            except ChildJobsNotCreated as exc:
                attempt.outcome, attempt.error = Outcome.FAILED, exc
                continue
            if job is not None:
                finished.append(job)
        return finished

    def _record_failure(self, attempt: Attempt, report: BatchReport) -> None:
        assert attempt.error is not None
        failure = self.outcomes.failed(
            attempt.job, attempt.error, actor=ACTOR, message=attempt.message
        )
        if failure.redeliver:
            report.failed_message_ids.append(attempt.delivery.message_id)
        if failure.job is None:
            return
        if failure.job.status is JobStatus.FAILED:
            report.metrics.add("JobsFailed", job_type=attempt.job.type)
        elif failure.job.status is not JobStatus.CANCELLED:  # asked to cancel: not retried
            report.metrics.add("JobsRetried", job_type=attempt.job.type)

    def _measure(self, attempt: Attempt, outcome: Outcome | None, metrics: MetricBatch) -> None:
        job = attempt.job
        if outcome is Outcome.SUCCEEDED:
            metrics.add("JobsSucceeded", job_type=job.type)
        if attempt.started is not None:
            metrics.maximum("JobDuration", self.clock() - attempt.started, job_type=job.type)
        if job.queued_at is not None and job.started_at is not None:
            wait = (job.started_at - job.queued_at).total_seconds()
            metrics.maximum("QueueWait", max(wait, 0.0), job_type=job.type)
