"""`taskmill jobs create` retries an answer it could not trust (503, a dropped connection)
with the same Idempotency-Key, so the retry returns the job the first try may have created."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from taskmill_local.cli import main


@pytest.fixture
def flaky_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Answers the first create with 503 (as when the database failed after committing) and
    the second with the job."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            seen.append(
                {"key": self.headers.get("Idempotency-Key"), "body": self.rfile.read(length)}
            )
            status = 503 if len(seen) == 1 else 201
            body = (
                {"error": {"code": "dependency_unavailable", "message": "db"}}
                if status == 503
                else {
                    "id": "6a1f8c1e-0000-4000-8000-000000000001",
                    "type": "noop",
                    "status": "queued",
                    "priority": "normal",
                    "attempts": 0,
                }
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_a_create_answered_503_is_retried_with_the_same_key(
    flaky_api, tmp_path, monkeypatch, capsys
) -> None:
    url, seen = flaky_api
    monkeypatch.setenv("TASKMILL_CONFIG_DIR", str(tmp_path))
    assert main(["--url", url, "jobs", "create", "noop", "--json"]) == 0
    assert len(seen) == 2
    assert seen[0]["key"]
    assert seen[0]["key"] == seen[1]["key"]
    assert json.loads(capsys.readouterr().out)["id"] == "6a1f8c1e-0000-4000-8000-000000000001"


def test_the_key_can_be_given(flaky_api, tmp_path, monkeypatch) -> None:
    url, seen = flaky_api
    monkeypatch.setenv("TASKMILL_CONFIG_DIR", str(tmp_path))
    assert main(["--url", url, "jobs", "create", "noop", "--idempotency-key", "order-42"]) == 0
    assert [s["key"] for s in seen] == ["order-42", "order-42"]
