"""Child jobs a body submits (`context.submit`): checked at once, created with its success.

The children are only collected here. The worker creates them in the transaction that
records the attempt's success (`JobStore.succeed_with_children`), so a failed, timed-out,
cancelled or superseded attempt leaves none behind and a success never lacks its children.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from taskmill.errors import InvalidInput
from taskmill.jobs.model import Job, NewJob
from taskmill.jobs.retry import PermanentJobFailure
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.submit import JobRequest, resolve
from taskmill.topology import MAX_ATTEMPTS_LIMIT

# Created in one statement with the parent's success; a fan-out wider than this is better
# split over several parents (each also counts against the owner's unfinished-jobs quota).
MAX_CHILDREN_PER_ATTEMPT = 1000


class ChildJobRefused(PermanentJobFailure):
    """`context.submit` refused a child (unknown type, invalid payload or option). Not
    retryable: the same body would submit the same child again."""


class ChildOptions(BaseModel):
    """What a body may set on a child besides type and payload: the options of
    `POST /v1/jobs`, with the same bounds, less `idempotency_key` (a child is created once,
    with its parent's success) and `webhook_url` (its address is checked by the API only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: Literal["high", "normal", "low"] | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_LIMIT)
    timeout_seconds: int | None = Field(default=None, ge=1, le=86400)
    backoff_base_seconds: float | None = Field(default=None, ge=0, le=86400)
    backoff_max_seconds: float | None = Field(default=None, ge=0, le=7 * 86400)
    run_at: AwareDatetime | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=365 * 86400)
    depends_on: list[UUID] = Field(default_factory=list, max_length=100)
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    correlation_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    # Checked by `resolve` (form, no `owner:` key, at most 4 with the type's templates).
    limit_keys: list[str] = Field(default_factory=list, max_length=4)


class Children:
    """The children one attempt has submitted so far, in order."""

    def __init__(self, parent: Job, registry: JobTypeRegistry) -> None:
        self._parent = parent
        self._registry = registry
        self._specs: list[NewJob] = []
        # A body may submit from threads of its own.
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._specs)

    @property
    def specs(self) -> list[NewJob]:
        with self._lock:
            return list(self._specs)

    def submit(
        self, type: str, payload: dict[str, Any] | None, options: dict[str, Any], now: datetime
    ) -> UUID:
        try:
            checked = ChildOptions.model_validate(options)
            spec = resolve(
                JobRequest(
                    type=type,
                    payload=payload or {},
                    **checked.model_dump(exclude={"correlation_id"}),
                    correlation_id=checked.correlation_id or self._parent.correlation_id,
                ),
                self._registry,
                owner_id=self._parent.owner_id,
                now=now,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'options'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise ChildJobRefused(f"child job refused: {problems}") from None
        except InvalidInput as exc:
            detail = f" ({exc.details})" if exc.details else ""
            raise ChildJobRefused(f"child job refused: {exc.message}{detail}") from None
        child_id = uuid4()
        with self._lock:
            if len(self._specs) >= MAX_CHILDREN_PER_ATTEMPT:
                raise ChildJobRefused(
                    f"child job refused: at most {MAX_CHILDREN_PER_ATTEMPT} per attempt"
                )
            self._specs.append(
                spec.model_copy(update={"id": child_id, "parent_id": self._parent.id})
            )
        return child_id
