"""Fixes to moto's SQS for the local stack, whose queues may hold 100,000 messages.

moto 5.2.5 keeps a queue's messages in one list and answers most calls by walking it.
Profiled (cProfile, in-process moto, 10,000 messages queued):

- SendMessage / SendMessageBatch read `Queue.attributes` once per message; three of those
  attributes count the whole queue (delayed, not visible, visible), reading the clock twice
  per message: ~2.3 s per batch of 10.
- GetQueueAttributes builds every attribute (twice per name asked for): 2.3 s for the three
  depth counters, 0.7 s for the QueueArn alone (the API's health check).
- DeleteMessage walks the queue twice and builds a list of receipt handles per message on
  the way: ~7 ms per message. ChangeMessageVisibility walks up to the message.
- ReceiveMessage lists every visible message to return ten, and rebuilt every attribute per
  returned message to check its retention (~0.8 s per receive at 1,000).
- Every `Message` moto creates, the copy each receive returns included, is appended to
  `Message.instances_tracked` (for moto's dashboard) and never let go: memory grows with
  every message ever sent and received.

Here a standard queue's messages live in a `MessageStore`, which is what moto's own code
sees as `Queue._messages`: list-compatible (append, remove, `in`, iteration in sending order),
with O(1) membership and removal, a heap of the receivable messages (oldest first, the order
moto returns them in), a heap of the others keyed by when they become receivable (in flight,
delayed), and an index of receipt handles. Send, receive, delete and visibility changes cost
O(batch x log backlog); the depth counters are exact and walk nothing.

Semantics are moto's (visibility timeouts, per-receive visibility, ChangeMessageVisibility
and its 12-hour limit, DelaySeconds, receive counts, RedrivePolicy's maxReceiveCount moving
the message object to the DLQ, long polling, old receipt handles still deleting) with three
deliberate differences, nearer to SQS: a message past its retention period is deleted when a
receive reaches it (moto kept it for ever and ended that receive at it); the receipt handles
of deleted messages are remembered for `DELETED_HANDLE_SECONDS` (at most
`DELETED_HANDLE_LIMIT` of them) instead of for ever, after which deleting with one answers
ReceiptHandleIsInvalid, as an expired handle does; SQS messages are not listed on moto's
dashboard. FIFO queues keep moto's own code paths. Pinned to the moto version it was written
against: another version fails loudly instead of being patched blindly.
"""

from __future__ import annotations

import functools
import heapq
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from copy import copy as shallow_copy
from typing import Any

PATCHED_MOTO_VERSION = "5.2.5"
# A delete repeated after a lost answer still succeeds; remembering every handle for ever would
# cost ~350 bytes per message ever deleted (185-character handles).
DELETED_HANDLE_SECONDS = 60
DELETED_HANDLE_LIMIT = 100_000
# moto's limit on a message's total visibility timeout (`ChangeMessageVisibility`).
MAX_TOTAL_VISIBILITY_MS = 43200 * 1000
_applied = False


def _now_ms() -> float:
    from moto.core.utils import unix_time_millis

    return float(unix_time_millis())


def _due(message: Any) -> float:
    """When the message becomes receivable (ms): past its visibility timeout and its delay.
    moto: receivable when `now > visible_at and not now < delayed_until`."""
    return max(message.visible_at, message.delayed_until)


