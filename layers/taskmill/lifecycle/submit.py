"""Submitting jobs: resolve type defaults, write the rows, send the messages.

Creation is one statement (row, quota, job event and the "to be sent" mark together),
then one SQS batch send per ten jobs, then one statement clearing the mark for what was
sent. A send that fails leaves the job `queued` and marked: the recovery sweep sends it
later, so the client still gets its 201 and nothing is half-created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from taskmill.errors import TaskmillError
from taskmill.flow.keys import resolve_limit_keys
from taskmill.jobs.model import NewJob
from taskmill.jobs.store import AccountCheck, CreateResult, JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.sending import send_pending
from taskmill.queue.sqs import JobQueue


@dataclass(frozen=True)
class JobRequest:
    """What a client (or the platform itself) asks for; unset fields take type defaults."""

    type: str
    payload: dict[str, Any]
    priority: str | None = None
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    backoff_base_seconds: float | None = None
    backoff_max_seconds: float | None = None
    run_at: datetime | None = None
    delay_seconds: float | None = None
    idempotency_key: str | None = None
    depends_on: Sequence[UUID] = ()
    webhook_url: str | None = None
    name: str | None = None
    description: str | None = None
    tags: Sequence[str] = ()
    # Keys besides the type's own templates and the owner's (SPEC §6).
    limit_keys: Sequence[str] = ()
    correlation_id: str | None = None
    # A fingerprint of the client's request, kept with its idempotency key so a repeat with
    # another body is refused; the platform's own keyed submissions leave it unset.
    request_hash: str | None = None
    # Fingerprints earlier releases stored for the same request (a key stored before a
    # deploy is still a repeat of it, not a mismatch).
    earlier_request_hashes: Sequence[str] = ()


def resolve(
    request: JobRequest,
    registry: JobTypeRegistry,
    *,
    owner_id: UUID | None = None,
    now: datetime | None = None,
) -> NewJob:
    """Validate the payload against its type and fill every default from the type, limit
    keys included (`owner_id` renders `{owner_id}` templates; None only validates)."""
    job_type = registry.get(request.type)
    defaults = job_type.defaults
    payload = job_type.validate_payload(request.payload)
    limit_keys = resolve_limit_keys(
        list(request.limit_keys),
        job_type.limit_keys,
        job_type=job_type.name,
        owner_id=owner_id or UUID(int=0),
        payload=payload,
    )
    run_at = request.run_at
    if run_at is None and request.delay_seconds:
        run_at = (now or datetime.now(UTC)) + timedelta(seconds=request.delay_seconds)
    return NewJob(
        type=job_type.name,
        payload=payload,
        priority=request.priority or defaults.priority,
        max_attempts=request.max_attempts or defaults.max_attempts,
        timeout_seconds=request.timeout_seconds or defaults.timeout_seconds,
        backoff_base_seconds=(
            request.backoff_base_seconds
            if request.backoff_base_seconds is not None
            else defaults.backoff_base_seconds
        ),
        backoff_max_seconds=(
            request.backoff_max_seconds
            if request.backoff_max_seconds is not None
            else defaults.backoff_max_seconds
        ),
        external=job_type.external,
        run_at=run_at,
        idempotency_key=request.idempotency_key,
        depends_on=list(request.depends_on),
        webhook_url=request.webhook_url,
        name=request.name,
        description=request.description,
        tags=list(request.tags),
        limit_keys=limit_keys,
        correlation_id=request.correlation_id,
        request_hash=request.request_hash,
        earlier_request_hashes=list(request.earlier_request_hashes),
    )


def create_jobs(
    store: JobStore,
    registry: JobTypeRegistry,
    owner_id: UUID,
    requests: Sequence[JobRequest],
    *,
    actor: str,
    unfinished_limit: int | None = None,
    account: AccountCheck | None = None,
    idempotency_ttl_seconds: float | None = None,
) -> list[CreateResult]:
    """The rows of `submit`, their messages not sent: for a caller that creates them inside
    its own transaction and sends them (`send_pending`) once it committed."""
    specs = []
    for row, request in enumerate(requests):
        try:
            specs.append(resolve(request, registry, owner_id=owner_id))
        except TaskmillError as exc:
            exc.row = row  # which job of a batch: its 400 names it
            raise
    return store.create_many(
        owner_id,
        specs,
        actor=actor,
        unfinished_limit=unfinished_limit,
        account=account,
        idempotency_ttl_seconds=idempotency_ttl_seconds,
    )


def submit(
    store: JobStore,
    queue: JobQueue,
    registry: JobTypeRegistry,
    owner_id: UUID,
    requests: Sequence[JobRequest],
    *,
    actor: str,
    unfinished_limit: int | None = None,
    deadline: float | None = None,
    account: AccountCheck | None = None,
    idempotency_ttl_seconds: float | None = None,
) -> list[CreateResult]:
    """`account`: create only while the owner's account and session allow it (API callers);
    the platform's own submissions (schedules, webhooks) pass none."""
    results = create_jobs(
        store,
        registry,
        owner_id,
        requests,
        actor=actor,
        unfinished_limit=unfinished_limit,
        account=account,
        idempotency_ttl_seconds=idempotency_ttl_seconds,
    )
    new_jobs = [result.job for result in results if result.created]
    sent = set(send_pending(store, queue, new_jobs, deadline=deadline))
    # Report the state the client would read back: sent jobs are no longer pending.
    return [
        CreateResult(result.job.model_copy(update={"send_pending": False}), result.created)
        if result.job.id in sent
        else result
        for result in results
    ]
