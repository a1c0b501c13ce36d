"""Recording what became of a job: the one place that applies retry decisions.

Whoever learns an outcome — the SQS worker, the ECS-events handler, the recovery sweep, an
external worker over the API — records it here, so every outcome gets the same treatment:
the conditional transition in Postgres, then (for a retry) a new or delayed message, (for a
final failure) the DLQ, and for finished jobs the follow-ups: dependents released and sent
at once, completion webhooks created and sent.

Follow-ups run after the outcome is committed. If Postgres fails during them, the outcome
stands and the recovery sweep does what was left (it releases waiting jobs and creates
marked webhooks on every run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from taskmill.db.text import storable_text
from taskmill.errors import (
    DependencyFailed,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    QueueUnavailable,
    QuotaExceeded,
)
from taskmill.jobs.model import LAST_ERROR_MAX, Finished, Job, JobStatus, NewJob, log_keys
from taskmill.jobs.retry import JobFailure, RetryDecision, RetryPolicy, decide_retry
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.sending import send_pending
from taskmill.lifecycle.webhooks import create_completion_webhooks
from taskmill.queue.sqs import JobQueue
from taskmill.topology import Priority

LEASE_EXPIRED = "the lease expired: the worker crashed, timed out or lost its connection"
# Dependents released per finished batch; the sweep releases any beyond this.
RELEASE_BATCH_LIMIT = 500
# Lost leases (a worker process that died mid-job) refunded before they count as attempts:
# a platform crash should not cost the job, a job that keeps killing its worker must.
LOST_LEASE_CAP = 3
# Jobs sent again at once when their queue or type is resumed; the rest of what waited
# comes back as its held messages return (`taskmill.flow.holds.PAUSE_HOLD_SECONDS`).
RESUME_RESEND_LIMIT = 500


@dataclass(frozen=True)
class HeldMessage:
    """The SQS message a worker holds for a job: a retry within SQS's delay range makes this
    message reappear after the delay instead of sending a new one."""

    priority: Priority
    receipt_handle: str


@dataclass(frozen=True)
class Success:
    job_id: UUID
    lease_token: UUID
    result: Any


@dataclass(frozen=True)
class Failure:
    job: Job | None  # as recorded; None when the lease was no longer held (nothing changed)
    decision: RetryDecision
    redeliver: bool  # the held message must come back: report it as a batch item failure
    sent: bool = False  # a new message was sent for the retry


class ChildJobsNotCreated(JobFailure):
    """The children a body submitted could not be created, so its success was not
    recorded either: the attempt fails with this. Retryable when the owner was over their
    unfinished-jobs quota (jobs finish, a later attempt may fit), not when a child named a
    dependency that is gone, not the owner's, failed or cancelled."""


def describe(error: BaseException) -> str:
    """`last_error` for an error: a job's own failure message as it is, anything else with
    its exception type; legible whatever the error holds, since the statement recording the
    failure must not be refused (a character Postgres cannot store becomes U+FFFD)."""
    try:
        text = str(error) or type(error).__name__
    except BaseException as exc:  # noqa: BLE001 - a body's broken __str__ (even a SystemExit)
        why = _text(exc)  # what it raised, named, with its own message if that one reads
        text = f"(its message could not be read: {type(exc).__name__}" + (
            f": {why})" if why else ")"
        )
    text = text if isinstance(error, JobFailure) else f"{type(error).__name__}: {text}"
    return storable_text(text[:LAST_ERROR_MAX])


def _text(error: BaseException) -> str | None:
    """`str(error)`, or None when that fails: a body's broken `__str__` may raise anything,
    a `SystemExit` included, and the worker records the failure all the same."""
    try:
        return str(error)
    except BaseException:  # noqa: BLE001 - a body's broken __str__ is reported, not raised
        return None


# The roles whose accounts may claim external jobs and report on them.
REPORTING_ROLES = ("worker", "admin")