class MessageStore:
    """One standard queue's messages. Every method takes `lock`; callers that combine calls
    (a receive) hold it across them."""

    def __init__(self, messages: Iterable[Any] = ()) -> None:
        self.lock = threading.RLock()
        self._by_number: dict[int, Any] = {}  # in sending order, like moto's list
        self._number_of: dict[Any, int] = {}  # Message hashes by identity
        self._next_number = 0
        self._receivable: set[int] = set()
        self._ready: list[int] = []  # heap of numbers, oldest first; stale entries skipped
        self._waiting: list[tuple[float, int]] = []  # heap of (due ms, number); stale skipped
        self._delayed: set[int] = set()  # moto's "delayed": now < delayed_until
        self._delays: list[tuple[float, int]] = []  # heap of (delayed_until ms, number)
        self._handles: dict[str, int] = {}  # every receipt handle a live message had
        self._deleted: OrderedDict[str, float] = OrderedDict()  # handle -> deleted at (ms)
        for message in messages:
            self.append(message)

    # ---- the list protocol moto's code (and taskmill_local/moto_move_tasks.py) uses ----

    def append(self, message: Any) -> None:
        with self.lock:
            if message in self._number_of:
                self.remove(message)
            number = self._next_number
            self._next_number += 1
            self._by_number[number] = message
            self._number_of[message] = number
            for handle in message.all_receipt_handles:
                if handle is not None:
                    self._handles[handle] = number
            now = _now_ms()
            if message.delayed_until > now:
                self._delayed.add(number)
                heapq.heappush(self._delays, (message.delayed_until, number))
            self._schedule(number, message, now)

    def remove(self, message: Any) -> None:
        with self.lock:
            number = self._number_of.pop(message, None)
            if number is None:
                raise ValueError("the message is not in this queue")
            del self._by_number[number]
            self._receivable.discard(number)
            self._delayed.discard(number)
            for handle in message.all_receipt_handles:
                if handle is not None and self._handles.get(handle) == number:
                    del self._handles[handle]
            self._compact()

    def __contains__(self, message: object) -> bool:
        return message in self._number_of

    def __iter__(self) -> Iterator[Any]:
        with self.lock:  # a snapshot: other threads may send meanwhile
            return iter(list(self._by_number.values()))

    def __len__(self) -> int:
        return len(self._by_number)

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __repr__(self) -> str:
        return f"<MessageStore of {len(self)} messages>"

    # ---- what the fast paths use --------------------------------------------------------

    def find(self, receipt_handle: str) -> Any:
        """The live message that ever had this receipt handle, or None."""
        number = self._handles.get(receipt_handle)
        return None if number is None else self._by_number.get(number)

    def was_deleted(self, receipt_handle: str) -> bool:
        return receipt_handle in self._deleted

    def delete(self, message: Any, now: float) -> None:
        with self.lock:
            self.remove(message)
            for handle in message.all_receipt_handles:
                if handle is not None:
                    self._deleted[handle] = now
            oldest = now - DELETED_HANDLE_SECONDS * 1000
            deleted = self._deleted
            while deleted and (
                len(deleted) > DELETED_HANDLE_LIMIT or next(iter(deleted.values())) < oldest
            ):
                deleted.popitem(last=False)

    def promote(self, now: float) -> None:
        """Make receivable what has become so by `now`."""
        waiting = self._waiting
        while waiting and waiting[0][0] < now:
            _, number = heapq.heappop(waiting)
            message = self._by_number.get(number)
            if message is not None and number not in self._receivable:
                self._schedule(number, message, now)  # back to waiting if its due moved
        delays = self._delays
        while delays and delays[0][0] <= now:
            self._delayed.discard(heapq.heappop(delays)[1])

    def take_oldest(self, now: float) -> Any:
        """The oldest receivable message (after `promote(now)`), no longer receivable: the
        caller receives it, drops it or moves it. None when there is none."""
        ready = self._ready
        while ready:
            number = heapq.heappop(ready)
            if number not in self._receivable:
                continue  # stale: received, deleted or hidden since it was pushed
            self._receivable.discard(number)
            message = self._by_number[number]
            if now > _due(message):
                return message
            heapq.heappush(self._waiting, (_due(message), number))
        return None

    def received(self, message: Any) -> None:
        """After `message.mark_received(...)`: its new handle, and its wait until visible."""
        number = self._number_of[message]
        self._handles[message.receipt_handle] = number
        heapq.heappush(self._waiting, (_due(message), number))

    def rescheduled(self, message: Any, now: float) -> None:
        """After `message.change_visibility(...)`."""
        number = self._number_of[message]
        self._receivable.discard(number)
        self._schedule(number, message, now)

    def counts(self, now: float) -> tuple[int, int, int]:
        """(receivable, not visible, delayed), as moto's three counters count them."""
        with self.lock:
            self.promote(now)
            receivable, delayed = len(self._receivable), len(self._delayed)
            return receivable, len(self._by_number) - receivable - delayed, delayed

    def receivable(self, now: float) -> list[Any]:
        with self.lock:
            self.promote(now)
            return [self._by_number[number] for number in sorted(self._receivable)]

    def seconds_to_next_due(self, now: float) -> float | None:
        return (self._waiting[0][0] - now) / 1000 if self._waiting else None

    def _schedule(self, number: int, message: Any, now: float) -> None:
        due = _due(message)
        if now > due:
            if number not in self._receivable:
                self._receivable.add(number)
                heapq.heappush(self._ready, number)
        else:
            heapq.heappush(self._waiting, (due, number))

    def _compact(self) -> None:
        """Entries of deleted messages stay in the heaps until popped (a received message's
        for its whole visibility timeout): rebuild a heap once it is mostly stale, so what a
        queue holds stays proportional to its messages."""
        live = len(self._by_number)
        if len(self._waiting) > 2 * live + 1024:
            self._waiting = [
                (_due(message), number)
                for number, message in self._by_number.items()
                if number not in self._receivable
            ]
            heapq.heapify(self._waiting)
        if len(self._ready) > 2 * len(self._receivable) + 1024:
            self._ready = sorted(self._receivable)
        if len(self._delays) > 2 * len(self._delayed) + 1024:
            self._delays = [(self._by_number[n].delayed_until, n) for n in self._delayed]
            heapq.heapify(self._delays)


