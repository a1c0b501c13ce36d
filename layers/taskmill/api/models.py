"""Request and response models: what the handler validates and what OpenAPI documents."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from taskmill.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from taskmill.flow.limits import MAX_RATE_PERIOD_SECONDS, MIN_RATE_PERIOD_SECONDS
from taskmill.jobs.model import LAST_ERROR_MAX, PROGRESS_MESSAGE_MAX, Job, non_finite_at
from taskmill.jobs.options import STRICT_JSON, Instant, JobOptions, JsonUuid, PriorityName, Tag
from taskmill.jobtypes.destinations import parse as parse_destination

# Scripts written together in one word: Japanese mixes kana and kanji, Korean hangul and hanja.
_SCRIPT_FAMILIES = {
    "HIRAGANA": "CJK",
    "KATAKANA": "CJK",
    "KATAKANA-HIRAGANA": "CJK",
    "HALFWIDTH": "CJK",
    "HANGUL": "CJK",
    "BOPOMOFO": "CJK",
}


def _scripts(part: str) -> set[str]:
    """The scripts of the letters of `part` (the first word of each letter's Unicode name:
    LATIN, CYRILLIC, GREEK, CJK...)."""
    found = set()
    for ch in part:
        if unicodedata.category(ch).startswith("L"):
            word = unicodedata.name(ch, "?").split(" ", 1)[0]
            found.add(_SCRIPT_FAMILIES.get(word, word))
    return found


def _plain_email(value: str) -> str:
    # One spelling per address, so no account can be shown as another's in the users list
    # or the audit log: compatibility forms (fullwidth letters) become their plain letters,
    # and invisible format characters (zero-width space, direction marks) are refused, as
    # is a part (the local part, a label of the domain) spelt in more than one script:
    # root@example.com with Cyrillic o's (U+043E) reads as root@example.com (the rule browsers
    # apply to domain names). An address wholly in another script is still an address.
    value = unicodedata.normalize("NFKC", value)
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValueError("an e-mail cannot contain invisible or control characters")
    local, _, domain = value.rpartition("@")
    for part in [local, *domain.split(".")]:
        scripts = _scripts(part)
        if len(scripts) > 1:
            raise ValueError(
                f"an e-mail cannot mix letters of different scripts in one part ({part!r}: "
                f"{', '.join(sorted(s.lower() for s in scripts))}); it would read as another "
                "address"
            )
    return value


Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
    AfterValidator(_plain_email),
]
Password = Annotated[
    str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
]
Role = Literal["admin", "user", "worker"]
LimitKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9:._-]{1,128}$")]


def _http_url(value: str) -> str:
    # The URL's form (http or https, a host, no credentials, a valid port); whether its host
    # may be called is checked by the route, which knows TASKMILL_HTTP_ALLOW_PRIVATE.
    parse_destination(value)
    return value


HttpUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_http_url)]


class Strict(BaseModel):
    """A request body: unknown fields refused, and no value of another JSON type coerced
    (`options.STRICT_JSON`)."""

    model_config = STRICT_JSON


class Credentials(Strict):
    email: Email
    password: Password


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=10, max_length=512)]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class WebhookSecretOut(BaseModel):
    """The caller's webhook key: what their receivers verify `Taskmill-Signature` with."""

    webhook_secret: str
    signature_header: str
    signature_format: str


class UserOut(BaseModel):
    id: UUID
    email: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserList(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class UserCreate(Strict):
    email: Email
    password: Password
    role: Role = "user"


class UserUpdate(Strict):
    email: Email | None = None
    password: Password | None = None
    disabled: bool | None = None
    current_password: Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH)] | None = (
        Field(
            default=None,
            description="The account's password: needed to change one's own `email` or "
            "`password` (an admin changing another account's needs none).",
        )
    )


class UserDelete(Strict):
    current_password: Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH)] | None = (
        Field(
            default=None,
            description="The account's password: needed to delete one's own account (an "
            "admin deleting another account sends no body).",
        )
    )


class RoleChange(Strict):
    role: Role


class JobCreate(JobOptions):
    # An example that works as is: Swagger UI fills the body of Try-it-out with it, and
    # schemathesis creates jobs with it (its stateful phase then works on real ones).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"type": "sleep", "payload": {"seconds": 2}}]},
    )

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="A registered job type (`GET /v1/job-types`)."
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="Valid for the type's `payload_schema`."
    )
    webhook_url: HttpUrl | None = None
    limit_keys: list[LimitKey] = Field(
        default_factory=list,
        max_length=4,
        description="Keys whose limits this job obeys (`/v1/limits`), besides its type's and "
        "its owner's `owner:<id>`; at most 4 in all besides the owner's.",
    )


class JobBatchCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"jobs": [{"type": "noop"}, {"type": "sleep", "payload": {"seconds": 1}}]}]
        },
    )

    jobs: list[JobCreate] = Field(min_length=1, max_length=100)


class JobPatch(Strict):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    priority: PriorityName | None = None
    run_at: Instant | None = None


