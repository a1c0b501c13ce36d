"""/v1/limits and pausing queues and job types (SPEC §6): admin only, audited."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from taskmill.api.caller import Caller, request_id
from taskmill.api.models import LimitList, LimitOut, LimitPut, PauseOut
from taskmill.api.openapi import operation
from taskmill.api.services import ApiServices
from taskmill.errors import InvalidInput, NotFound
from taskmill.flow.keys import is_valid_key, require_key, require_limit_key
from taskmill.flow.limits import Limit, LimitSpec, Rate, loosens, room_now
from taskmill.flow.pauses import Pause, PauseKind
from taskmill.topology import Priority


def _path_key(raw: str) -> str:
    """A limit key from the path. API Gateway's REST APIs hand over the path as the client
    encoded it, and HTTP clients percent-encode ':' in a path segment: `customer%3A42` is
    `customer:42`."""
    return require_key(unquote(raw))


def _limit_out(limit: Limit) -> LimitOut:
    return LimitOut.model_validate(limit.model_dump())


def _pause_out(kind: PauseKind, name: str, pause: Pause | None) -> PauseOut:
    return PauseOut(
        kind=kind.value,
        name=name,
        paused=pause is not None,
        paused_at=pause.paused_at if pause else None,
        paused_by=pause.paused_by if pause else None,
    )


def router(services: ApiServices) -> Router:
    r = Router()

    def admin() -> Caller:
        return services.caller(r.current_event.raw_event, "admin")

    def audit(who: Caller, action: str, target_type: str, target: str, detail: Any) -> None:
        services.audit.record(
            action,
            actor_id=who.id,
            target_type=target_type,
            target_id=target,
            detail=detail,
            correlation_id=request_id(r.current_event.raw_event),
        )

    # ---- limits -------------------------------------------------------------------------

    @r.get("/v1/limits", **operation("listLimits", "Limits and their use (admin)", tag="flow"))
    def list_limits(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=128)] = None,
    ) -> LimitList:
        admin()
        if cursor and not is_valid_key(cursor):  # empty: the first page, as on every list
            raise InvalidInput("cursor is not valid")
        rows = services.limits.list(limit=limit + 1, after=cursor or None)
        page = rows[:limit]
        return LimitList(
            items=[_limit_out(row) for row in page],
            next_cursor=page[-1].key if len(rows) > limit else None,
        )

    @r.get(
        "/v1/limits/<key>",
        **operation(
            "getLimit",
            "A limit and its current use (admin)",
            tag="flow",
            errors=[404],
            description="An `owner:<id>` key without a limit of its own shows the "
            "environment's default (`source: default`), if one is set.",
        ),
    )
    def get_limit(key: str) -> LimitOut:
        admin()
        key = _path_key(key)
        found = services.limits.get(key)
        if found is None:
            raise NotFound(f"no limit on {key!r}")
        return _limit_out(found)

    @r.put(
        "/v1/limits/<key>",
        **operation("putLimit", "Set the limit on a key (admin)", tag="flow", errors=[404]),
    )
    def put_limit(key: str, body: LimitPut) -> LimitOut:
        who = admin()
        key = require_limit_key(_path_key(key))
        if body.concurrency is None and body.rate is None:
            raise InvalidInput(
                "set concurrency, rate or both (DELETE /v1/limits/{key} removes a limit)"
            )
        spec = LimitSpec(
            concurrency=body.concurrency,
            rate=Rate(**body.rate.model_dump()) if body.rate else None,
        )
        before = services.limits.get(key)
        stored = services.limits.put(key, spec, actor=f"admin:{who.id}")
        audit(who, "limit.put", "limit", key, spec.model_dump(mode="json"))
        if loosens(before, spec):
            services.outcomes.resend_holding_key(
                key, room=room_now(stored), deadline=services.send_deadline(r.lambda_context)
            )
        return _limit_out(stored)

    @r.delete(
        "/v1/limits/<key>",
        **operation(
            "deleteLimit",
            "Remove the limit on a key (admin)",
            tag="flow",
            errors=[404],
            success={204: "Removed."},
        ),
    )
    def delete_limit(key: str) -> Response[None]:
        who = admin()
        key = _path_key(key)
        if not services.limits.delete(key):
            raise NotFound(f"no limit on {key!r}")
        audit(who, "limit.delete", "limit", key, {})
        # Jobs it held back start now, not when their delayed message comes back.
        services.outcomes.resend_holding_key(key, deadline=services.send_deadline(r.lambda_context))
        return Response(204)

    # ---- pause and resume ---------------------------------------------------------------

    def pause(kind: PauseKind, name: str) -> PauseOut:
        who = admin()
        stored, new = services.pauses.pause(kind, name, actor=f"admin:{who.id}")
        if new:
            audit(who, f"{kind.value}.pause", kind.value, name, {})
        if kind is PauseKind.QUEUE:
            services.event_sources.set_enabled(Priority(name), enabled=False)
        return _pause_out(kind, name, stored)

    def resume(kind: PauseKind, name: str) -> PauseOut:
        who = admin()
        if services.pauses.resume(kind, name):
            audit(who, f"{kind.value}.resume", kind.value, name, {})
        if kind is PauseKind.QUEUE:
            services.event_sources.set_enabled(Priority(name), enabled=True)
        # Held messages come back on their own; the oldest waiting jobs start now.
        services.outcomes.resend_waiting(
            priority=name if kind is PauseKind.QUEUE else None,
            job_type=name if kind is PauseKind.TYPE else None,
            deadline=services.send_deadline(r.lambda_context),
        )
        return _pause_out(kind, name, None)

    pause_description = (
        "A paused queue or type still accepts jobs but starts none; running jobs finish. "
        "Pausing a queue also disables its worker's event source mapping in AWS."
    )

    @r.post(
        "/v1/queues/<priority>/pause",
        **operation(
            "pauseQueue",
            "Pause a priority queue (admin)",
            tag="flow",
            errors=[404],
            description=pause_description,
        ),
    )
    def pause_queue(priority: Priority) -> PauseOut:
        return pause(PauseKind.QUEUE, priority.value)

    @r.post(
        "/v1/queues/<priority>/resume",
        **operation(
            "resumeQueue", "Resume a paused priority queue (admin)", tag="flow", errors=[404]
        ),
    )
    def resume_queue(priority: Priority) -> PauseOut:
        return resume(PauseKind.QUEUE, priority.value)

    def job_type(name: str) -> str:
        name = unquote(name)  # as for limit keys (`_path_key`)
        if name not in services.registry:
            raise NotFound(f"no job type {name!r}")
        return name

    @r.post(
        "/v1/job-types/<name>/pause",
        **operation(
            "pauseJobType",
            "Pause a job type (admin)",
            tag="flow",
            errors=[404],
            description=pause_description,
        ),
    )
    def pause_type(name: str) -> PauseOut:
        return pause(PauseKind.TYPE, job_type(name))

    @r.post(
        "/v1/job-types/<name>/resume",
        **operation("resumeJobType", "Resume a paused job type (admin)", tag="flow", errors=[404]),
    )
    def resume_type(name: str) -> PauseOut:
        return resume(PauseKind.TYPE, job_type(name))

    return r
