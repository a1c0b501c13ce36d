"""The SQS message of a job: `{"job_id", "v": 1}` in the body, the rest as attributes."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from taskmill.jobs.model import Job
from taskmill.topology import SQS_MAX_DELAY_SECONDS

MESSAGE_VERSION = 1
# What SQS refuses in a string attribute (and a body): anything but #x9, #xA, #xD, #x20 to
# #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF. A job's last error holds whatever its
# body raised (a command's coloured output: ESC), and one such character made SQS refuse
# the whole dead letter.
_NOT_FOR_SQS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class MalformedMessage(ValueError):
    """The body is not a job message this version understands."""


@dataclass(frozen=True)
class JobMessage:
    job_id: UUID
    attributes: dict[str, str]

    @property
    def redrive_count(self) -> int | None:
        raw = self.attributes.get("redrive_count")
        return int(raw) if raw is not None and raw.isdigit() else None

    @property
    def dead_lettered(self) -> bool:
        """True when this message was sent to a DLQ by the platform (and so, seen on a
        source queue, has been moved back by a redrive)."""
        return "failure_reason" in self.attributes


def message_body(job_id: UUID) -> str:
    return json.dumps({"job_id": str(job_id), "v": MESSAGE_VERSION}, separators=(",", ":"))


def message_attributes(job: Job, extra: dict[str, str] | None = None) -> dict[str, Any]:
    values = {
        "job_type": job.type,
        "priority": job.priority.value,
        "redrive_count": str(job.redrive_count),
        **({"correlation_id": job.correlation_id} if job.correlation_id else {}),
        **(extra or {}),
    }
    return {
        name: {"DataType": "String", "StringValue": _NOT_FOR_SQS.sub("\ufffd", value[:256])}
        for name, value in values.items()
        if value
    }


def delay_seconds(job: Job, now: datetime | None = None) -> int:
    """What SQS should hold the message for: the time left until `run_at`, capped."""
    remaining = (job.run_at - (now or datetime.now(UTC))).total_seconds()
    return max(0, min(SQS_MAX_DELAY_SECONDS, math.ceil(remaining)))


def parse_message(body: str, attributes: dict[str, Any] | None = None) -> JobMessage:
    """Parse a body and attributes in either SQS API shape (`StringValue`) or Lambda event
    shape (`stringValue`)."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedMessage("body is not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
        raise MalformedMessage("body is not a version 1 job message")
    try:
        job_id = UUID(str(data["job_id"]))
    except (KeyError, ValueError) as exc:
        raise MalformedMessage("body has no valid job_id") from exc
    flat: dict[str, str] = {}
    for name, value in (attributes or {}).items():
        text = value.get("StringValue", value.get("stringValue"))
        if isinstance(text, str):
            flat[name] = text
    return JobMessage(job_id, flat)
