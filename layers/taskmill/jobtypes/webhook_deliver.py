"""`webhook.deliver`: POST an HMAC-signed event to a job's `webhook_url`.

The platform creates one such job when a job that has a `webhook_url` succeeds or fails; its
payload is `{"url", "event": completion_event(job)}` and its defaults (attempts, timeout,
backoff, priority) are this type's registry defaults.

Receivers verify `Taskmill-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` computed over
`"<t>.<raw body>"` with the job owner's webhook key (`owner_webhook_secret`; the owner reads
it from `GET /v1/auth/me/webhook-secret`), and refuse stale timestamps (replays): see
`verify_webhook_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from taskmill.jobs.model import Job
from taskmill.jobs.retry import JobFailure, PermanentJobFailure

WEBHOOK_TYPE = "webhook.deliver"
SIGNATURE_HEADER = "Taskmill-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048)
    event: dict[str, Any]


def completion_event(job: Job) -> dict[str, Any]:
    """The event a finished job's completion webhook delivers (the one place its shape is
    defined)."""
    return {
        "type": f"job.{job.status.value}",
        "job": {
            "id": str(job.id),
            "type": job.type,
            "status": job.status.value,
            "name": job.name,
            "tags": list(job.tags),
            "attempts": job.attempts,
            "result": job.result,
            "last_error": job.last_error,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
    }


def owner_webhook_secret(platform_secret: str, owner_id: UUID | str) -> str:
    """The key that signs the completion webhooks of one owner's jobs.

    HMAC-SHA256(platform key, "webhook:<owner id>"), hex: derived, so nothing is stored and
    every owner's key changes when the platform key is rotated. An owner reads their own key
    (`GET /v1/auth/me/webhook-secret`) and no one else's, so a signature that verifies with
    it was made by the platform for one of that owner's jobs.
    """
    message = f"webhook:{owner_id}".encode()
    return hmac.new(platform_secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_webhook_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver runs: constant-time check of the signature and of its freshness.

    `secret` is the webhook key of the user whose jobs call this receiver, as
    `GET /v1/auth/me/webhook-secret` gives it to them (not the platform's key, which signs
    nothing directly)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, received)


def webhook_deliver(context: Any, payload: WebhookPayload) -> dict[str, Any]:
    """Delivers a signed completion event; any non-2xx answer but 410 Gone is retried."""
    # Imported here: the API builds completion events but never delivers them, and the HTTP
    # client (urllib, sockets) is not worth its cold-start milliseconds there.
    from taskmill.jobtypes.http_request import send

    body = json.dumps(payload.event, separators=(",", ":"), sort_keys=True)
    timestamp = int(time.time())
    # The owner's own key, which only the owner can read: a user cannot obtain a signature
    # that another user's receiver would accept.
    key = owner_webhook_secret(context.services.webhook_secret(), context.job.owner_id)
    signature = sign(key, timestamp, body.encode())
    outcome = send(
        context,
        payload.url,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        body=body.encode(),
        timeout_seconds=context.services.settings.webhook_timeout_seconds,
    )
    if outcome["status"] == 410:
        # Gone: the receiver says this URL will never take events again; retrying it four
        # more times over minutes would only load it.
        raise PermanentJobFailure("webhook receiver answered 410 Gone; not retried")
    if not 200 <= outcome["status"] < 300:
        raise JobFailure(f"webhook receiver answered {outcome['status']}")
    return {"status": outcome["status"]}
