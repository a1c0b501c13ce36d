"""/v1/jobs and /v1/job-types."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Query

from taskmill.api.caller import Caller, Identity, identity_from_event, request_id
from taskmill.api.fingerprints import (
    earlier_batch_fingerprints,
    earlier_fingerprints,
    fingerprint,
)
from taskmill.api.models import (
    JobBatchCreate,
    JobBatchOut,
    JobCreate,
    JobEventList,
    JobEventOut,
    JobList,
    JobOut,
    JobPatch,
    JobStatusOut,
    JobTypeOut,
    PriorityName,
)
from taskmill.api.openapi import operation
from taskmill.api.pages import fitting
from taskmill.api.services import ApiServices
from taskmill.errors import Conflict, InvalidInput, NotFound, TaskmillError
from taskmill.flow.pauses import PauseKind
from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.options import Instant
from taskmill.jobs.store import AccountCheck, JobFilter
from taskmill.lifecycle.sending import send_pending
from taskmill.lifecycle.submit import JobRequest, submit
from taskmill.paging import decode_event_cursor, encode_cursor, encode_event_cursor

# An empty key is refused (400) rather than taken as a key: it is a client's unset variable
# far more often than a choice, and as a key it would make every such create answer the
# first one's job.
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]
JOB_ROLES = ("user", "admin")


def in_batch(error: TaskmillError) -> TaskmillError:
    """`error` naming the batch's job it is about (`jobs[3]: ...`), when it is about one."""
    if error.row is not None:
        error.message = f"jobs[{error.row}]: {error.message}"
        error.args = (error.message,)
    return error


