"""Asynchronous DLQ redrives: a task row the API creates, the retry function works through
in chunks, and the API and CLI poll for progress."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from taskmill.aws import aws_errors
from taskmill.db import Database
from taskmill.errors import Conflict, DependencyUnavailable, NotFound
from taskmill.jobs.store import JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.queue.sqs import JobQueue
from taskmill.recovery import dlq
from taskmill.topology import Priority

CHUNK = 100
# How long a task keeps the DLQ messages it passes over hidden (see `run_task`): the redrive
# function's whole invocation (its timeout is Lambda's 15-minute maximum). If the task dies
# they reappear on their own after it; a task that runs longer (locally, on a thread) hides
# them again when it meets them again.
PASS_OVER_SECONDS = 15 * 60
ABANDONED = (
    "stopped without finishing: no progress for 15 minutes (its function timed out, crashed "
    "or never started); ask for a new redrive"
)
STOPPED_WITH_STACK = (
    "stopped without finishing: the local stack that ran it stopped; ask for a new redrive"
)


# A task of `%(priority)s` that may still hide messages: pending or running, with progress
# within `%(hold)s` seconds.
_LIVE = """
    SELECT id FROM redrive_tasks
    WHERE priority = %(priority)s AND status IN ('pending', 'running')
      AND updated_at > now() - make_interval(secs => %(hold)s)
    ORDER BY created_at LIMIT 1"""


def _still_running(priority: Priority, task_id: UUID) -> Conflict:
    # The message names the task itself: the console and the CLI show the message to people,
    # for whom a `{task_id}` placeholder is one more thing to look up.
    return Conflict(
        f"a background redrive of the {priority.value} DLQ is still running; "
        f"wait for it to end (GET /v1/dlq/redrives/{task_id}), then ask again",
        details={"task_id": str(task_id)},
    )


class RedriveTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    priority: Priority
    criteria: dict[str, Any]
    status: str
    redriven: int
    orphans: int
    purged: int
    error: str | None
    requested_by: UUID | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RedriveTaskStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self, priority: Priority, criteria: dict[str, Any], requested_by: UUID
    ) -> RedriveTask:
        """A new pending task; `Conflict` (naming it) while another task of the priority is
        live. A task hides the messages it passes over until it ends, so a second one on the
        same DLQ would not see them and would end `done` with them still there. Live: pending
        or running and with progress within `PASS_OVER_SECONDS` (the hold of what it hid:
        after that a task whose function died has hidden nothing and blocks no one).

        The lock (per priority, for the transaction) makes two requests at once take turns,
        and the insert, a statement of its own, sees the task the other committed."""
        with self._db.transaction() as tx:
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('taskmill.redrive_tasks:' || %s))",
                (priority.value,),
            )
            rows = tx.execute(
                "WITH live AS ("
                + _LIVE
                + """), created AS (
    INSERT INTO redrive_tasks (id, priority, criteria, requested_by)
    SELECT %(id)s, %(priority)s, %(criteria)s, %(by)s WHERE NOT EXISTS (SELECT 1 FROM live)
    RETURNING *
)
SELECT (SELECT to_jsonb(c) FROM created c) AS task, (SELECT id FROM live) AS live""",
                {
                    "id": uuid4(),
                    "priority": priority.value,
                    "criteria": Jsonb(criteria),
                    "by": requested_by,
                    "hold": PASS_OVER_SECONDS,
                },
            )
        row = rows[0]
        if row["task"] is None:
            raise _still_running(priority, row["live"])
        return RedriveTask.model_validate(row["task"])

    def live(self, priority: Priority) -> UUID | None:
        """The background task of the priority that may be hiding DLQ messages, if any."""
        rows = self._db.execute(_LIVE, {"priority": priority.value, "hold": PASS_OVER_SECONDS})
        return rows[0]["id"] if rows else None

    def refuse_while_live(self, priority: Priority) -> None:
        """`Conflict` (naming it) while a background task of the priority is live: a redrive
        in the request would not see the messages the task has hidden, so it would report
        their jobs as without a message and redrive only part of what was asked for."""
        task_id = self.live(priority)
        if task_id is not None:
            raise _still_running(priority, task_id)

    def get(self, task_id: UUID) -> RedriveTask:
        rows = self._db.execute("SELECT * FROM redrive_tasks WHERE id = %s", (task_id,))
        if not rows:
            raise NotFound("redrive task not found")
        return RedriveTask.model_validate(rows[0])

    def start(self, task_id: UUID) -> RedriveTask | None:
        """Claim a pending task (a duplicate async invocation finds nothing to do)."""
        rows = self._db.execute(
            "UPDATE redrive_tasks SET status = 'running', updated_at = now() "
            "WHERE id = %s AND status = 'pending' RETURNING *",
            (task_id,),
        )
        return RedriveTask.model_validate(rows[0]) if rows else None

    def progress(self, task_id: UUID, *, redriven: int, orphans: int, purged: int) -> bool:
        """Count a chunk's work; whether the task is still `running`. The counts are added
        whatever its status (the chunk's work is done), but a task the sweep has failed as
        abandoned (`fail_abandoned`) is not revived: it must stop, since a new task may now
        work on its DLQ."""
        rows = self._db.execute(
            "UPDATE redrive_tasks SET redriven = redriven + %s, orphans = orphans + %s, "
            "purged = purged + %s, "
            "updated_at = CASE WHEN status = 'running' THEN now() ELSE updated_at END "
            "WHERE id = %s RETURNING status",
            (redriven, orphans, purged, task_id),
        )
        return bool(rows) and rows[0]["status"] == "running"

    def fail_abandoned(self) -> list[UUID]:
        """Mark failed the tasks whose function died: `pending` or `running` with no
        progress for `PASS_OVER_SECONDS`. The redrive function records progress after every
        chunk and its timeout is Lambda's 15-minute maximum, so such a task has no function
        left (an async invocation that never ran, a timeout, a crash); what it hid has
        reappeared by then. Without this its row would say `running` for ever."""
        rows = self._db.execute(
            "UPDATE redrive_tasks SET status = 'failed', error = %(error)s, "
            "finished_at = now(), updated_at = now() "
            "WHERE status IN ('pending', 'running') "
            "AND updated_at < now() - make_interval(secs => %(hold)s) RETURNING id",
            {"error": ABANDONED, "hold": PASS_OVER_SECONDS},
        )
        return [row["id"] for row in rows]

    def fail_left_by_stopped_stack(self) -> list[UUID]:
        """Mark failed every `pending` or `running` task: for a local stack starting on its
        own database, whose previous process (the only one that runs tasks there, on a
        thread) is gone. Left live, such a task would refuse every redrive of its priority
        with a 409 until `fail_abandoned` ends it, 15 minutes on. The messages it hid are
        gone with the local SQS, which starts empty (an SQS of one's own shows them again
        when their hold ends, as after any task that died)."""
        rows = self._db.execute(
            "UPDATE redrive_tasks SET status = 'failed', error = %s, "
            "finished_at = now(), updated_at = now() "
            "WHERE status IN ('pending', 'running') RETURNING id",
            (STOPPED_WITH_STACK,),
        )
        return [row["id"] for row in rows]

    def finish(self, task_id: UUID, *, error: str | None = None) -> bool:
        """End a live task (whether it was live); one the sweep has failed as abandoned keeps
        that ending. A `pending` one ends here when its function could not be started."""
        rows = self._db.execute(
            "UPDATE redrive_tasks SET status = %s, error = %s, finished_at = now(), "
            "updated_at = now() WHERE id = %s AND status IN ('pending', 'running') RETURNING id",
            ("failed" if error else "done", error, task_id),
        )
        return bool(rows)


def run_task(
    db: Database,
    queue: JobQueue,
    registry: JobTypeRegistry,
    task_id: UUID,
    *,
    logger: logging.Logger | Any = None,
) -> RedriveTask:
    """Work through a task in chunks, recording progress after each, until the DLQ holds no
    message for it.

    What it redrives is what was dead-lettered when it was asked for, each job at most once,
    as SQS's own redrive moves only what was there when it started: a job that fails again
    while the task works (or fails for the first time after the task was created) lands in
    the DLQ and stays there for the next redrive; without this the task would redrive it
    chunk after chunk for as long as it keeps failing.

    Each scan reads the first messages the DLQ shows, so every message the task leaves there
    (another type, a job it already redrove, an orphan it keeps) is kept hidden until the task
    ends; the next scan reads on past them. It is done when a scan has read everything the
    DLQ still shows and found nothing more to redrive or purge. The queue need not be empty
    then: what it left is released for the next peek or redrive."""
    log = logger or logging.getLogger("taskmill.redrive")
    tasks = RedriveTaskStore(db)
    task = tasks.start(task_id)
    if task is None:
        return tasks.get(task_id)
    criteria = task.criteria
    remaining = int(criteria.get("limit") or 10**9)
    job_ids = {UUID(i) for i in criteria["job_ids"]} if criteria.get("job_ids") else None
    outcomes = Outcomes(JobStore(db), queue, registry, logger=logger)
    redriven: set[UUID] = set()
    passed_over: dict[str, str] = {}  # message id -> its latest receipt handle
    try:
        while remaining > 0:
            result = dlq.redrive(
                outcomes,
                task.priority,
                actor=f"redrive-task:{task.id}",
                job_ids=job_ids,
                job_type=criteria.get("type"),
                limit=min(CHUNK, remaining),
                purge_orphans=bool(criteria.get("purge_orphans")),
                exclude=redriven,
                failed_before=task.created_at,
                pass_over_seconds=PASS_OVER_SECONDS,
            )
            newly_passed = result.passed_over.keys() - passed_over.keys()
            passed_over.update(result.passed_over)
            redriven.update(result.redriven)
            still_running = tasks.progress(
                task.id,
                redriven=len(result.redriven),
                orphans=len(result.orphans),
                purged=len(result.purged),
            )
            if not still_running:
                # Only where a chunk can outlast the hold: locally, on a thread, with SQS or
                # Postgres stalled for longer than it (a Lambda is dead by then).
                log.warning(
                    "redrive task stopped: it was failed as abandoned while it ran",
                    extra={"task_id": str(task.id)},
                )
                break
            remaining -= len(result.redriven)
            # Going on reads further only if this scan stopped short of the end and hid
            # messages it had not seen before (a scan of messages seen already, their hold
            # lapsed, is no progress).
            reads_further = not result.complete and bool(newly_passed)
            if not result.redriven and not result.purged and not reads_further:
                break
    except Exception as exc:
        # The task row must not stay `running` forever: record the failure, then re-raise
        # so the invocation fails visibly too.
        tasks.finish(task.id, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        _release(queue, task.priority, passed_over, log)
    if tasks.finish(task.id):
        log.info("redrive task done", extra={"task_id": str(task.id)})
    return tasks.get(task.id)


def _release(queue: JobQueue, priority: Priority, hidden: dict[str, str], log: Any) -> None:
    """Show the messages a task passed over again, for the next peek or redrive."""
    try:
        queue.hide_dead_letters(priority, list(hidden.values()), 0)
    except DependencyUnavailable:
        # Not worth failing the task over (or hiding why it failed): they reappear on their
        # own when their hold lapses.
        log.warning(
            "could not release the DLQ messages a redrive passed over",
            extra={"messages": len(hidden), "hidden_for_seconds": PASS_OVER_SECONDS},
        )


class TaskLauncher(Protocol):
    def launch(self, task_id: UUID) -> None: ...


class LambdaLauncher:
    """In AWS: invoke the redrive function asynchronously (it retries on its own failure)."""

    def __init__(self, function_name: str, client_factory: Callable[[], Any]) -> None:
        self.function_name = function_name
        self.client_factory = client_factory

    def launch(self, task_id: UUID) -> None:
        try:
            self.client_factory().invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=json.dumps({"task_id": str(task_id)}).encode(),
            )
        except aws_errors() as exc:
            raise DependencyUnavailable("the redrive function could not be started") from exc


class ThreadLauncher:
    """Locally (no Lambda): run the task on a background thread of the same process."""

    def __init__(self, run: Callable[[UUID], Any]) -> None:
        self.run = run

    def launch(self, task_id: UUID) -> None:
        threading.Thread(
            target=self.run, args=(task_id,), name=f"redrive-{task_id}", daemon=True
        ).start()
