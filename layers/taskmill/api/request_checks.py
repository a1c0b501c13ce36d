"""What every request must pass before the app parses it.

Powertools parses the body, and Postgres stores the strings, only after these checks: a body
over the size limit (413), a body that is not `application/json` (415), not UTF-8, nested
deeper than `MAX_JSON_DEPTH` (Python's parser recurses: a few thousand brackets would end in
a RecursionError) or holding a character Postgres cannot store in `text`/`jsonb` (NUL, an
unpaired surrogate) anywhere in the body, query, path or headers (400). Without them each of
these reached a client as a 500 and counted towards the API's 5xx alarm. A body that is a JSON
array is a 400 too: every route takes an object, and the parser would read the first element.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from taskmill.api import errors
from taskmill.errors import InvalidInput, PayloadTooLarge, TaskmillError, UnsupportedMediaType
from taskmill.jobs.model import MAX_JSON_DEPTH, nested_deeper_than

JSON_MEDIA_TYPE = "application/json"


def check_request(event: dict[str, Any], *, max_body_bytes: int) -> dict[str, Any] | None:
    """The Lambda proxy answer refusing `event`, or None if the app may handle it.

    May rewrite the Content-Type header to its lower-case form (media types are
    case-insensitive; the parser behind the app only recognises `application/json`)."""
    try:
        _check(event, max_body_bytes)
    except TaskmillError as error:
        correlation_id = (event.get("requestContext") or {}).get("requestId")
        response = errors.from_domain(error, correlation_id=correlation_id)
        return {
            "statusCode": response.status_code,
            "multiValueHeaders": {k: [str(v)] for k, v in response.headers.items()},
            "body": response.body,
            "isBase64Encoded": False,
        }
    return None


def _check(event: dict[str, Any], max_body_bytes: int) -> None:
    raw = event.get("body") or ""
    encoded = bool(event.get("isBase64Encoded"))
    # API Gateway caps bodies at 10 MB; this is the platform's own, smaller limit.
    size = len(raw) * 3 // 4 if encoded else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_body_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_body_bytes} bytes")
    _check_strings(_strings_outside_body(event))
    if not raw:
        return  # a bodiless POST (cancel, retry) needs no Content-Type
    _require_json_content_type(event)
    text = _decoded(raw) if encoded else raw
    _check_depth(text)
    try:
        body = json.loads(text)
    except ValueError:  # JSONDecodeError, or an integer longer than Python converts
        raise InvalidInput("the body is not valid JSON") from None
    if isinstance(body, list):
        # Every route takes an object, and the parser behind the app reads an array as its
        # first element: two jobs posted to /v1/jobs would create one and drop the other.
        raise InvalidInput(
            "the body is a JSON array: every route takes one JSON object (several jobs are "
            'created with POST /v1/jobs/batch and {"jobs": [...]})',
            details=[{"loc": ["body"], "msg": "a JSON array, not an object", "type": "model_type"}],
        )
    _check_strings(_strings_in_json(body, ["body"]))


def _require_json_content_type(event: dict[str, Any]) -> None:
    found = [
        (headers, name)
        for headers in (event.get("headers") or {}, event.get("multiValueHeaders") or {})
        for name in headers
        if name.lower() == "content-type"
    ]
    if found:
        # `headers` first: it is what the app reads (API Gateway fills both alike).
        headers, name = found[0]
        value = headers[name]
        first = str(value[0] if isinstance(value, list) and value else value)
        media_type, _, parameters = first.partition(";")
        if media_type.strip().lower() == JSON_MEDIA_TYPE:
            normal = JSON_MEDIA_TYPE + (f";{parameters}" if parameters else "")
            for headers, name in found:
                headers[name] = [normal] if isinstance(headers[name], list) else normal
            return
    raise UnsupportedMediaType(
        f"a request body must be JSON, sent with Content-Type: {JSON_MEDIA_TYPE}"
    )


def _decoded(raw: str) -> str:
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidInput("the body is not UTF-8 text") from None


def _check_depth(text: str) -> None:
    if nested_deeper_than(text, MAX_JSON_DEPTH):
        raise InvalidInput(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")


def _strings_outside_body(event: dict[str, Any]) -> list[tuple[list[str], str]]:
    found: list[tuple[list[str], str]] = [(["path"], str(event.get("path") or ""))]
    for source, location in (
        ("queryStringParameters", "query"),
        ("multiValueQueryStringParameters", "query"),
        ("pathParameters", "path"),
        ("headers", "header"),
        ("multiValueHeaders", "header"),
    ):
        for name, value in (event.get(source) or {}).items():
            values = value if isinstance(value, list) else [value]
            found.append(([location, str(name)], str(name)))
            found.extend(([location, str(name)], str(v)) for v in values if v is not None)
    return found


def _strings_in_json(value: Any, location: list[str]) -> list[tuple[list[str], str]]:
    # Depth is bounded by MAX_JSON_DEPTH by now, so recursion is safe.
    if isinstance(value, str):
        return [(location, value)]
    if isinstance(value, list):
        return [
            s for i, item in enumerate(value) for s in _strings_in_json(item, [*location, str(i)])
        ]
    if isinstance(value, dict):
        found: list[tuple[list[str], str]] = []
        for key, item in value.items():
            found.append(([*location, key], key))
            found.extend(_strings_in_json(item, [*location, key]))
        return found
    return []


def storable(text: str) -> bool:
    """Whether Postgres can keep `text` in a `text` or `jsonb` column: no NUL, and valid
    UTF-8 once encoded (an unpaired surrogate is not)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_strings(strings: list[tuple[list[str], str]]) -> None:
    bad = [location for location, text in strings if not storable(text)]
    if bad:
        raise InvalidInput(
            "the request contains a character that cannot be stored "
            "(a NUL character or an unpaired surrogate)",
            details=[
                {
                    "loc": [_printable(part) for part in location],
                    "msg": "contains a NUL character or an unpaired surrogate",
                    "type": "unstorable_character",
                }
                for location in bad[:50]
            ],
        )


def _printable(part: str) -> str:
    # The location goes back to the client in JSON: it must not carry the bad characters.
    return part.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
