"""The local gateway calls the API function as Lambda does: one event at a time per
container. Before, it called the one API handler from every connection's thread at once, and
the resolver's current event is per app, not per thread: under concurrent requests one
user's request was answered as another user's (the soak saw a user's cancel of their own
job answered 404, found while the request was read as another user's)."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from functions.api.authorizer import check
from functions.api.handler import handle
from taskmill_local.gateway import Gateway
from tests.integration.api.conftest import PASSWORD, make_account


@pytest.fixture
def gateway(app: Any, services: Any) -> Iterator[Gateway]:
    gw = Gateway(
        lambda event, context: handle(event, context, app, services),
        lambda event, context: check(event, services.tokens),
        host="127.0.0.1",
        port=0,
    )
    gw.start()
    yield gw
    gw.stop()


def _call(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def busy_threads() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so that requests overlap in every
    part of their handling, as they do on a loaded machine."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_concurrent_requests_are_answered_for_their_own_caller(
    gateway: Gateway, db, busy_threads
) -> None:
    emails = [f"user{i}@example.com" for i in range(4)]
    tokens, jobs = {}, {}
    for email in emails:
        make_account(db, email)
        login = {"email": email, "password": PASSWORD}
        tokens[email] = _call(gateway.port, "POST", "/v1/auth/login", login)[1]["access_token"]
        jobs[email] = _call(gateway.port, "POST", "/v1/jobs", {"type": "noop"}, tokens[email])[1]
    wrong: list[Any] = []
    answered = []

    def ask(email: str) -> None:
        for _ in range(6):
            status, me = _call(gateway.port, "GET", "/v1/auth/me", token=tokens[email])
            if (status, me.get("email")) != (200, email):
                wrong.append((email, status, me))
            job_id = jobs[email]["id"]
            status, job = _call(gateway.port, "GET", f"/v1/jobs/{job_id}", token=tokens[email])
            if (status, job.get("id")) != (200, job_id):
                wrong.append((email, status, job))
            answered.append(email)

    threads = [threading.Thread(target=ask, args=(e,)) for e in emails for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answered) == 48
    assert wrong == []