class JobOut(BaseModel):
    """A job as clients see it (the fields of SPEC §2)."""

    id: UUID
    owner_id: UUID
    type: str
    payload: dict[str, Any]
    priority: PriorityName
    status: str
    attempts: int
    max_attempts: int
    timeout_seconds: int
    run_at: datetime
    idempotency_key: str | None
    depends_on: list[UUID]
    webhook_url: str | None
    name: str | None
    description: str | None
    tags: list[str]
    limit_keys: list[str]
    progress: int
    progress_message: str | None
    result: Any
    last_error: str | None
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_until: datetime | None
    redrive_count: int
    parent_id: UUID | None = Field(
        description="The job whose body submitted this one (`context.submit`); null otherwise.",
    )

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls.model_validate(job.model_dump())


class ClaimedJob(JobOut):
    lease_token: UUID


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class JobBatchOut(BaseModel):
    items: list[JobOut]


class JobStatusOut(BaseModel):
    id: UUID
    status: str
    progress: int
    progress_message: str | None
    attempts: int
    cancel_requested: bool = Field(
        description="A cancel was asked for while the job ran: it stays `running` until its "
        "body stops, then ends `cancelled`."
    )
    updated_at: datetime


class JobEventOut(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    actor: str = Field(
        description="Who made the transition: `role:account-id` for a caller of the API, "
        "otherwise the platform's part (`worker`, `recovery`, `schedule:<id>`, ...)."
    )
    actor_email: str | None = Field(
        description="The acting account's current e-mail: shown to admins, and to a user for "
        "their own actions; null for the platform's parts and for a deleted account."
    )
    detail: dict[str, Any]


class JobEventList(BaseModel):
    items: list[JobEventOut] = Field(description="Transitions, oldest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class JobTypeOut(BaseModel):
    name: str
    description: str
    external: bool
    payload_schema: dict[str, Any]
    defaults: dict[str, Any]
    limit_keys: list[str] = Field(description="Limit key templates every job of the type holds.")
    paused: bool


class ClaimRequest(Strict):
    # An empty list is refused rather than read as no filter: a worker configured with no
    # types would otherwise hold the leases of jobs it cannot run.
    types: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="The external types this worker runs; omit (or null) for every type. A "
        "name that is not a declared external type (unknown, or a type the platform's own "
        "workers run) is refused with 400, each named in `details`.",
    )
    limit: int = Field(default=1, ge=1, le=10)


class LeaseRequest(Strict):
    lease_token: JsonUuid


class ProgressRequest(Strict):
    lease_token: JsonUuid
    percent: int = Field(ge=0, le=100)
    message: Annotated[str, StringConstraints(max_length=PROGRESS_MESSAGE_MAX)] | None = None


def _json_numbers(value: Any) -> Any:
    # The error's location is the offending number's, under `result`.
    at = non_finite_at(value)
    if at is None:
        return value
    raise ValidationError.from_exception_data(
        "result",
        [
            InitErrorDetails(
                type=PydanticCustomError(
                    "json_number", "NaN and Infinity are not JSON numbers; send a number or null"
                ),
                loc=at,
                input=None,
            )
        ],
    )


class CompleteRequest(Strict):
    lease_token: JsonUuid
    result: Annotated[Any, AfterValidator(_json_numbers)] = None


class FailRequest(Strict):
    lease_token: JsonUuid
    error: Annotated[str, StringConstraints(min_length=1, max_length=LAST_ERROR_MAX)]
    retryable: bool = True


class QueueOut(BaseModel):
    priority: PriorityName
    visible: int
    in_flight: int
    delayed: int
    dlq_depth: int
    oldest_age_seconds: float | None
    paused: bool


class QueueList(BaseModel):
    items: list[QueueOut]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor_id: UUID | None
    actor_email: str | None = Field(
        description="The acting account's current e-mail; null without an actor or once the "
        "account is deleted."
    )
    action: str
    target_type: str | None
    target_id: str | None
    detail: dict[str, Any]
    correlation_id: str | None


class AuditList(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    queues: bool


class RateIn(Strict):
    limit: int = Field(ge=1, le=1_000_000, description="Starts per period, and the burst.")
    period_seconds: float = Field(
        ge=MIN_RATE_PERIOD_SECONDS,
        le=MAX_RATE_PERIOD_SECONDS,
        description="A second to a day (2 per second is `limit` 2, `period_seconds` 1).",
    )


class RateOut(BaseModel):
    # Not `RateIn`: a limit stored before the one-second minimum is shown as it is.
    limit: int
    period_seconds: float


class LimitPut(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"concurrency": 2, "rate": None}]},
    )

    concurrency: int | None = Field(
        default=None, ge=0, le=1_000_000, description="At most this many running at once."
    )
    rate: RateIn | None = Field(
        default=None, description="A token bucket: `limit` starts per `period_seconds`."
    )


class LimitUseOut(BaseModel):
    running: int = Field(description="Running jobs holding the key.")
    started_in_window: int | None = Field(
        description="Jobs holding the key whose current attempt started in the rate's last "
        "period (null without a rate)."
    )
    tokens_available: float | None = Field(description="The rate's bucket now (null without).")


class LimitOut(BaseModel):
    key: str
    concurrency: int | None
    rate: RateOut | None
    source: Literal["limit", "default"] = Field(
        description="`default`: the environment's default for every `owner:` key."
    )
    updated_at: datetime | None
    updated_by: str | None
    use: LimitUseOut | None


class LimitList(BaseModel):
    items: list[LimitOut]
    next_cursor: str | None


class PauseOut(BaseModel):
    kind: Literal["queue", "type"]
    name: str
    paused: bool
    paused_at: datetime | None
    paused_by: str | None
