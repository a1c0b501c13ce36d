"""The SPEC's error envelope for every failure; nothing internal ever reaches a client."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from taskmill.errors import TaskmillError, field_message

CORRELATION_HEADER = "X-Correlation-Id"


def envelope(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    *,
    correlation_id: str | None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    all_headers = {CORRELATION_HEADER: correlation_id} if correlation_id else {}
    all_headers.update(headers or {})
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(
            {
                "error": {
                    "code": code,
                    "message": message,
                    "details": details,
                    "correlation_id": correlation_id,
                }
            },
            default=str,
        ),
        headers=all_headers or None,
    )


def from_domain(error: TaskmillError, *, correlation_id: str | None) -> Response[str]:
    return envelope(
        error.status,
        error.code,
        error.message,
        error.details,
        correlation_id=correlation_id,
        headers=error.headers(),
    )


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field errors without echoing the submitted values back."""
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": field_message(error),
            "type": error.get("type"),
        }
        for error in errors[:50]
    ]
