"""SQS message move tasks (`StartMessageMoveTask`, `ListMessageMoveTasks`,
`CancelMessageMoveTask`) for the local SQS endpoint. They are what the AWS console's "Start DLQ
redrive" calls; moto 5.2.5 answers them with a 500, so nobody could try a console redrive of
Taskmill's DLQs without an AWS account. Patched into moto's SQS in-process (the local stack's
`ThreadedMotoServer` runs in the same process), for both the JSON and the query protocol, and
pinned to the moto version it was written against: another version fails loudly instead of
being patched blindly.

Semantics follow AWS's documentation and its recorded answers: a task moves the messages that
were visible in the source queue (a DLQ: some queue's RedrivePolicy targets it) when it
started, oldest first, in the background, at most `MaxNumberOfMessagesPerSecond`; each moved
message is a new message (same body, message attributes and trace header) on the destination
and the original is deleted. Without `DestinationArn` a message goes back to the queue SQS
dead-lettered it from; a message that was *sent* to the DLQ has no such queue, and the task
fails with `CouldNotDetermineMessageSource`, as it does in AWS. One running task per source.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PATCHED_MOTO_VERSION = "5.2.5"
MAX_MESSAGES_PER_SECOND = 500
MAX_LISTED_TASKS = 10

RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
CANCELLED = "CANCELLED"
FAILED = "FAILED"

# Set on moto's Message objects. Strings only: every receive returns a copy of the message.
_CURRENT_QUEUE_ATTR = "_taskmill_queue_arn"
_DLQ_SOURCE_ATTR = "_taskmill_dead_letter_source_arn"
_TASKS_ATTR = "_taskmill_message_move_tasks"  # on the backend, so moto's reset() drops them

# One lock for every task registry and every move: moves are rare and short, and a single
# lock makes "one running task per source" and "nothing moves after a cancel" hold simply.
_lock = threading.RLock()
_applied = False


@dataclass
class MoveTask:
    task_id: str
    source: Any  # moto.sqs.models.Queue
    destination_arn: str | None
    max_per_second: int | None
    pending: list[Any]  # the source's visible messages when the task started, oldest first
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    moved: int = 0
    status: str = RUNNING
    failure_reason: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def to_move(self) -> int:
        return len(self.pending)

    @property
    def handle(self) -> str:
        text = json.dumps({"taskId": self.task_id, "sourceArn": self.source.queue_arn})
        return base64.b64encode(text.encode()).decode()

    def entry(self) -> dict[str, Any]:
        """One `ListMessageMoveTasksResultEntry`: optional members only when AWS sends them."""
        entry: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source.queue_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == RUNNING:
            entry["TaskHandle"] = self.handle
        if self.destination_arn is not None:
            entry["DestinationArn"] = self.destination_arn
        if self.max_per_second is not None:
            entry["MaxNumberOfMessagesPerSecond"] = self.max_per_second
        if self.failure_reason is not None:
            entry["FailureReason"] = self.failure_reason
        return entry


def _tasks(backend: Any) -> dict[str, list[MoveTask]]:
    """Tasks per source ARN, oldest first."""
    registry: dict[str, list[MoveTask]] = backend.__dict__.setdefault(_TASKS_ATTR, {})
    return registry


def _queue_by_arn(backend: Any, arn: str) -> Any:
    name = arn.rsplit(":", 1)[-1]
    queue = backend.queues.get(name)
    return queue if queue is not None and queue.queue_arn == arn else None


def _is_dead_letter_queue(backend: Any, queue: Any) -> bool:
    return any(other.dead_letter_queue is queue for other in backend.queues.values())


def _run(backend: Any, task: MoveTask) -> None:
    interval = 1.0 / task.max_per_second if task.max_per_second else 0.0
    for message in task.pending:
        with _lock:
            if task.status != RUNNING:
                return
            moved = _move_one(backend, task, message)
            if task.status != RUNNING:
                return
        if moved and interval and task.stopped.wait(interval):
            return
    with _lock:
        if task.status == RUNNING:
            task.status = COMPLETED
        task.stopped.set()


def _fail(task: MoveTask, reason: str) -> bool:
    task.status = FAILED
    task.failure_reason = reason
    task.stopped.set()
    return False


def _move_one(backend: Any, task: MoveTask, message: Any) -> bool:
    """Move one message (the caller holds `_lock`). False when it was not moved: gone from the
    source, received by a consumer meanwhile, expired, or the task failed on it."""
    from moto.sqs.exceptions import SQSException

    source = task.source
    if backend.queues.get(source.name) is not source:
        return _fail(task, "AWS.SimpleQueueService.NonExistentQueue")
    if message not in source._messages or not message.visible or message.delayed:
        return False
    if not backend.is_message_valid_based_on_retention_period(source.name, message):
        return False
    target_arn = task.destination_arn or getattr(message, _DLQ_SOURCE_ATTR, None)
    if target_arn is None:
        return _fail(task, "CouldNotDetermineMessageSource")
    target = _queue_by_arn(backend, target_arn)
    if target is None:
        return _fail(task, "AWS.SimpleQueueService.NonExistentQueue")
    trace = {
        name: value
        for name, value in (message.system_attributes or {}).items()
        if name == "AWSTraceHeader"
    }
    try:
        backend.send_message(
            target.name,
            message.body,
            message_attributes=copy.deepcopy(message.message_attributes),
            system_attributes=copy.deepcopy(trace) or None,
        )
    except SQSException as error:  # e.g. larger than the destination's MaximumMessageSize
        return _fail(task, error.code)
    # A consumer may have deleted it while we sent: the copy stands, as after AWS's own race.
    with contextlib.suppress(ValueError):
        source._messages.remove(message)
    source.pending_messages.discard(message)
    task.moved += 1
    return True


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        import moto
        from moto.core.responses import ActionResult
        from moto.core.utils import get_service_model
        from moto.sqs.exceptions import InvalidParameterValue, MissingParameter, SQSException
        from moto.sqs.models import Queue
        from moto.sqs.responses import SQSResponse

        if moto.__version__ != PATCHED_MOTO_VERSION:
            raise RuntimeError(
                f"local/taskmill_local/moto_move_tasks.py patches moto {PATCHED_MOTO_VERSION}, not "
                f"{moto.__version__}: check whether moto implements message move tasks now "
                "and update or drop the patch"
            )
        actions = ("start_message_move_task", "list_message_move_tasks", "cancel_message_move_task")
        for action in actions:
            if hasattr(SQSResponse, action):
                raise RuntimeError(f"moto's SQSResponse already has {action}: drop the patch")

        class NotFound(SQSException):
            code = "ResourceNotFoundException"

        class Unsupported(SQSException):
            code = "UnsupportedOperation"

        def not_found(parameter: str) -> NotFound:
            return NotFound(
                f"The resource that you specified for the {parameter} parameter doesn't exist."
            )

        def with_404(action: Callable[[Any], Any]) -> Callable[[Any], Any]:
            # AWS answers ResourceNotFoundException with 404; botocore's model gives it no
            # status, so moto would send 400.
            @functools.wraps(action)
            def respond(self: Any) -> Any:
                try:
                    return action(self)
                except NotFound as error:
                    _, headers, body = self.serialized(ActionResult(error))
                    headers["status"] = 404
                    return body, headers

            return respond

        def required(self: Any, name: str) -> Any:
            value = self._get_param(name)
            if value is None:
                raise MissingParameter(name)
            return value

        def source_queue(self: Any, arn: str) -> Any:
            queue = _queue_by_arn(self.sqs_backend, arn)
            if queue is None:
                raise not_found("SourceArn")
            return queue

        def start_message_move_task(self: Any) -> Any:
            backend = self.sqs_backend
            source_arn = required(self, "SourceArn")
            destination_arn = self._get_param("DestinationArn")
            rate = self._get_param("MaxNumberOfMessagesPerSecond")
            if rate is not None and not 1 <= int(rate) <= MAX_MESSAGES_PER_SECOND:
                raise InvalidParameterValue(
                    f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. "
                    f"Reason: must be between 1 and {MAX_MESSAGES_PER_SECOND}."
                )
            source = source_queue(self, source_arn)
            if source.fifo_queue:
                raise Unsupported("The local SQS endpoint moves messages of standard queues only.")
            if not _is_dead_letter_queue(backend, source):
                raise InvalidParameterValue(
                    "Source queue must be configured as a Dead Letter Queue."
                )
            if destination_arn is not None:
                destination = _queue_by_arn(backend, destination_arn)
                if destination is None:
                    raise not_found("DestinationArn")
                if destination is source:
                    raise InvalidParameterValue(
                        "Source queue arn and destination queue arn cannot be the same."
                    )
                if destination.fifo_queue:
                    raise Unsupported(
                        "The local SQS endpoint moves messages to standard queues only."
                    )
            with _lock:
                tasks = _tasks(backend).setdefault(source_arn, [])
                if any(task.status == RUNNING for task in tasks):
                    raise InvalidParameterValue(
                        "There is already a task running. Only one active task is allowed for "
                        "a source queue arn at a given time."
                    )
                task = MoveTask(
                    task_id=str(uuid.uuid4()),
                    source=source,
                    destination_arn=destination_arn,
                    max_per_second=None if rate is None else int(rate),
                    pending=list(source.messages),
                )
                tasks.append(task)
                del tasks[:-MAX_LISTED_TASKS]
            threading.Thread(
                target=_run, args=(backend, task), name="sqs-move-task", daemon=True
            ).start()
            return ActionResult({"TaskHandle": task.handle})

        def list_message_move_tasks(self: Any) -> Any:
            source = source_queue(self, required(self, "SourceArn"))
            max_results = self._get_param("MaxResults")
            limit = 1 if max_results is None else int(max_results)
            if not 1 <= limit <= MAX_LISTED_TASKS:
                raise InvalidParameterValue(
                    f"Value {max_results} for parameter MaxResults is invalid. "
                    f"Reason: must be between 1 and {MAX_LISTED_TASKS}."
                )
            with _lock:
                tasks = list(_tasks(self.sqs_backend).get(source.queue_arn, []))
                entries = [task.entry() for task in reversed(tasks)][:limit]
            return ActionResult({"Results": entries})

        def cancel_message_move_task(self: Any) -> Any:
            handle = required(self, "TaskHandle")
            try:
                decoded = json.loads(base64.b64decode(handle, validate=True))
                task_id, source_arn = decoded["taskId"], decoded["sourceArn"]
            except (ValueError, TypeError, KeyError):
                raise InvalidParameterValue("Value for parameter TaskHandle is invalid.") from None
            if not isinstance(task_id, str) or not isinstance(source_arn, str):
                raise InvalidParameterValue("Value for parameter TaskHandle is invalid.")
            source = source_queue(self, source_arn)
            with _lock:
                tasks = _tasks(self.sqs_backend).get(source.queue_arn, [])
                task = next((t for t in tasks if t.task_id == task_id), None)
                if task is None:
                    raise NotFound("Task does not exist.")
                if task.status != RUNNING:
                    raise Unsupported(
                        f"Only a RUNNING task can be cancelled; this one is {task.status}."
                    )
                # Under the lock no move is half done, so none happens after this answer.
                task.status = CANCELLED
                task.stopped.set()
                return ActionResult({"ApproximateNumberOfMessagesMoved": task.moved})

        # moto's query-protocol (XML) answers take element names from its own additions to
        # botocore's JSON-only model, which stop short of these operations: without them an
        # older AWS CLI v1 (query protocol) would find no `<...Result>` and print nothing.
        description = get_service_model("sqs")._service_description
        for operation in ("StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask"):
            output = description["operations"][operation]["output"]
            output.setdefault("resultWrapper", f"{operation}Result")
        entries = description["shapes"]["ListMessageMoveTasksResultEntryList"]["member"]
        entries.setdefault("locationNameForQueryCompatibility", "ListMessageMoveTasksResultEntry")

        original_add_message = Queue.add_message

        def add_message(queue: Any, message: Any) -> None:
            # SQS's own redrive (maxReceiveCount) re-adds the same message object to the DLQ:
            # the queue it was in is where a default-destination move task sends it back.
            previous = getattr(message, _CURRENT_QUEUE_ATTR, None)
            if previous is not None and previous != queue.queue_arn:
                setattr(message, _DLQ_SOURCE_ATTR, previous)
            setattr(message, _CURRENT_QUEUE_ATTR, queue.queue_arn)
            original_add_message(queue, message)

        Queue.add_message = add_message  # type: ignore[method-assign,assignment]
        SQSResponse.start_message_move_task = with_404(start_message_move_task)  # type: ignore[attr-defined]
        SQSResponse.list_message_move_tasks = with_404(list_message_move_tasks)  # type: ignore[attr-defined]
        SQSResponse.cancel_message_move_task = with_404(cancel_message_move_task)  # type: ignore[attr-defined]
        _applied = True
