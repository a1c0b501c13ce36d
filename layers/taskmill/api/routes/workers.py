"""External workers: claim jobs of external types and report on them with the lease."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aws_lambda_powertools.event_handler.api_gateway import Router

from taskmill.api.caller import Caller
from taskmill.api.models import (
    ClaimedJob,
    ClaimRequest,
    CompleteRequest,
    FailRequest,
    JobOut,
    LeaseRequest,
    ProgressRequest,
)
from taskmill.api.openapi import operation
from taskmill.api.services import ApiServices
from taskmill.errors import Conflict, PayloadTooLarge
from taskmill.jobs.model import MAX_RESULT_BYTES, Job, result_bytes
from taskmill.jobs.retry import JobFailure
from taskmill.jobs.store import AccountCheck
from taskmill.lifecycle.outcomes import REPORTING_ROLES, Success, report_digest

LEASE_LOST = "the lease is not held: the job was recovered, finished or never claimed"


def router(services: ApiServices) -> Router:
    r = Router()

    def worker() -> Caller:
        return services.caller(r.current_event.raw_event, *REPORTING_ROLES)

    def held(job: Job | None) -> Job:
        if job is None:
            raise Conflict(LEASE_LOST)
        return job

    def external_only(job_id: UUID) -> Job:
        # Jobs run by the Lambda worker are not reported on over the API.
        job = services.jobs.get(job_id)
        if not job.external:
            raise Conflict("this job is not of an external type")
        return job

    @r.post(
        "/v1/workers/claim",
        **operation("claimJobs", "Claim queued jobs of external types (worker)", tag="workers"),
    )
    def claim(body: ClaimRequest) -> list[ClaimedJob]:
        who = worker()
        if body.types is not None:
            services.registry.claimable(body.types)
        jobs = services.jobs.claim_external(
            types=body.types,
            limit=body.limit,
            actor=who.actor,
            claimant=who.id,
            account=AccountCheck(who.session_id, REPORTING_ROLES),
            owner_concurrency=services.settings.owner_concurrency,
        )
        return [ClaimedJob.model_validate(job.model_dump()) for job in jobs]

    @r.post(
        "/v1/jobs/<job_id>/heartbeat",
        **operation(
            "heartbeat",
            "Keep a claimed job's lease until its timeout; learn of a cancel request",
            tag="workers",
            description=(
                "The job's `timeout_seconds`, counted from the claim, bounds the attempt: the "
                "lease runs to `started_at + timeout_seconds + 30 s` and a heartbeat cannot "
                "stretch it. After the timeout a heartbeat answers 409 `attempt_timed_out` "
                "and changes nothing: stop, and complete or fail the job within the 30 s. A "
                "lease that runs out without a report is a timed-out attempt, counted "
                "against `max_attempts` (retried while attempts remain, else failed), "
                "however its worker ended: never refunded."
            ),
            # The lease is not held (also for a job that does not exist), or the attempt's
            # timeout has passed (`attempt_timed_out`).
            errors=[409],
        ),
    )
    def heartbeat(job_id: UUID, body: LeaseRequest) -> dict[str, Any]:
        worker()
        job = held(services.jobs.heartbeat(job_id, body.lease_token))
        return {"lease_until": job.lease_until, "cancel_requested": job.cancel_requested}

    @r.post(
        "/v1/jobs/<job_id>/progress",
        **operation(
            "reportProgress",
            "Report a claimed job's progress; learn of a cancel request",
            tag="workers",
            description=(
                "Records `percent` and `message` while the attempt is within the job's "
                "`timeout_seconds` (counted from the claim). After the timeout it answers 409 "
                "`attempt_timed_out` and records nothing, as a heartbeat does: stop, and "
                "complete or fail the job within the 30 s slack."
            ),
            # The lease is not held (also for a job that does not exist), or the attempt's
            # timeout has passed (`attempt_timed_out`).
            errors=[409],
        ),
    )
    def progress(job_id: UUID, body: ProgressRequest) -> dict[str, Any]:
        worker()
        job = held(
            services.jobs.report_progress(job_id, body.lease_token, body.percent, body.message)
        )
        return {"progress": job.progress, "cancel_requested": job.cancel_requested}

    @r.post(
        "/v1/jobs/<job_id>/complete",
        **operation(
            "completeJob",
            "Report a claimed job's success",
            tag="workers",
            errors=[404, 409],
            description=(
                "Repeatable: the same call (same `lease_token`, same `result`) after it was "
                "recorded, its answer lost, answers 200 with the job again and changes "
                "nothing, until the job is claimed, retried or redriven again. Any other "
                "report once the attempt has ended is a 409."
            ),
        ),
    )
    def complete(job_id: UUID, body: CompleteRequest) -> JobOut:
        who = worker()
        external_only(job_id)
        size = result_bytes(body.result)
        if size > MAX_RESULT_BYTES:
            raise PayloadTooLarge(f"result is {size} bytes; the limit is {MAX_RESULT_BYTES}")
        done = services.outcomes.completed(
            Success(job_id, body.lease_token, body.result),
            report=report_digest("complete", body.lease_token, {"result": body.result}),
            actor=who.actor,
            deadline=services.send_deadline(r.lambda_context),
        )
        return JobOut.of(held(done))

    @r.post(
        "/v1/jobs/<job_id>/fail",
        **operation(
            "failJob",
            "Report a claimed job's failure",
            tag="workers",
            errors=[404, 409],
            description=(
                "The job is retried as its policy says, or ends `failed`. A job whose cancel "
                "was asked for (`cancel_requested` in a heartbeat's answer) ends `cancelled` "
                "instead, on any attempt and whatever `retryable` says: report `/fail` to "
                "stop it. Repeatable as `/complete` is: the same call (same `lease_token`, "
                "`error` and `retryable`) after it was recorded answers 200 with the job "
                "and changes nothing."
            ),
        ),
    )
    def fail(job_id: UUID, body: FailRequest) -> JobOut:
        who = worker()
        current = external_only(job_id)
        failure = services.outcomes.failed(
            current,
            JobFailure(body.error, retryable=body.retryable),
            actor=who.actor,
            lease_token=body.lease_token,
            deadline=services.send_deadline(r.lambda_context),
            report=report_digest(
                "fail", body.lease_token, {"error": body.error, "retryable": body.retryable}
            ),
        )
        return JobOut.of(held(failure.job))

    return r