def apply() -> None:
    global _applied
    if _applied:
        return
    import moto
    import moto.sqs.models
    from moto.core.utils import unix_time
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid
    from moto.sqs.models import Message, Queue, SQSBackend, _filter_message_attributes

    if moto.__version__ != PATCHED_MOTO_VERSION:
        raise RuntimeError(
            f"taskmill_local/moto_fast.py patches moto {PATCHED_MOTO_VERSION}, "
            f"not {moto.__version__}: "
            "check whether the fix is still needed and update the pin"
        )

    original_receive = SQSBackend.receive_message
    original_change_visibility = SQSBackend.change_message_visibility
    original_delete = Queue.delete_message
    original_delayed = vars(Queue)["approximate_number_of_messages_delayed"]
    original_not_visible = vars(Queue)["approximate_number_of_messages_not_visible"]

    # ---- the store, where moto's code looks for a queue's list of messages ----------------

    def get_messages(queue: Any) -> MessageStore:
        store = queue.__dict__.get("_taskmill_store")
        if store is None:  # a queue created before apply(): its list is in its __dict__
            store = MessageStore(queue.__dict__.pop("_messages", []))
            queue.__dict__["_taskmill_store"] = store
        return store

    def set_messages(queue: Any, messages: Iterable[Any]) -> None:
        # Queue.__init__ (`[]`), purge_queue (`[]`), and the FIFO path of moto's delete.
        store = messages if isinstance(messages, MessageStore) else MessageStore(messages)
        queue.__dict__["_taskmill_store"] = store

    def visible_messages(queue: Any) -> list[Any]:
        now = _now_ms()
        if not queue.fifo_queue:
            return queue._messages.receivable(now)
        # Message.visible is `now > visible_at`, Message.delayed is `now < delayed_until`.
        return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]

    def number_of_messages(queue: Any) -> int:
        if queue.fifo_queue:
            return len(queue.messages)
        return queue._messages.counts(_now_ms())[0]

    def number_not_visible(queue: Any) -> int:
        if queue.fifo_queue:
            return int(original_not_visible.fget(queue))
        return queue._messages.counts(_now_ms())[1]

    def number_delayed(queue: Any) -> int:
        if queue.fifo_queue:
            return int(original_delayed.fget(queue))
        return queue._messages.counts(_now_ms())[2]

    # ---- the calls ------------------------------------------------------------------------

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
        return bool(retain_until > unix_time())

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue:
            return original_receive(
                self,
                queue_name,
                count,
                wait_seconds_timeout,
                visibility_timeout,
                message_attribute_names,
            )
        names = message_attribute_names or []
        store: MessageStore = queue._messages
        deadline = unix_time() + wait_seconds_timeout
        while True:
            result: list[Any] = []
            to_dlq: list[Any] = []
            # The queue's condition is what a send notifies: held from the look to the wait,
            # no send slips between them.
            with queue._messages_lock:
                with store.lock:
                    now = _now_ms()
                    store.promote(now)
                    retention_ms = int(queue.message_retention_period) * 1000
                    policy = queue.redrive_policy if queue.dead_letter_queue is not None else None
                    max_receives = policy["maxReceiveCount"] if policy else None
                    while len(result) < count:
                        message = store.take_oldest(now)
                        if message is None:
                            break
                        # Visible again: a consumer that had it timed out.
                        queue.pending_messages.discard(message)
                        if message.sent_timestamp + retention_ms <= now:
                            store.remove(message)  # past its retention period: gone, as in SQS
                            continue
                        if max_receives is not None and (
                            message.approximate_receive_count >= max_receives
                        ):
                            store.remove(message)
                            to_dlq.append(message)
                            continue
                        queue.pending_messages.add(message)
                        message.mark_received(visibility_timeout=visibility_timeout)
                        store.received(message)
                        # A copy, so that filtering attributes (which replaces the copy's
                        # dict) leaves the message as it is; shallow, as nothing else changes.
                        copy = shallow_copy(message)
                        _filter_message_attributes(copy, names)
                        result.append(copy)
                    next_due = store.seconds_to_next_due(now)
                remaining = deadline - unix_time()
                if not result and not to_dlq and wait_seconds_timeout and remaining > 0:
                    # A send wakes us; a message coming back from its visibility timeout
                    # does not, so also wake when the next one is due.
                    timeout = min(remaining, 1.0)
                    if next_due is not None:
                        timeout = min(timeout, max(next_due, 0.001))
                    queue._messages_lock.wait(timeout)
                    continue
            for message in to_dlq:  # outside this queue's locks: the DLQ takes its own
                queue.dead_letter_queue.add_message(message)
            if result or not wait_seconds_timeout or unix_time() >= deadline:
                return result

    def delete_message(queue: Any, receipt_handle: str) -> None:
        if queue.fifo_queue:
            original_delete(queue, receipt_handle)
            return
        store: MessageStore = queue._messages
        with store.lock:
            if store.was_deleted(receipt_handle):
                return  # deleting again succeeds, as in moto and SQS
            message = store.find(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid()
            queue.pending_messages.discard(message)
            store.delete(message, _now_ms())

    def change_message_visibility(
        self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue:
            original_change_visibility(self, queue_name, receipt_handle, visibility_timeout)
            return
        store: MessageStore = queue._messages
        with store.lock:
            message = store.find(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid()
            now = _now_ms()
            if now + int(visibility_timeout) * 1000 - message.sent_timestamp > (
                MAX_TOTAL_VISIBILITY_MS
            ):
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                    "Reason: Total VisibilityTimeout for the message is beyond the limit "
                    "[43200 seconds]"
                )
            message.change_visibility(visibility_timeout)
            store.rescheduled(message, _now_ms())
            if message.visible and message in queue.pending_messages:
                queue.pending_messages.remove(message)

    def untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        # BaseModel.__new__ less `cls.instances_tracked.append(instance)`.
        return object.__new__(cls)

    Queue._messages = property(get_messages, set_messages)  # type: ignore[assignment]
    Queue.messages = property(visible_messages)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages = property(number_of_messages)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_not_visible = property(number_not_visible)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_delayed = property(number_delayed)  # type: ignore[method-assign,assignment]
    Queue.delete_message = delete_message  # type: ignore[method-assign,assignment]
    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
    # `Queue.attributes` (read by every send) converts each attribute's name with this on
    # every call: a pure function of a few known strings.
    moto.sqs.models.camelcase_to_underscores = functools.lru_cache(maxsize=256)(
        moto.sqs.models.camelcase_to_underscores
    )
    Message.__new__ = staticmethod(untracked_new)  # type: ignore[method-assign]
    Message.instances_tracked = []  # type: ignore[attr-defined]
    _applied = True
