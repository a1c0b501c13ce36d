"""`make run`: the whole platform on one machine (see issue: local stack)."""

from __future__ import annotations

import sys


def main() -> int:
    print("make run: the local stack is not implemented yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
