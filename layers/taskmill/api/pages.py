"""List pages that fit in one Lambda response.

Lambda returns at most 6 MB from a synchronous invocation, the proxy envelope included, and
in that envelope the JSON body is itself a JSON string: each quote and backslash of the body
is escaped again, so the envelope is at most twice the body (which is ASCII: the serializer
escapes everything else). Jobs hold payloads and results of hundreds of KiB, so a page of 50
or 200 of them could exceed it, and API Gateway would answer 5xx to that page at every
request. A page therefore holds items while their JSON stays within `PAGE_BUDGET_BYTES`; the
rest are behind `next_cursor`, as if `limit` had been smaller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel

# Twice this, escaped, plus the envelope's headers stays well under 6 MB.
PAGE_BUDGET_BYTES = 2 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def fitting(items: Sequence[M], *, budget: int = PAGE_BUDGET_BYTES) -> list[M]:
    """The first of `items` whose JSON together fits `budget`; always at least one, so a
    page moves on even past an item larger than the budget."""
    total = 0
    for count, item in enumerate(items):
        total += len(item.model_dump_json(ensure_ascii=True)) + 1
        if total > budget and count > 0:
            return list(items[:count])
    return list(items)
