"""The OpenAPI document the API serves, and the Swagger UI page that shows it.

Powertools generates paths, parameters, bodies and success schemas from the routes. This
module makes the rest of the document true (SPEC §3):

- each route states its own success statuses and the errors only it answers, next to its
  decorator (`operation(...)`); the errors every route can answer are added here once,
  from what answers them: the request checks and the gateway in front of every route (400,
  403, 413, 415, 429, 503), and the authorizer in front of every route that is not in
  `taskmill.api.public.PUBLIC_ROUTES` (401);
- every error status is the SPEC's envelope (`components.schemas.Error`), never the 422
  Powertools assumes (validation errors are 400 here);
- public routes say `security: []`;
- a method a path does not take (405 with `Allow`, `taskmill.api.routing`) is described once
  (`components.responses.MethodNotAllowed` and the document's description), in no operation:
  it is the answer to a request that matches none;
- one server, given relative to where the document is served (`{base}/v1/openapi.json`),
  so the same document works on `make run` (base `http://127.0.0.1:8000`) and deployed
  (base `https://<api>.execute-api.<region>.amazonaws.com/<stage>`, or a custom domain).

tests/integration/api/test_openapi.py exercises every documented status of a sample of
routes; schemathesis (`make test-slow`) fails on any status a route answers that its entry
does not list.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import aws_lambda_powertools
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel

from taskmill.api.public import is_public

TITLE = "Taskmill API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Submit, watch and operate jobs. Sign in with `POST /v1/auth/login` and send its "
    "`access_token` as `Authorization: Bearer <token>` (Swagger UI: *Authorize*). Every error "
    'is `{"error": {"code", "message", "details", "correlation_id"}}`; `code` is stable, '
    "`message` is for people. A path asked with a method it does not take answers 405 "
    "`method_not_allowed` with an `Allow` header listing those it takes (after the token is "
    "checked, as on any route); it is in no operation, since no operation answers it. A query "
    "parameter an operation does not list is refused (400 `invalid_input` naming it), not "
    "ignored."
)
# Relative to the document's own URL, `{base}/v1/openapi.json`: the base the paths
# (`/v1/...`) hang from, whether a stage name is part of it or not.
SERVER_URL = ".."
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
# Where a route's own error statuses travel from its decorator to `document` (removed there).
ERRORS_KEY = "x-taskmill-errors"
ERROR_REF = "#/components/schemas/Error"
JSON = "application/json"

# What every route can answer, whoever calls it: the request checks run before any route
# (taskmill.api.request_checks: 400, 413, 415); API Gateway's stage throttle (429), its
# WAF where an environment enables it (403) and its answer when the function fails or
# times out (503) are in front of every route; every route reads Postgres (503); and every
# protected route refuses a disabled account (403).
EVERY_ROUTE = (400, 403, 413, 415, 429, 503)
# The authorizer, in front of every route outside PUBLIC_ROUTES.
PROTECTED_ROUTE = (401,)

# status -> (component name, description). The codes listed are those the API, the local
# gateway and API Gateway's gateway responses (taskmill.api.gateway_responses) send.
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: (
        "InvalidInput",
        "Invalid input (`invalid_input`, field errors in `details`; `invalid_request` from "
        "the gateway): a parameter, header or body that does not validate, a query "
        "parameter the operation does not take (`extra_forbidden`, named in `details`), a "
        "query parameter or header given more than once (`repeated_parameter`), a "
        "body that is not JSON or is nested too deep, a character that cannot be stored (NUL).",
    ),
    401: (
        "Unauthorized",
        "No valid bearer token, or its session has ended (`unauthorized`); on sign-in, a "
        "wrong e-mail or password; on refresh, a refresh token that is not valid.",
    ),
    403: (
        "Forbidden",
        "The account's role may not do this or the account is disabled (`forbidden`), "
        "sign-up is disabled, or the WAF blocked the request (deployments that enable it).",
    ),
    404: ("NotFound", "No such resource, or one that belongs to another user (`not_found`)."),
    405: (
        "MethodNotAllowed",
        "The path exists but does not take this method (`method_not_allowed`); `Allow` and "
        "`details.allowed` list the methods it takes. Answered for requests that match no "
        "operation, so no operation lists it.",
    ),
    409: (
        "Conflict",
        "The resource's state does not allow this (`conflict`), an `Idempotency-Key` "
        "was reused with a different body (`idempotency_mismatch`), or a job could never run: "
        "created with a dependency that failed or was cancelled, or retried while one "
        "failed, was cancelled or was deleted (`dependency_failed`, each such dependency's "
        "`id` and `status` in `details.dependencies`), or an external worker's heartbeat came "
        "after the attempt's `timeout_seconds` (`attempt_timed_out`).",
    ),
    413: (
        "PayloadTooLarge",
        "The request body or a job's payload is over its size limit (`payload_too_large`; "
        "`too_large` from the gateway).",
    ),
    415: (
        "UnsupportedMediaType",
        "A request body sent without `Content-Type: application/json` (`unsupported_media_type`).",
    ),
    429: (
        "TooManyRequests",
        "Too many requests: the stage's throttle (`throttled`, deployed), the account's "
        "limit of unfinished jobs (`quota_exceeded`), or sign-in and sign-up attempts "
        "(`too_many_attempts`, with `Retry-After`).",
    ),
    503: (
        "Unavailable",
        "A dependency (database, queue, secret) did not answer, or the function failed or "
        "timed out (`dependency_unavailable`, `unavailable`). Nothing was done unless the "
        "answer says otherwise; retrying is safe (with an `Idempotency-Key` for creates).",
    ),
}

ERROR_SCHEMAS: dict[str, Any] = {
    "Error": {
        "title": "Error",
        "description": "The envelope of every error answer.",
        "type": "object",
        "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
        "required": ["error"],
    },
    "ErrorDetail": {
        "title": "ErrorDetail",
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Stable and machine-readable, e.g. `invalid_input`, "
                "`not_found`, `idempotency_mismatch`.",
            },
            "message": {"type": "string", "description": "For people; may change."},
            "details": {
                "description": "More about the error, when there is more: field errors "
                "(`loc`, `msg`, `type`) for invalid input, figures for quotas and throttles.",
                "anyOf": [
                    {"type": "array", "items": {"type": "object", "additionalProperties": True}},
                    {"type": "object", "additionalProperties": True},
                    {"type": "null"},
                ],
            },
            "correlation_id": {
                "description": "The request's id (also in `X-Correlation-Id`); quote it "
                "when reporting a problem. Absent from errors the gateway answers itself.",
                "anyOf": [{"type": "string"}, {"type": "null"}],
            },
        },
        "required": ["code", "message", "details"],
    },
}

# Resources whose answer carries the `id` that operations on them take as this path
# parameter: the operations creating them link to those taking it (OpenAPI links, which Swagger
# UI shows and schemathesis's stateful phase follows). Accounts are left out on purpose:
# fuzzing along them deletes, disables and demotes the fuzzer's own account.
LINKED_RESOURCES = {"JobOut": "job_id", "ScheduleOut": "schedule_id", "RedriveTask": "task_id"}

RETRY_AFTER = {
    "description": "Seconds to wait before trying again (sign-in and sign-up throttling).",
    "schema": {"type": "integer", "minimum": 0},
}
ALLOW = {
    "description": "The methods the path takes, e.g. `GET, POST`.",
    "schema": {"type": "string"},
}

Answer = str | tuple[str, type[BaseModel]]


def operation(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    errors: Iterable[int] = (),
    success: Mapping[int, Answer] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its readable `operationId`, what it
    answers when it works (`success`: status -> description, or (description, model) when
    that status's body is not the return type; 200 with the return type if omitted) and
    the error statuses only some routes answer (404, 409, and 401 on a public route).
    Those every route answers are added by `document`."""
    unknown = set(errors) - set(ERROR_RESPONSES)
    if unknown:
        raise ValueError(f"{operation_id}: no error response is defined for {sorted(unknown)}")
    kwargs: dict[str, Any] = {
        "operation_id": operation_id,
        "summary": summary,
        "tags": [tag],
        "openapi_extensions": {ERRORS_KEY: sorted(set(errors))},
    }
    if description:
        kwargs["description"] = description
    if success:
        responses: dict[int, Any] = {}
        for status, answer in success.items():
            if isinstance(answer, tuple):
                text, model = answer
                responses[status] = {"description": text, "content": {JSON: {"model": model}}}
            elif status == 204:
                responses[status] = {"description": answer, "content": {}}
            else:
                responses[status] = {"description": answer}
        kwargs["responses"] = responses
    return kwargs


