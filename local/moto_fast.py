"""A small fix to moto's SQS for the local stack: `ReceiveMessage` checks each returned
message's retention by rebuilding *every* queue attribute, and three of those attributes
count the whole queue; listing the visible messages reads the clock twice per message. A
receive of 10 from a 1,000-message backlog then costs ~0.8 s. The fix reads the one attribute
it needs and the clock once per listing (same comparisons, same results). Pinned to the moto
version it was written against: another version fails loudly instead of being patched
blindly."""

from __future__ import annotations

from typing import Any

PATCHED_MOTO_VERSION = "5.2.5"
_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    import moto
    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs.models import Queue, SQSBackend

    if moto.__version__ != PATCHED_MOTO_VERSION:
        raise RuntimeError(
            f"local/moto_fast.py patches moto {PATCHED_MOTO_VERSION}, not {moto.__version__}: "
            "check whether the fix is still needed and update the pin"
        )

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
        return bool(retain_until > unix_time())

    def visible_messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        # Message.visible is `now > visible_at`, Message.delayed is `now < delayed_until`.
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    Queue.messages = property(visible_messages)  # type: ignore[assignment,method-assign]
    _applied = True
