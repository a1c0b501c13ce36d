"""The context a job body receives: progress, cancellation, remaining time, logger, job,
the results of its dependencies and the child jobs it submits."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from taskmill.db.text import storable_text
from taskmill.errors import DependencyUnavailable
from taskmill.jobs.model import PROGRESS_MESSAGE_MAX, Job, log_keys
from taskmill.jobs.retry import AttemptEnded, PermanentJobFailure
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.settings import DEFAULT_MAX_PAYLOAD_BYTES
from taskmill.worker.children import Children
from taskmill.worker.services import PlatformServices

# How often `cancelled()` may ask Postgres; a body polling in a tight loop costs one query
# per second, not one per call.
CANCEL_POLL_SECONDS = 1.0
# How often `progress()` may write to Postgres: a body reporting every item of a long loop
# costs an UPDATE of its row a second, not one per call. The latest report is kept and
# written when the second has passed, or when the body ends.
PROGRESS_WRITE_SECONDS = 1.0


def progress_report(percent: Any, message: Any) -> tuple[int, str | None]:
    """A body's progress report as the row keeps it. The message is cut to the API's
    `PROGRESS_MESSAGE_MAX` characters (it is in every poll of the job), and a character
    Postgres cannot store (NUL, an unpaired surrogate) becomes U+FFFD: a progress report
    is not worth failing the job over, but a report that is not one is the body's bug."""
    number = percent if isinstance(percent, int | float) else math.nan
    if not math.isfinite(number):
        raise ValueError(f"progress percent must be a finite number, not {percent!r}")
    if message is not None and not isinstance(message, str):
        raise ValueError(f"progress message must be text or None, not {type(message).__name__}")
    if message is not None:
        message = storable_text(message[:PROGRESS_MESSAGE_MAX])
    return max(0, min(100, int(number))), message