def document(app: APIGatewayRestResolver) -> dict[str, Any]:
    """The whole document, as a JSON-ready dict."""
    # Powertools' OpenAPI models (~40 pydantic models) are imported when a document is made,
    # not at every cold start of the API: ~100 ms of it without bytecode.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    generated = app.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[Server(url=SERVER_URL, description="This API (relative to this document)")],
        security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
        security=BEARER,
    )
    doc: dict[str, Any] = json.loads(generated.model_dump_json(by_alias=True, exclude_none=True))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            _complete(method.upper(), path, op)
    _link(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas.update(copy.deepcopy(ERROR_SCHEMAS))
    doc["components"]["responses"] = {
        name: _error_response(status) for status, (name, _) in ERROR_RESPONSES.items()
    }
    return doc


def _complete(method: str, path: str, op: dict[str, Any]) -> None:
    public = is_public(method, path)
    # A route declared without `operation()` gets what every route answers (and Powertools'
    # generated operationId, which tests/integration/api/test_openapi.py refuses).
    own = op.pop(ERRORS_KEY, [])
    responses: dict[str, Any] = op["responses"]
    responses.pop("422", None)  # Powertools' default; validation errors are 400 here
    for answer in responses.values():
        if not answer.get("content"):
            answer.pop("content", None)  # 204: no body
    statuses = set(own) | set(EVERY_ROUTE) | (set() if public else set(PROTECTED_ROUTE))
    for status in sorted(statuses):
        name = ERROR_RESPONSES[status][0]
        key = str(status)
        if key in responses:
            # The route's own body for this status (health's 503), or the envelope when
            # something in front of it answers.
            answer = responses[key]
            answer["description"] += f" Otherwise the error envelope: {ERROR_RESPONSES[status][1]}"
            schema = answer["content"][JSON]["schema"]
            answer["content"][JSON]["schema"] = {"anyOf": [schema, {"$ref": ERROR_REF}]}
        else:
            responses[key] = {"$ref": f"#/components/responses/{name}"}
    op["responses"] = dict(sorted(responses.items()))
    if public:
        op["security"] = []


def _link(doc: dict[str, Any]) -> None:
    """Link each created resource (LINKED_RESOURCES) to the operations taking its id."""
    taking: dict[str, list[str]] = {}
    for item in doc["paths"].values():
        for op in item.values():
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path":
                    taking.setdefault(parameter["name"], []).append(op["operationId"])
    for item in doc["paths"].values():
        for op in item.values():
            if not {"201", "202"} & set(op["responses"]):
                continue  # only what creates a resource links to it
            for status, answer in op["responses"].items():
                ref = answer.get("content", {}).get(JSON, {}).get("schema", {}).get("$ref", "")
                parameter = LINKED_RESOURCES.get(ref.rpartition("/")[2])
                if not status.startswith("2") or parameter is None:
                    continue
                answer["links"] = {
                    target: {
                        "operationId": target,
                        "parameters": {parameter: "$response.body#/id"},
                    }
                    for target in taking.get(parameter, [])
                }


def _error_response(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": ERROR_RESPONSES[status][1],
        "content": {JSON: {"schema": {"$ref": ERROR_REF}}},
    }
    if status == 429:
        answer["headers"] = {"Retry-After": RETRY_AFTER}
    if status == 405:
        answer["headers"] = {"Allow": ALLOW}
    return answer


_SWAGGER_UI = Path(aws_lambda_powertools.__file__).parent / "event_handler/openapi/swagger_ui"


@cache
def swagger_page() -> str:
    """Swagger UI, self-contained (the bundle Powertools ships, no CDN), reading the
    document next to it; no external validator (Swagger UI's default sends the document to
    validator.swagger.io)."""
    script = (_SWAGGER_UI / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    style = (_SWAGGER_UI / "swagger-ui.min.css").read_text(encoding="utf-8")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{TITLE}</title>
<style>{style}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script>{script}</script>
<script>
// {{base}}/v1/docs -> {{base}}/v1/openapi.json, with or without a stage in {{base}}.
var documentUrl = window.location.pathname.replace(/\\/docs\\/?$/, "/openapi.json");
window.ui = SwaggerUIBundle({{
  url: documentUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  filter: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""
