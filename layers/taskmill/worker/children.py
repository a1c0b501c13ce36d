"""Child jobs a body submits (`context.submit`): checked at once, created with its success.

The children are only collected here. The worker creates them in the transaction that
records the attempt's success (`JobStore.succeed_with_children`), so a failed, timed-out,
cancelled or superseded attempt leaves none behind and a success never lacks its children.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field, StringConstraints, ValidationError

from taskmill.errors import InvalidInput, field_message
from taskmill.jobs.model import MAX_JSON_DEPTH, Job, NewJob, nested_deeper_than
from taskmill.jobs.options import JobOptions
from taskmill.jobs.retry import PermanentJobFailure
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.submit import JobRequest, resolve
from taskmill.settings import DEFAULT_MAX_PAYLOAD_BYTES

# Created in one statement with the parent's success; a fan-out wider than this is better
# split over several parents (each also counts against the owner's unfinished-jobs quota).
MAX_CHILDREN_PER_ATTEMPT = 1000
# Their payloads together: all of them travel in that one statement, and stay in the
# worker's memory until it runs (1,000 children of 256 KiB would be 256 MB).
MAX_CHILDREN_PAYLOAD_BYTES = 16 * 1024 * 1024


class ChildJobRefused(PermanentJobFailure):
    """`context.submit` refused a child (unknown type, invalid payload or option). Not
    retryable: the same body would submit the same child again."""


class ChildOptions(JobOptions):
    """What a body may set on a child besides type and payload: the options of
    `POST /v1/jobs`, with the same bounds, less `idempotency_key` (a child is created once,
    with its parent's success) and `webhook_url` (its address is checked by the API only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    correlation_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    # Checked by `resolve` (form, no `owner:` key, at most 4 with the type's templates).
    limit_keys: list[str] = Field(default_factory=list, max_length=4)


class Children:
    """The children one attempt has submitted so far, in order."""

    def __init__(
        self,
        parent: Job,
        registry: JobTypeRegistry,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self._parent = parent
        self._registry = registry
        self._max_payload_bytes = max_payload_bytes
        self._specs: list[NewJob] = []
        self._payload_bytes = 0
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
                f"{'.'.join(str(part) for part in e['loc']) or 'options'}: {field_message(e)}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise ChildJobRefused(f"child job refused: {problems}") from None
        except InvalidInput as exc:
            detail = f" ({exc.details})" if exc.details else ""
            raise ChildJobRefused(f"child job refused: {exc.message}{detail}") from None
        # As the API measures a create's (`ApiServices.check_payload_size`): a child is a job
        # like any other, and one larger than a create may hold would be created only to be
        # answered by no GET of it (nor of the list pages holding it).
        text = json.dumps(spec.payload, separators=(",", ":"))
        if nested_deeper_than(text):
            raise ChildJobRefused(
                f"child job refused: payload is nested deeper than {MAX_JSON_DEPTH} levels"
            )
        size = len(text.encode())
        if size > self._max_payload_bytes:
            raise ChildJobRefused(
                f"child job refused: payload is {size} bytes; the limit is "
                f"{self._max_payload_bytes}"
            )
        child_id = uuid4()
        with self._lock:
            if len(self._specs) >= MAX_CHILDREN_PER_ATTEMPT:
                raise ChildJobRefused(
                    f"child job refused: at most {MAX_CHILDREN_PER_ATTEMPT} per attempt"
                )
            if self._payload_bytes + size > MAX_CHILDREN_PAYLOAD_BYTES:
                raise ChildJobRefused(
                    f"child job refused: the payloads of one attempt's children are at most "
                    f"{MAX_CHILDREN_PAYLOAD_BYTES} bytes together; these would be "
                    f"{self._payload_bytes + size}"
                )
            self._payload_bytes += size
            self._specs.append(
                spec.model_copy(update={"id": child_id, "parent_id": self._parent.id})
            )
        return child_id