# The standard library refuses an `extra` key naming a LogRecord attribute ("Attempt to
# overwrite 'message' in LogRecord", a KeyError raised in the body). Such keys are renamed.
_RECORD_KEYS = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class JobLogger:
    """The logger a job body gets: every line carries the job id and correlation id.

    Called like the standard library's loggers: `%`-style arguments, `exc_info`,
    `stack_info`, `stacklevel` and `extra` pass through to the platform's logger, and a
    line's file, line and function are the body's. The job's own keys win over a body's
    `extra`, so a line always names the job it came from. An `extra` key the standard
    library keeps for itself (`message`, `name`, `lineno`, ... any LogRecord attribute) is
    logged as `extra_<key>` (`extra_extra_<key>` if that is taken, and so on) instead of
    failing the body with a KeyError: a log line never fails its job."""

    def __init__(self, logger: logging.Logger | Any, job: Job) -> None:
        self._logger = logger
        self._keys = log_keys(job)
        # Frames between the body and the logger's own caller: `_log` and the level
        # method. Powertools' Logger wraps the standard one in a frame of its own (its
        # methods default to stacklevel=2 for it); the standard library skips its own.
        self._frames = 2 if isinstance(logger, logging.Logger | logging.LoggerAdapter) else 3

    def _extra(self, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        clashing = []
        for key, value in (extra or {}).items():
            if key in _RECORD_KEYS:
                clashing.append((key, value))
            else:
                merged[key] = value
        for key, value in clashing:
            renamed = f"extra_{key}"
            while renamed in merged or renamed in self._keys:
                renamed = f"extra_{renamed}"
            merged[renamed] = value
        return {**merged, **self._keys}

    def _log(
        self,
        level: str,
        message: object,
        args: tuple[object, ...],
        extra: Mapping[str, Any] | None,
        options: dict[str, Any],
    ) -> None:
        stacklevel = options.pop("stacklevel", 1) + self._frames
        getattr(self._logger, level)(
            message, *args, extra=self._extra(extra), stacklevel=stacklevel, **options
        )

    def debug(
        self, message: object, *args: object, extra: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        self._log("debug", message, args, extra, options)

    def info(
        self, message: object, *args: object, extra: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        self._log("info", message, args, extra, options)

    def warning(
        self, message: object, *args: object, extra: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        self._log("warning", message, args, extra, options)

    def error(
        self, message: object, *args: object, extra: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        self._log("error", message, args, extra, options)

    def exception(
        self, message: object, *args: object, extra: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        self._log("exception", message, args, extra, options)


class JobContext:
    def __init__(
        self,
        job: Job,
        store: JobStore,
        services: PlatformServices,
        *,
        deadline: float,
        logger: logging.Logger | Any,
        registry: JobTypeRegistry,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.job = job
        self.logger = JobLogger(logger, job)
        self.services = services
        self._store = store
        self._deadline = deadline
        self._clock = clock
        self._stop = threading.Event()
        self._last_poll = clock()
        self._cancel_seen = False
        self.external_ref: str | None = None
        self.children = Children(job, registry, max_payload_bytes=max_payload_bytes)
        self._wall_clock = wall_clock
        self._dependency_results: dict[str, Any] | None = None
        self._progress_lock = threading.Lock()
        self._progress_written = -math.inf
        self._progress_pending: tuple[int, str | None] | None = None

    @property
    def lease_token(self) -> Any:
        return self.job.lease_token

    def begin(self, deadline: float) -> None:
        """The body starts now; `remaining_time()` counts down to `deadline`."""
        self._deadline = deadline

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report how far the job is: `percent` is clamped to 0-100; `message` is kept as
        `POST /v1/jobs/{id}/progress` keeps one (see `progress_report`). A percent that is
        not a finite number or a message that is not text raise `ValueError` in the body.
        Written at most once per `PROGRESS_WRITE_SECONDS`; the latest report always is."""
        percent, message = progress_report(percent, message)
        if self._stop.is_set() or self.job.lease_token is None:
            return
        now = self._clock()
        with self._progress_lock:
            if now - self._progress_written < PROGRESS_WRITE_SECONDS:
                self._progress_pending = (percent, message)  # written later, or at the end
                return
            self._progress_written, self._progress_pending = now, None
        self._write_progress(percent, message)

    def flush_progress(self, *, due_only: bool = False) -> None:
        """Write the latest progress report a write interval held back: when the body ends,
        and (`due_only`) once its interval has passed, so a body that reports twice and then
        works for minutes without a word shows its second report, not its first."""
        if self._progress_pending is None:
            return  # the usual case, read without the lock: nothing was held back
        now = self._clock()
        with self._progress_lock:
            if self._progress_pending is None or (
                due_only and now - self._progress_written < PROGRESS_WRITE_SECONDS
            ):
                return
            pending, self._progress_pending = self._progress_pending, None
            self._progress_written = now
        if self._stop.is_set() or self.job.lease_token is None:
            return
        try:
            self._write_progress(*pending)
        except Exception:  # a progress report never fails an attempt that has ended
            self.logger.exception("progress report lost")

    def _write_progress(self, percent: int, message: str | None) -> None:
        assert self.job.lease_token is not None
        try:
            self._store.set_progress(self.job.id, self.job.lease_token, percent, message)
        except DependencyUnavailable:
            # A progress report is not worth failing the job over: the platform's trouble is
            # not the job's, and the next report (or the result) brings it up to date.
            self.logger.warning("progress report lost: the database did not answer")

    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or must stop before the deadline."""
        if self._stop.is_set() or self._cancel_seen:
            return True
        now = self._clock()
        if now - self._last_poll >= CANCEL_POLL_SECONDS:
            self._last_poll = now
            try:
                current = self._store.get_many([self.job.id])
            except DependencyUnavailable:
                return self._cancel_seen  # unknown for now: carry on; ask again later
            if (
                not current
                or current[0].cancel_requested
                or current[0].lease_token != self.job.lease_token
            ):
                self._cancel_seen = True
        return self._cancel_seen

    @property
    def cancel_observed(self) -> bool:
        return self._cancel_seen

    def remaining_time(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def stop(self) -> None:
        """Ask the body to stop (timeout or deadline); later progress reports are dropped."""
        self._stop.set()

    @property
    def dependency_results(self) -> dict[str, Any]:
        """The results of this job's `depends_on` jobs, keyed by job id (a string). Read
        on first use (one statement), never for a job without dependencies. A job runs only
        once every dependency succeeded (one that fails or is cancelled cancels it instead),
        so each is here, unless it was deleted after this job was released."""
        if self._dependency_results is None:
            self._dependency_results = (
                self._store.results_of(self.job.depends_on, owner_id=self.job.owner_id)
                if self.job.depends_on
                else {}
            )
        return self._dependency_results

    def submit(self, type: str, payload: dict[str, Any] | None = None, **options: Any) -> UUID:
        """Submit a child job, created only together with this attempt's success: a failed
        attempt leaves none, a success never lacks them. Returns the child's id, which a
        later `submit` may name in `depends_on`. The child is checked now (unknown type,
        invalid payload or option raise `ChildJobRefused`); it is owned by this job's owner,
        counts against their unfinished-jobs quota and carries `parent_id`. Options: those
        of `POST /v1/jobs` except `idempotency_key` and `webhook_url`."""
        if self.external_ref is not None:
            raise PermanentJobFailure("a job continuing elsewhere cannot submit child jobs")
        return self.children.submit(type, payload, options, self._wall_clock())

    def run_elsewhere(self, ref: str) -> None:
        """Mark the job as continuing outside the worker (an ECS task): it stays `running`
        and finishes when the completion event for `ref` arrives. `AttemptEnded` if this
        attempt is no longer the job's (the caller stops what it started)."""
        if self.children:
            # Its success is recorded by the completion event, which knows nothing of them.
            raise PermanentJobFailure("a job that submitted child jobs cannot continue elsewhere")
        token = self.job.lease_token
        if token is not None and self._store.set_external_ref(self.job.id, token, ref) is None:
            # Recorded nowhere, the work would run with nobody waiting for it (and no sweep
            # able to stop it) beside the next attempt's.
            raise AttemptEnded(
                f"the attempt ended before its work could be recorded as continuing elsewhere "
                f"({ref})"
            )
        self.external_ref = ref
