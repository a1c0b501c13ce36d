"""The invariant check reads a job's whole history over the API (tests/support/invariants.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.invariants import ApiView, _history_problems


class PagedHistory:
    """An admin's API client for one job whose history is `events`, paged as the API pages
    it: `limit` at a time, the index of the next event as the cursor."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.paths: list[str] = []

    def call(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        self.paths.append(path)
        query = parse_qs(urlsplit(path).query)
        limit = int(query.get("limit", ["50"])[0])
        start = int(query.get("cursor", ["0"])[0])
        end = start + limit
        more = end < len(self.events)
        return 200, {"items": self.events[start:end], "next_cursor": str(end) if more else None}


def test_the_history_check_reads_every_page() -> None:
    """`ApiView.events` read the history as a bare list: on a paged answer it saw the keys
    `items` and `next_cursor`, and on a long history it would check the first page only."""
    statuses = ["queued"] + ["running", "queued"] * 149 + ["running", "succeeded"]
    events: list[dict[str, Any]] = [
        {"from_status": before, "to_status": after, "detail": {}}
        for before, after in zip([None, *statuses], statuses, strict=False)
    ]
    admin = PagedHistory(events)
    view = ApiView(admin)  # type: ignore[arg-type]
    assert view.events("j1") == events
    assert len(admin.paths) == 2  # 301 events, 200 a page
    assert _history_problems(view, {"id": "j1", "status": "succeeded"}) == []
    events[250]["from_status"] = "failed"  # a gap on the second page is found
    assert _history_problems(view, {"id": "j1", "status": "succeeded"}) == [
        "history jumps from running to failed->queued"
    ]
