"""Completion webhooks against receivers that misbehave, each a real local HTTP server."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.settings import WorkerSettings

from tests.integration.worker.conftest import failures, queue_messages
from tests.support.certificates import self_signed


def webhook_job(store: JobStore) -> Job:
    [hook] = [j for j in store.list_jobs(JobFilter()).items if j.type == "webhook.deliver"]
    return store.get(hook.id)


@pytest.fixture
def worker_settings(worker_settings: WorkerSettings) -> WorkerSettings:
    # A short deadline keeps the trickling receivers' tests short; 10 s by default.
    return worker_settings.model_copy(update={"webhook_timeout_seconds": 2})


@pytest.fixture
def gone_receiver() -> Iterator[tuple[str, list[str]]]:
    """A receiver whose endpoint was removed: it answers 410 Gone to every POST."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests.append(self.path)
            self.send_response(410)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", requests
    server.shutdown()
    server.server_close()


def test_a_receiver_answering_410_gone_is_not_retried(
    enqueue, deliver, store, sqs, job_queue, gone_receiver
) -> None:
    url, requests = gone_receiver
    enqueue("noop", webhook_url=url)
    assert failures(deliver()) == []
    deliver()  # the webhook job: 410
    hook = webhook_job(store)
    assert requests == ["/hook"]
    # Failed for good at its first attempt (the type allows 5), saying why, where the owner
    # sees every failed webhook: its job.
    assert (hook.status, hook.attempts, hook.max_attempts) == (JobStatus.FAILED, 1, 5)
    assert "410" in str(hook.last_error)
    assert "not retried" in str(hook.last_error)
    assert queue_messages(sqs, job_queue.queue_url(hook.priority.value)) == []


# A 200 answer of some 270 bytes: trickled a byte every quarter second, about a minute.
TRICKLED_ANSWER = (
    b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 220 + b"\r\nContent-Length: 2\r\n\r\nok"
)


def _trickle(conn: socket.socket, data: bytes, dropped: threading.Event) -> bool:
    """Send `data` a byte every quarter second; False once the client hung up (`dropped` is
    then set) or the test ended."""
    for byte in data:
        try:
            conn.sendall(bytes([byte]))
        except OSError:
            dropped.set()
            return False
        if dropped.wait(0.25):
            return False
    return True


@pytest.fixture
def trickling_receiver() -> Iterator[tuple[str, threading.Event]]:
    """A receiver that sends its 200 answer one byte every quarter second (about a minute in
    all): each read gets a byte long before a per-read timeout, so only a deadline for the
    whole delivery ends it. `dropped` is set when the client hung up before the end."""
    dropped = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            if not _trickle(conn, TRICKLED_ANSWER, dropped):
                return
            # The answer is out; a client that stopped reading shows when the socket ends.
            if conn.recv(1) == b"":
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook", dropped
    dropped.set()
    listener.close()
    thread.join()


@pytest.fixture
def trickling_tls_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, threading.Event]]:
    """An https receiver (its certificate trusted) that sends its 200 answer one byte every
    quarter second, each byte in a TLS record of its own: every record arrives long before
    a per-read timeout (which ssl applies to a whole record), so only a deadline for the
    whole delivery ends it. It gives up after 200 bytes (50 s), so a client that is never
    cut off fails the test rather than hangs it. `dropped` is set when the client hung up
    while bytes were still coming."""
    cert, key = self_signed(tmp_path, "127.0.0.1")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    dropped = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as conn:
            head = b""
            while b"\r\n\r\n" not in head:
                received = conn.recv(65536)
                if not received:
                    return
                head += received
            _trickle(conn, TRICKLED_ANSWER[:200], dropped)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/hook", dropped
    dropped.set()
    listener.close()
    thread.join()


@pytest.mark.parametrize("receiver", ["trickling_receiver", "trickling_tls_receiver"])
def test_a_trickling_receiver_cannot_hold_a_delivery_past_its_deadline(
    enqueue, deliver, store, receiver: str, request: pytest.FixtureRequest
) -> None:
    """Over http and https. TLS wraps (and detaches) the connection's socket: the deadline
    must cut the TLS socket, which owns the connection."""
    url, dropped = request.getfixturevalue(receiver)
    enqueue("noop", webhook_url=url)
    assert failures(deliver()) == []
    # A delivery has WEBHOOK_TIMEOUT_SECONDS in all (2 s here; its job's timeout, 30 s, is
    # further away).
    deliver()
    hook = webhook_job(store)
    # Ended at its deadline, mid-answer: the attempt failed (and is retried) instead of
    # taking the answer a minute later.
    assert dropped.wait(30)
    assert (hook.status, hook.attempts) == (JobStatus.QUEUED, 1)
    assert "did not answer within 2 s" in str(hook.last_error)
