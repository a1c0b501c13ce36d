"""Domain errors. The API maps each to one HTTP status and the SPEC's error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TaskmillError(Exception):
    """Base of every error a client may see. `code` is stable; `message` is human."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        # Which of a batch's requests it is about (`submit` sets it; the batch route names
        # the job, `jobs[i]`, in the message).
        self.row: int | None = None

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the envelope."""
        return {}


class InvalidInput(TaskmillError):
    status = 400
    code = "invalid_input"


class Unauthorized(TaskmillError):
    status = 401
    code = "unauthorized"


class Forbidden(TaskmillError):
    status = 403
    code = "forbidden"


class NotFound(TaskmillError):
    status = 404
    code = "not_found"


class MethodNotAllowed(TaskmillError):
    """A path a route serves, asked with a method none of its routes takes; `allowed` are
    those that do (the `Allow` header)."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: list[str]) -> None:
        joined = ", ".join(allowed)
        super().__init__(
            f"this path does not take {method.upper()}; it takes {joined}",
            details={"allowed": allowed},
        )
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class Conflict(TaskmillError):
    status = 409
    code = "conflict"


class IdempotencyMismatch(Conflict):
    code = "idempotency_mismatch"


class DependencyFailed(Conflict):
    """A job cannot run again while one of its dependencies failed, was cancelled or was
    deleted (`details` names each); retrying the dependency first lifts it."""

    code = "dependency_failed"


class AttemptTimedOut(Conflict):
    """A report that would keep an attempt going past its job's `timeout_seconds`: the
    attempt's time is up (its worker may still complete or fail it within the lease)."""

    code = "attempt_timed_out"


class PayloadTooLarge(TaskmillError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(TaskmillError):
    """A request body that is not JSON (or says it is not)."""

    status = 415
    code = "unsupported_media_type"


class QuotaExceeded(TaskmillError):
    status = 429
    code = "quota_exceeded"


class TooManyAttempts(TaskmillError):
    """Login or sign-up throttled; `retry_after` seconds until the window ends."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DependencyUnavailable(TaskmillError):
    """Postgres or SQS is unreachable; the operation did not happen (or is safe to retry)."""

    status = 503
    code = "dependency_unavailable"


class LockTimeout(DependencyUnavailable):
    """A statement gave up waiting for a lock (`lock_timeout`); nothing of it happened."""


class QueueUnavailable(DependencyUnavailable):
    """An SQS call failed (timeout, throttling, a missing queue, no permission)."""


class SettingsError(RuntimeError):
    """The function's configuration is incomplete; raised at cold start, never per request."""


def field_message(error: Mapping[str, Any]) -> str:
    """A pydantic error's message as a client should read it: a validator's own sentence
    without the "Value error, " pydantic puts before it."""
    return str(error.get("msg", "")).removeprefix("Value error, ")
