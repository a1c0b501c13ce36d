"""What a job body may return: a value Postgres can keep as the job's `jsonb` result.

Checked on the body's thread, before the batch records its outcomes: all the batch's
successes are one statement, so a result Postgres refused would fail the whole batch and
leave every one of its jobs running until their leases expired.
"""

from __future__ import annotations

import json
import re
from typing import Any

from taskmill.jobs.model import MAX_JSON_DEPTH, nested_deeper_than
from taskmill.jobs.retry import JobFailure

# A NUL written as an escape, not an escaped backslash followed by "u0000": jsonb refuses it.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class UnstorableResult(JobFailure):
    """The body returned what cannot be stored as the job's result; the attempt fails."""


def check_result(result: Any) -> None:
    """Raise `UnstorableResult` naming the cause unless Postgres can store `result` as
    JSON: not a JSON value (a set, bytes, a datetime, a cycle, an int of more than 4,300
    digits), NaN or Infinity (not JSON, though Python writes them), a NUL character or an
    unpaired surrogate in a string or key; or nested deeper than the API answers
    (`MAX_JSON_DEPTH`), which is not retried: the same body returns the same."""
    try:
        text = json.dumps(result, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:
        reason = str(exc)
        if "Out of range float" in reason:
            reason = "it holds NaN or Infinity, which JSON cannot"
        raise UnstorableResult(f"the result cannot be stored as JSON: {reason}") from exc
    except (TypeError, RecursionError) as exc:
        raise UnstorableResult(f"the result cannot be stored as JSON: {exc}") from exc
    if nested_deeper_than(text):
        raise UnstorableResult(
            f"the result cannot be stored as JSON: it is nested deeper than {MAX_JSON_DEPTH} "
            "levels",
            retryable=False,
        )
    if _NUL_ESCAPE.search(text):
        raise UnstorableResult(
            "the result cannot be stored as JSON: a string holds a NUL character"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnstorableResult(
            "the result cannot be stored as JSON: a string holds an unpaired surrogate"
        ) from None
