"""Limit keys: what a job holds, validated and rendered from its type's templates."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from taskmill.errors import InvalidInput

KEY_PATTERN = re.compile(r"[A-Za-z0-9:._-]{1,128}")  # used with fullmatch: `$` allows a final \n
MAX_LIMIT_KEYS = 4
# Every job holds `owner:<owner_id>` implicitly; clients cannot claim another owner's key.
OWNER_PREFIX = "owner:"


def is_valid_key(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None


def require_key(key: str) -> str:
    """A key named in a limit route."""
    if not is_valid_key(key):
        raise InvalidInput(
            "a limit key is 1-128 characters of letters, digits and : . _ -",
            details={"key": key},
        )
    return key


# An owner's key as every job holds it: `owner:` and the owner's id as Postgres writes a
# UUID (lower case, with dashes), which is what the claim compares keys with.
OWNER_KEY_PATTERN = re.compile(
    r"owner:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)  # used with fullmatch


def owner_of_key(key: str) -> UUID | None:
    """The owner an `owner:<id>` key names, as jobs hold it; None for any other key."""
    if OWNER_KEY_PATTERN.fullmatch(key) is None:
        return None
    return UUID(key.removeprefix(OWNER_PREFIX))


def require_limit_key(key: str) -> str:
    """A key a limit is put on: an `owner:` key must name an owner as jobs hold it, or the
    limit would constrain nothing."""
    require_key(key)
    if key.startswith(OWNER_PREFIX) and OWNER_KEY_PATTERN.fullmatch(key) is None:
        raise InvalidInput(
            "an owner key is owner:<account id>, the id as the API shows it "
            "(lower case, with dashes)",
            details={"key": key},
        )
    return key


def render_template(
    template: str, *, job_type: str, owner_id: UUID, payload: Mapping[str, Any]
) -> str:
    """`customer:{payload.customer_id}` → `customer:42`. Fields: `{type}`, `{owner_id}`,
    `{payload.<name>}` (a top-level payload field holding a string or a number)."""
    parts: list[str] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal)
        if field is None:
            continue
        if field == "type":
            value: Any = job_type
        elif field == "owner_id":
            value = owner_id
        elif field.startswith("payload.") and "." not in field[len("payload.") :]:
            name = field[len("payload.") :]
            value = payload.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise InvalidInput(
                    f"limit key template {template!r} needs payload field {name!r} "
                    "(a string or a number)",
                    details={"template": template, "field": name},
                )
        else:
            raise InvalidInput(
                f"limit key template {template!r}: unknown field {{{field}}}",
                details={"template": template},
            )
        parts.append(str(value))
    return "".join(parts)


def check_template(template: str) -> None:
    """Refuse a template that can never render (used when a job type is declared)."""
    for _literal, field, _spec, _conv in string.Formatter().parse(template):
        if field is None or field in ("type", "owner_id"):
            continue
        if not (field.startswith("payload.") and "." not in field[len("payload.") :]):
            raise ValueError(f"limit key template {template!r}: unknown field {{{field}}}")


def resolve_limit_keys(
    requested: Sequence[str],
    templates: Sequence[str],
    *,
    job_type: str,
    owner_id: UUID,
    payload: Mapping[str, Any],
) -> list[str]:
    """The keys a new job holds: its type's rendered templates, then the client's, without
    repeats; at most `MAX_LIMIT_KEYS`, each valid and none an `owner:` key."""
    keys: list[str] = []
    rendered = [
        render_template(t, job_type=job_type, owner_id=owner_id, payload=payload) for t in templates
    ]
    for key in [*rendered, *requested]:
        if not isinstance(key, str) or not is_valid_key(key):
            raise InvalidInput(
                "limit_keys: each key is 1-128 characters of letters, digits and : . _ -",
                details={"limit_keys": list(requested), "key": key},
            )
        if key.startswith(OWNER_PREFIX):
            raise InvalidInput(
                "limit_keys: owner: keys are implicit (every job holds its owner's key)",
                details={"key": key},
            )
        if key not in keys:
            keys.append(key)
    if len(keys) > MAX_LIMIT_KEYS:
        raise InvalidInput(
            f"a job holds at most {MAX_LIMIT_KEYS} limit keys besides its owner's",
            details={"limit_keys": keys},
        )
    return keys


def key_family(key: str | None) -> str:
    """A metric dimension for a key with bounded cardinality: the part before its first
    `:` (`customer:42` → `customer`, `owner:<id>` → `owner`), `none` for a pause."""
    if key is None:
        return "none"
    family, sep, _rest = key.partition(":")
    return family if sep else "other"
