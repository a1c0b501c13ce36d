"""Text Postgres can keep in a `text` or `jsonb` column, from text a job body produced."""

from __future__ import annotations

import re

# NUL (neither type holds one) and surrogates (no UTF-8 encoding of their own, and a string
# in Python holding one is not valid Unicode text).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with each character Postgres cannot store replaced by U+FFFD: for what is
    worth keeping legibly (a progress message, an error) rather than refusing."""
    return _UNSTORABLE.sub("\ufffd", text)
