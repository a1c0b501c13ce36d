"""What a client or a job body may set on a new job besides its type and payload, with one
set of bounds: `POST /v1/jobs` (`taskmill.api.models.JobCreate`) and `context.submit`
(`taskmill.worker.children.ChildOptions`) both take these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from taskmill.topology import MAX_ATTEMPTS_LIMIT

PriorityName = Literal["high", "normal", "low"]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _representable(value: datetime) -> datetime:
    # 0001-01-01T00:00+14:00 is a valid ISO 8601 instant that falls in 1 BC in UTC: Postgres
    # stores it, but no reader of the row (the API's lists, the sweep) can load it back.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 in UTC") from None


def _iso_text(value: object) -> object:
    # Pydantic reads a number, or a string of digits, as seconds (or milliseconds) since 1970:
    # `"run_at": 3600`, meant as "in an hour", ran the job at once. JSON carries an instant as
    # ISO 8601 text (SPEC §3); a job body's `context.submit` may pass a datetime.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    raise ValueError(
        "must be an ISO 8601 date and time with a zone, such as 2030-01-01T09:00:00Z, not a "
        "number (delay_seconds starts a job a number of seconds from now)"
    )


# Request models validate strictly (`STRICT_JSON`): a JSON `true` is no count and `"10"` no
# number. Instants and UUIDs are the exception, since JSON can only carry them as text.
Instant = Annotated[
    AwareDatetime, BeforeValidator(_iso_text), Field(strict=False), AfterValidator(_representable)
]
JsonUuid = Annotated[UUID, Field(strict=False)]
STRICT_JSON = ConfigDict(extra="forbid", strict=True)


class JobOptions(BaseModel):
    model_config = STRICT_JSON

    priority: PriorityName | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_LIMIT)
    timeout_seconds: int | None = Field(default=None, ge=1, le=86400)
    backoff_base_seconds: float | None = Field(default=None, ge=0, le=86400)
    backoff_max_seconds: float | None = Field(default=None, ge=0, le=7 * 86400)
    run_at: Instant | None = None
    delay_seconds: float | None = Field(
        default=None,
        ge=0,
        le=365 * 86400,
        description="Start this many seconds from now; not together with `run_at`.",
    )
    depends_on: list[JsonUuid] = Field(default_factory=list, max_length=100)
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _one_start_time(self) -> Self:
        # Both given, one would be silently dropped: say so instead of guessing which.
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        return self