def report_digest(call: str, lease_token: UUID, body: dict[str, Any]) -> UUID:
    """What identifies an external worker's report (`call`: `complete` or `fail`) as a
    repeat: its call, lease token and body, hashed (the token is the worker's secret and is
    not kept once the attempt ends). The body as the API parsed it, written with sorted keys,
    so a repeat of the same request digests the same whatever the order of its fields."""
    text = json.dumps(
        {"call": call, "lease_token": str(lease_token), "body": body},
        sort_keys=True,
        separators=(",", ":"),
    )
    return UUID(bytes=hashlib.sha256(text.encode()).digest()[:16])


def retry_policy(job: Job) -> RetryPolicy:
    return RetryPolicy(job.max_attempts, job.backoff_base_seconds, job.backoff_max_seconds)


class Outcomes:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        registry: JobTypeRegistry,
        *,
        logger: logging.Logger | Any = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.queue = queue
        self.registry = registry
        self.logger = logger or logging.getLogger("taskmill.lifecycle")
        self._rand = rand

    # ---- success ------------------------------------------------------------------------

    def succeeded(
        self,
        successes: Sequence[Success],
        *,
        actor: str,
        deadline: float | None = None,
    ) -> list[Job]:
        """Record successful attempts in one statement; an attempt whose lease is no longer
        held (recovered meanwhile) is not applied and not returned. `deadline` bounds the
        follow-ups' SQS calls (see `JobQueue.send`); what misses it the sweep sends."""
        finished = self.store.succeed_many(
            [(s.job_id, s.lease_token, s.result) for s in successes], actor=actor
        )
        self.follow_up(finished, deadline)
        return finished

    def completed(
        self, success: Success, *, report: UUID, actor: str, deadline: float | None = None
    ) -> Job | None:
        """An external worker's `/complete`: `succeeded` for one job, its report kept (its
        `report_digest`, as `failed` keeps a `/fail`'s) so that a repeat of it, whose first
        answer the worker lost, finds the job as it is and changes nothing. None when the
        lease is not held and this is no such repeat (the attempt ended otherwise, or the
        job was set going again since)."""
        done = self.store.complete_reported(
            success.job_id, success.lease_token, success.result, report, actor=actor
        )
        if done is None:
            return self.store.reported(success.job_id, report)
        self.follow_up([done], deadline)
        return done

    def succeeded_in_batch(
        self, successes: Sequence[Success], *, actor: str
    ) -> list[Job | Finished]:
        """`succeeded` for the worker's batch, which has more outcomes to record before the
        follow-ups (it calls `follow_up` itself), and returns only what those need (whole
        rows only for the jobs whose completion webhook is due)."""
        return self.store.succeed_batch(
            [(s.job_id, s.lease_token, s.result) for s in successes], actor=actor
        )

    def succeeded_with_children(
        self,
        job: Job,
        result: Any,
        children: Sequence[NewJob],
        *,
        actor: str,
        unfinished_limit: int | None = None,
        deadline: float | None = None,
    ) -> Job | None:
        """Record a successful attempt of `job` (as claimed) together with the child jobs
        its body submitted (one transaction), then send the children's messages; what SQS
        does not take the sweep sends. None when the lease is no longer held: nothing is
        written. Raises `ChildJobsNotCreated`, with nothing written, when a child cannot be
        created: the caller records that as the attempt's failure. Follow-ups of the
        success are the caller's (`follow_up`)."""
        if job.lease_token is None:
            return None
        try:
            done = self.store.succeed_with_children(
                job.id,
                job.lease_token,
                result,
                children,
                owner_id=job.owner_id,
                actor=actor,
                unfinished_limit=unfinished_limit,
            )
        except QuotaExceeded as exc:
            raise ChildJobsNotCreated(
                f"its {len(children)} child jobs were not created: {exc.message}"
            ) from exc
        except (InvalidInput, NotFound, DependencyFailed) as exc:
            raise ChildJobsNotCreated(
                f"its {len(children)} child jobs were not created: {exc.message}",
                retryable=False,
            ) from exc
        if done is None:
            return None
        finished, created = done
        try:
            send_pending(self.store, self.queue, created, deadline=deadline)
        except DependencyUnavailable:
            # Committed and still marked "to be sent": the sweep sends them.
            self.logger.exception(
                "child jobs left to the recovery sweep to send", extra=log_keys(finished)
            )
        return finished

    # ---- failure ------------------------------------------------------------------------

    def failed(
        self,
        job: Job,
        error: BaseException,
        *,
        actor: str,
        lease_token: UUID | None = None,
        message: HeldMessage | None = None,
        deadline: float | None = None,
        report: UUID | None = None,
    ) -> Failure:
        """Record a failed attempt of `job` (as claimed) as its retry policy decides.

        `lease_token` defaults to the job's own (the caller's claim); `message` is the SQS
        message the caller holds, if any. `report`: the `report_digest` of an external
        worker's `/fail`, kept with the outcome; a repeat of that report, whose first answer
        the worker lost, is not recorded again: its `Failure` holds the job as it is now.

        A job asked to cancel is not retried: it ends `cancelled`. An external job ends
        `cancelled` on its last attempt too, and whatever its worker says of the error: its
        worker has no other way to say it stopped because of the cancel (a body run here
        does, by returning: `cancelled`), so its `/fail` must not turn the user's cancel into
        a failure. Decided in the statement, on the row as it is then, so a cancel committed
        while the report was on its way counts."""
        token = lease_token or job.lease_token
        description = describe(error)
        decision = decide_retry(error, job.attempts, retry_policy(job), self._rand)
        updated = None
        if token is not None:
            updated = self.store.fail(
                job.id,
                token,
                description,
                decision,
                resend=message is None,
                actor=actor,
                report=report,
            )
        if updated is None and report is not None:
            repeated = self.store.reported(job.id, report)
            if repeated is not None:
                self.logger.info(
                    "repeated failure report answered with the outcome it recorded",
                    extra={**log_keys(repeated), "status": repeated.status.value},
                )
                return Failure(repeated, decision, redeliver=False)
        if updated is None:
            # Nothing was recorded (the job finished, or its lease was recovered, meanwhile):
            # a failed attempt and a retry that never happened must not show in the log.
            self.logger.info(
                "failure report ignored: the attempt's lease is no longer held",
                extra={**log_keys(job), "error": description},
            )
        else:
            self.logger.warning(
                "job attempt failed",
                extra={
                    **log_keys(job),
                    "error": description,
                    "status": updated.status.value,
                    "retry": decision.retry,
                    "delay_seconds": round(decision.delay_seconds, 3),
                },
            )
        return self._after_failure(updated, decision, description, message, deadline)

    def lease_expired(self, job: Job) -> Failure | None:
        """Recover a running job whose lease expired (its worker is gone). The first
        `LOST_LEASE_CAP` times the attempt is refunded (a platform crash is not the job's
        fault); after that it counts: retried if attempts remain, else failed to its DLQ.
        None if it was reported on meanwhile or another sweep got it first.

        An external job's lease always runs to the end of its attempt's time (a heartbeat
        cannot stretch it): expired, the attempt has outlived its `timeout_seconds` without
        a report, a timeout its retry policy counts, however its worker ended (one that
        stopped because its cancel was asked for ends `cancelled`, as its `/fail` would:
        see `failed`). So has a job
        that continues elsewhere (`external_ref`: a `container.run` task): its lease was set
        to the job's timeout when its task started, and no worker holds it any more, so its
        expiry is no crash: refunded, the attempt would start another task beside the one
        still running."""
        error = LEASE_EXPIRED
        if job.external:
            error = (
                f"timed out after {job.timeout_seconds} s: its worker did not complete or "
                "fail it within the job's timeout"
            )
        elif job.external_ref is not None:
            error = (
                f"timed out after {job.timeout_seconds} s: its container task did not stop "
                f"within the job's timeout (task {job.external_ref})"
            )
        elif job.lost_leases < LOST_LEASE_CAP:
            refunded = self.store.refund_lost_lease(job, LEASE_EXPIRED, cap=LOST_LEASE_CAP)
            if refunded is not None:
                sent = bool(send_pending(self.store, self.queue, [refunded]))
                return Failure(refunded, RetryDecision(True, 0.0, "lease lost"), False, sent)
        decision = decide_retry(JobFailure(error), job.attempts, retry_policy(job), self._rand)
        updated = self.store.recover_expired(job, error, decision)
        if updated is None:
            return None
        return self._after_failure(updated, decision, error, None)

    def _after_failure(
        self,
        updated: Job | None,
        decision: RetryDecision,
        description: str,
        message: HeldMessage | None,
        deadline: float | None = None,
    ) -> Failure:
        if updated is None:
            return Failure(None, decision, redeliver=False)
        redeliver = sent = False
        if updated.status is JobStatus.QUEUED:
            if message is not None:
                redeliver = True
                if not self._delay(message, math.ceil(decision.delay_seconds)):
                    sent = self._resend(updated)
            else:
                sent = bool(send_pending(self.store, self.queue, [updated], deadline=deadline))
        elif updated.status is JobStatus.FAILED:
            self._dead_letter(updated, decision.reason, description)
            self.follow_up([updated], deadline)
        # `scheduled`: a delay longer than SQS can hold; the sweep releases it when due.
        return Failure(updated, decision, redeliver, sent)

    # ---- other ends of a claim ----------------------------------------------------------

    def released(
        self,
        job: Job,
        reason: str,
        *,
        actor: str,
        message: HeldMessage,
        counted: bool = True,
    ) -> None:
        """Give a claimed job back without counting the attempt (the worker ran out of time
        through no fault of the job); its message comes back at once. `counted`: whether the
        release counts in `lost_leases` (not when the job's body never started)."""
        released = None
        if job.lease_token is not None:
            released = self.store.release(
                job.id, job.lease_token, reason, actor=actor, counted=counted
            )
        if not self._delay(message, 0) and released is not None:
            self._resend(released)

    def release_held_by(self, account_id: UUID, reason: str, *, actor: str) -> list[Job]:
        """Give back the external jobs an account holds once it can no longer report on them
        (disabled, deleted, or no longer a worker), instead of leaving them `running` until
        their timeouts run out: each is claimable again at once, its attempt not counted
        (not the job's fault; the refund counts in `lost_leases`, as a lost lease's does)."""
        released = []
        for job in self.store.held_by([f"{role}:{account_id}" for role in REPORTING_ROLES]):
            assert job.lease_token is not None
            again = self.store.release(job.id, job.lease_token, reason, actor=actor)
            if again is not None:  # the worker reported meanwhile: its report stands
                released.append(again)
        return released

    def cancelled(self, job: Job, *, actor: str) -> Job | None:
        """A running job stopped because it was asked to: it ends `cancelled`."""
        if job.lease_token is None:
            return None
        return self.store.acknowledge_cancel(job.id, job.lease_token, actor=actor)

    # ---- running a finished job again ---------------------------------------------------

    def retry(
        self,
        job: Job,
        *,
        actor: str,
        unfinished_limit: int | None = None,
        deadline: float | None = None,
    ) -> Job | None:
        """Re-run a `failed` or `cancelled` job (fresh attempt budget) and send it; like a
        create, it counts against the owner's `unfinished_limit` (`QuotaExceeded` past it)."""
        self._settle_webhooks([job])
        retried = self.store.retry(job.id, actor=actor, unfinished_limit=unfinished_limit)
        if retried is not None:
            send_pending(self.store, self.queue, [retried], deadline=deadline)
        return retried

    def redrive(
        self,
        jobs: Sequence[Job],
        *,
        actor: str,
        resend: bool,
        expected_redrive_count: int | None = None,
        deadline: float | None = None,
    ) -> list[Job]:
        """Give `failed` jobs a fresh attempt budget and `redrive_count + 1`; `resend=False`
        when their message is already back on the queue (see `JobStore.redrive_many`)."""
        self._settle_webhooks(jobs)
        redriven = self.store.redrive_many(
            [job.id for job in jobs],
            actor=actor,
            resend=resend,
            expected_redrive_count=expected_redrive_count,
        )
        send_pending(self.store, self.queue, redriven, deadline=deadline)
        return redriven

    def _settle_webhooks(self, jobs: Sequence[Job]) -> None:
        # A finished job's webhook describes how it finished: it must exist before the job
        # runs again (normally it does; not after a crash right after the final statement).
        create_completion_webhooks(self.store, self.queue, self.registry, jobs, logger=self.logger)

    def resend_waiting(
        self, *, priority: str | None, job_type: str | None, deadline: float | None = None
    ) -> list[UUID]:
        """A queue or type was resumed: send its oldest jobs whose held message is not back
        yet now (it returns within `PAUSE_HOLD_SECONDS` and is skipped by the claim)."""
        marked = self.store.mark_waiting_to_send(
            priority=priority, job_type=job_type, limit=RESUME_RESEND_LIMIT
        )
        return send_pending(self.store, self.queue, marked, deadline=deadline)

    def resend_holding_key(
        self, key: str, *, room: int | None = None, deadline: float | None = None
    ) -> list[UUID]:
        """The limit on `key` was removed or loosened: send its oldest queued jobs now rather
        than when the message a hold delayed comes back (up to `MAX_RATE_HOLD_SECONDS`), as
        many as the limit lets start now (`room`; None: no bound), at most
        `RESUME_RESEND_LIMIT`. More would only be held again, each with a second message."""
        count = RESUME_RESEND_LIMIT if room is None else min(room, RESUME_RESEND_LIMIT)
        if count <= 0:
            return []
        marked = self.store.mark_holding_key_to_send(key, limit=count)
        return send_pending(self.store, self.queue, marked, deadline=deadline)

    # ---- what follows -------------------------------------------------------------------

    def follow_up(self, finished: Sequence[Job | Finished], deadline: float | None = None) -> None:
        """What follows finished jobs: dependents released and sent, completion webhooks
        (a job whose webhook is due is always given whole: see `JobStore.succeed_batch`)."""
        if not finished:
            return
        try:
            # Only jobs something waits on: most batches release nothing and skip the
            # statement.
            succeeded = [
                job.id
                for job in finished
                if job.status is JobStatus.SUCCEEDED and job.has_dependents
            ]
            if succeeded:
                released = self.store.release_waiting(limit=RELEASE_BATCH_LIMIT, job_ids=succeeded)
                send_pending(self.store, self.queue, released, deadline=deadline)
            whole = [job for job in finished if isinstance(job, Job)]
            create_completion_webhooks(
                self.store,
                self.queue,
                self.registry,
                whole,
                logger=self.logger,
                deadline=deadline,
            )
        except DependencyUnavailable:
            # The outcome is committed; the sweep releases dependents and creates marked
            # webhooks on its next run.
            self.logger.exception(
                "follow-ups left to the recovery sweep",
                extra={"job_ids": [str(job.id) for job in finished]},
            )

    def _dead_letter(self, job: Job, reason: str, error: str) -> None:
        if job.external:
            return  # external jobs never had a message; `failed` in Postgres is their record
        try:
            self.queue.dead_letter(job, reason, error=error)
        except QueueUnavailable:
            # The job is `failed` in Postgres either way; the DLQ reconciliation reports a
            # failed job whose DLQ message is missing.
            self.logger.exception(
                "could not send a failed job to its DLQ", extra={"job_id": str(job.id)}
            )

    def _delay(self, message: HeldMessage, seconds: int) -> bool:
        """Make the held message come back after `seconds`; False if SQS refused."""
        try:
            self.queue.delay_redelivery(message.priority, message.receipt_handle, seconds)
        except QueueUnavailable:
            return False
        return True

    def _resend(self, job: Job) -> bool:
        """The held message could not be delayed: most likely it is gone (a duplicate of it
        was acknowledged meanwhile), else SQS is in trouble and the message returns after its
        visibility timeout anyway. A new message costs at most a skipped duplicate; a job
        left queued without one would never run."""
        self.logger.warning(
            "the job's message could not be delayed; sending a new one", extra=log_keys(job)
        )
        return bool(send_pending(self.store, self.queue, self.store.mark_to_send([job.id])))
