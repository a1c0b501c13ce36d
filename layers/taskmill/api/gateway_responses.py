"""Errors API Gateway answers itself (before the API function runs), in the SPEC's error
envelope. The CDK stack installs these as gateway responses; the local gateway and the test
client answer with the same bodies, so a client sees one error shape everywhere.

Also what API Gateway does to answers on their way out: it gzips those of at least
`MIN_COMPRESSION_BYTES` for a client that accepts gzip (the REST API's
minimumCompressionSize; the local gateway does the same). The function itself never
compresses: a gzipped Lambda proxy answer would need binary media types on the whole API."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayError:
    status: int
    code: str
    message: str

    def body(self) -> str:
        # `details` is part of the SPEC's envelope even when there is nothing more to say,
        # so a client reads one shape whoever answered (the API's errors carry it too).
        return json.dumps({"error": {"code": self.code, "message": self.message, "details": None}})


UNAUTHORIZED = GatewayError(401, "unauthorized", "a valid bearer token is required")
ACCESS_DENIED = GatewayError(403, "forbidden", "this token may not call this route")
TOO_LARGE = GatewayError(413, "too_large", "the request body is too large")
THROTTLED = GatewayError(429, "throttled", "too many requests; retry later")
BAD_REQUEST = GatewayError(400, "invalid_request", "the request is invalid")
UNAVAILABLE = GatewayError(503, "unavailable", "the service is unavailable; retry later")
NOT_FOUND = GatewayError(404, "not_found", "no such route")
WAF_BLOCKED = GatewayError(403, "forbidden", "the request was blocked")

# Swagger UI's page (~1.7 MB, ~0.5 MB gzipped), the OpenAPI document and long lists are
# compressed; a single job or a small error is not (gzip would cost more than it saves).
MIN_COMPRESSION_BYTES = 8 * 1024

# API Gateway response type -> what it answers.
GATEWAY_RESPONSES: dict[str, GatewayError] = {
    "UNAUTHORIZED": UNAUTHORIZED,
    "ACCESS_DENIED": ACCESS_DENIED,
    "REQUEST_TOO_LARGE": TOO_LARGE,
    "THROTTLED": THROTTLED,
    "QUOTA_EXCEEDED": THROTTLED,
    "WAF_FILTERED": WAF_BLOCKED,
    "MISSING_AUTHENTICATION_TOKEN": NOT_FOUND,  # API Gateway's answer to an unknown route
    "INTEGRATION_TIMEOUT": UNAVAILABLE,
    "BAD_REQUEST_PARAMETERS": UNAUTHORIZED,  # the only required parameter is Authorization
    "DEFAULT_4XX": BAD_REQUEST,
    "DEFAULT_5XX": UNAVAILABLE,
}