def router(services: ApiServices) -> Router:
    r = Router()

    def caller() -> Caller:
        return services.caller(r.current_event.raw_event, *JOB_ROLES)

    def creator() -> tuple[Identity, AccountCheck]:
        # Creates check the account inside the creating statement instead of reading it
        # first: POST /v1/jobs stays at two SQL round trips.
        identity = identity_from_event(r.current_event.raw_event)
        return identity, AccountCheck(identity.session_id, JOB_ROLES)

    def owned(job_id: UUID, who: Caller) -> Job:
        job = services.jobs.get(job_id)
        if not who.is_admin and job.owner_id != who.id:
            # Another user's job is indistinguishable from a missing one.
            raise NotFound("job not found")
        return job

    def raw_body() -> object:
        try:
            return r.current_event.json_body
        except ValueError:
            return None

    def request_of(
        body: JobCreate,
        key: str | None,
        request_hash: str | None,
        earlier_hashes: list[str] | None = None,
    ) -> JobRequest:
        services.registry.submittable(body.type)
        services.check_webhook_url(body.webhook_url)
        services.check_payload_size(body.payload)
        return JobRequest(
            **body.model_dump(exclude={"payload"}),
            payload=body.payload,
            idempotency_key=key,
            correlation_id=request_id(r.current_event.raw_event),
            request_hash=request_hash,
            earlier_request_hashes=earlier_hashes or [],
        )

    def count_created(jobs: list[Job]) -> None:
        for job in jobs:
            services.metrics.add("JobsCreated", job_type=job.type, priority=job.priority.value)

    @r.post(
        "/v1/jobs",
        **operation(
            "createJob",
            "Create a job",
            tag="jobs",
            errors=[409],  # idempotency_mismatch, dependency_failed
            success={
                201: "The job, created.",
                200: "The job an earlier request with this `Idempotency-Key` and the same "
                "body created; nothing new was created.",
            },
        ),
    )
    def create_job(body: JobCreate, idempotency_key: IdempotencyKey = None) -> Response[JobOut]:
        who, account = creator()
        request_hash = earlier = None
        if idempotency_key is not None:
            # The key may have been stored by the release before a deploy: its fingerprint
            # of the same request counts too (taskmill.api.fingerprints).
            request_hash, earlier = fingerprint(body), earlier_fingerprints(body, raw_body())
        [result] = submit(
            services.jobs,
            services.queue,
            services.registry,
            who.id,
            [request_of(body, idempotency_key, request_hash, earlier)],
            actor=f"user:{who.id}",  # replaced by the account's current role
            unfinished_limit=services.settings.max_unfinished_jobs,
            deadline=services.send_deadline(r.lambda_context),
            account=account,
            idempotency_ttl_seconds=services.settings.idempotency_ttl_seconds,
        )
        if result.created:
            count_created([result.job])
        return Response(201 if result.created else 200, "application/json", JobOut.of(result.job))

    @r.post(
        "/v1/jobs/batch",
        **operation(
            "createJobs",
            "Create up to 100 jobs in one request",
            tag="jobs",
            errors=[409],  # idempotency_mismatch, dependency_failed
            success={
                201: "The jobs, in the order asked; at least one was created.",
                200: "The jobs earlier requests with this `Idempotency-Key` created; none "
                "was created now.",
            },
        ),
    )
    def create_batch(
        body: JobBatchCreate, idempotency_key: IdempotencyKey = None
    ) -> Response[JobBatchOut]:
        who, account = creator()
        if len(body.jobs) > services.settings.max_batch:
            raise InvalidInput(f"at most {services.settings.max_batch} jobs per batch")
        # Every job of a keyed batch carries the whole batch's fingerprint: the key stands
        # for the request, so a longer, shorter or edited batch (or a single create keyed
        # `<key>#0`) is a mismatch, not a partial repeat.
        keyed = idempotency_key is not None
        whole = fingerprint(body) if keyed else None
        earlier = earlier_batch_fingerprints(body, raw_body()) if keyed else [[]] * len(body.jobs)
        # A job the batch cannot take is named (`jobs[3]: unknown job type 'x'`): in a batch
        # of 100 the bare message would not say which; its details stay as a create's.
        requests = []
        for index, job in enumerate(body.jobs):
            try:
                requests.append(
                    request_of(
                        job,
                        f"{idempotency_key}#{index}" if keyed else None,
                        whole,
                        earlier[index],
                    )
                )
            except TaskmillError as exc:
                exc.row = index
                raise in_batch(exc) from None
        try:
            results = submit(
                services.jobs,
                services.queue,
                services.registry,
                who.id,
                requests,
                actor=f"user:{who.id}",  # replaced by the account's current role
                unfinished_limit=services.settings.max_unfinished_jobs,
                deadline=services.send_deadline(r.lambda_context),
                account=account,
                idempotency_ttl_seconds=services.settings.idempotency_ttl_seconds,
            )
        except TaskmillError as exc:
            raise in_batch(exc) from None
        count_created([res.job for res in results if res.created])
        status = 201 if any(res.created for res in results) else 200
        return Response(
            status, "application/json", JobBatchOut(items=[JobOut.of(res.job) for res in results])
        )

    @r.get(
        "/v1/jobs",
        **operation("listJobs", "List jobs (a user's own; all for an admin)", tag="jobs"),
    )
    def list_jobs(
        status: Annotated[JobStatus | None, Query()] = None,
        type: Annotated[str | None, Query(max_length=100)] = None,
        priority: Annotated[PriorityName | None, Query()] = None,
        tag: Annotated[str | None, Query(max_length=64)] = None,
        created_after: Annotated[
            Instant | None,
            Query(description="Created at or after this instant (ISO 8601 with a zone)."),
        ] = None,
        created_before: Annotated[
            Instant | None,
            Query(description="Created before this instant (ISO 8601 with a zone)."),
        ] = None,
        parent_id: Annotated[
            UUID | None,
            Query(description="Only the child jobs this job's body submitted."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JobList:
        who = caller()
        page = services.jobs.list_jobs(
            JobFilter(
                owner_id=None if who.is_admin else who.id,
                status=status,
                type=type,
                priority=priority,
                tag=tag,
                created_after=created_after,
                created_before=created_before,
                parent_id=parent_id,
            ),
            limit=limit,
            cursor=cursor,
        )
        items = fitting([JobOut.of(job) for job in page.items])
        if len(items) == len(page.items):
            return JobList(items=items, next_cursor=page.next_cursor)
        return JobList(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id))

    @r.get("/v1/jobs/<job_id>", **operation("getJob", "Read a job", tag="jobs", errors=[404]))
    def get_job(job_id: UUID) -> JobOut:
        return JobOut.of(owned(job_id, caller()))

    @r.get(
        "/v1/jobs/<job_id>/status",
        **operation("getJobStatus", "A job's status, for polling", tag="jobs", errors=[404]),
    )
    def job_status(job_id: UUID) -> JobStatusOut:
        return JobStatusOut.model_validate(owned(job_id, caller()).model_dump())

    @r.get(
        "/v1/jobs/<job_id>/events",
        **operation(
            "listJobEvents",
            "A job's history",
            tag="jobs",
            errors=[404],
            description="The job's transitions, oldest first, as a page of a list: `limit` "
            "at a time (default 50, at most 200, as on the other lists), fewer when they would "
            "not fit in one response (about 2 MiB of JSON), and `next_cursor` to pass as "
            "`cursor` for the next page (null on the last). Nothing is cut or left out: a "
            "client reads on until `next_cursor` is null. `from_status` is the status before "
            "each transition, on every page. A cursor belongs to the job whose history gave "
            "it: another job's, another list's or a garbled one is a 400. (It answered a bare "
            "list before it was paged: a client reading one must read `items` now.)",
        ),
    )
    def job_events(
        job_id: UUID,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> JobEventList:
        who = caller()
        owned(job_id, who)
        # Empty: the first page, as on every list.
        skip = decode_event_cursor(cursor, job_id) if cursor else 0
        rows = services.jobs.events(job_id, skip=skip, limit=limit + 1)
        page = fitting(
            [
                JobEventOut.model_validate(
                    e
                    if who.is_admin or e["actor"].endswith(f":{who.id}")
                    else e | {"actor_email": None}
                )
                for e in rows[:limit]
            ]
        )
        # More to read: past `limit`, or cut short by `fitting` (a page is never empty then).
        more = len(rows) > len(page)
        return JobEventList(
            items=page,
            next_cursor=encode_event_cursor(job_id, skip + len(page)) if more else None,
        )

    @r.patch(
        "/v1/jobs/<job_id>",
        **operation(
            "updateJob",
            "Edit a job (priority and run_at only before it runs)",
            tag="jobs",
            errors=[404, 409],
        ),
    )
    def edit_job(job_id: UUID, body: JobPatch) -> JobOut:
        who = caller()
        owned(job_id, who)
        job = services.jobs.update_details(
            job_id, **body.model_dump(exclude_none=True), actor=who.actor
        )
        send_pending(
            services.jobs, services.queue, [job], deadline=services.send_deadline(r.lambda_context)
        )
        return JobOut.of(services.jobs.get(job_id))

    @r.post(
        "/v1/jobs/<job_id>/cancel",
        **operation("cancelJob", "Cancel a job", tag="jobs", errors=[404, 409]),
    )
    def cancel_job(job_id: UUID) -> JobOut:
        who = caller()
        owned(job_id, who)
        job = services.jobs.cancel(job_id, actor=who.actor, reason=f"cancelled by {who.actor}")
        if job is None:
            raise Conflict("the job has already finished or is already being cancelled")
        return JobOut.of(job)

    @r.post(
        "/v1/jobs/<job_id>/retry",
        **operation(
            "retryJob",
            "Run a failed or cancelled job again",
            tag="jobs",
            errors=[404, 409],
            description="The job gets a fresh attempt budget and becomes `queued`, or "
            "`waiting` while one of its dependencies is unfinished (released when they "
            "succeed). 409 `conflict` for a job that is not failed or cancelled; 409 "
            "`dependency_failed` while a dependency failed, was cancelled or was deleted "
            "(retry the dependency first). Like a create, the job counts against its "
            "owner's limit of unfinished jobs again: 429 `quota_exceeded` past it, whoever "
            "asks (admins redrive dead letters without that limit).",
        ),
    )
    def retry_job(job_id: UUID) -> JobOut:
        who = caller()
        job = services.outcomes.retry(
            owned(job_id, who),
            actor=who.actor,
            unfinished_limit=services.settings.max_unfinished_jobs,
            deadline=services.send_deadline(r.lambda_context),
        )
        if job is None:
            raise Conflict("only a failed or cancelled job can be retried")
        return JobOut.of(services.jobs.get(job_id))

    @r.delete(
        "/v1/jobs/<job_id>",
        **operation(
            "deleteJob",
            "Delete a job that is not running",
            tag="jobs",
            errors=[404, 409],
            success={204: "Deleted."},
        ),
    )
    def delete_job(job_id: UUID) -> Response[None]:
        owned(job_id, caller())
        if not services.jobs.delete(job_id):
            if services.jobs.get(job_id).cancel_requested:  # "cancel it first" would mislead
                raise Conflict(
                    "a running job cannot be deleted; its cancellation was asked for: "
                    "delete it once it has stopped"
                )
            raise Conflict("a running job cannot be deleted; cancel it first")
        return Response(204)

    @r.get(
        "/v1/job-types",
        **operation("listJobTypes", "Job types, their payload schemas and defaults", tag="jobs"),
    )
    def job_types() -> list[JobTypeOut]:
        services.caller(r.current_event.raw_event)
        paused = services.pauses.names(PauseKind.TYPE)
        return [
            JobTypeOut(
                name=t.name,
                description=t.description,
                external=t.external,
                payload_schema=t.payload_schema(),
                defaults=t.defaults.model_dump(mode="json"),
                limit_keys=list(t.limit_keys),
                paused=t.name in paused,
            )
            for t in services.registry.offered()
        ]

    return r
