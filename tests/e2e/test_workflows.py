"""The README's workflow example on the local stack over HTTP: a job fans out to N child jobs
and a last child sums their results (`TASKMILL_JOB_MODULES=tests.support.fanout_jobs`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Http,
    RunningStack,
    start_stack,
)
from tests.e2e.test_cli import taskmill

pytestmark = pytest.mark.e2e

USER_PASSWORD = "fan-out-password-1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("e2e-workflows") / "data"
    running = start_stack(data_dir, {"TASKMILL_JOB_MODULES": "tests.support.fanout_jobs"})
    yield running
    if running.process.poll() is None:
        running.stop()


def user(stack: RunningStack, email: str) -> Http:
    http = Http(stack.url)
    status, body = http.call(
        "POST", "/v1/auth/register", {"email": email, "password": USER_PASSWORD}
    )
    assert status == 201, body
    http.login(email, USER_PASSWORD)
    return http


def test_fan_out_children_are_listed_and_summed(stack: RunningStack, tmp_path: Path) -> None:
    count = 6
    ann = user(stack, "ann@workflows.test")
    status, parent = ann.call(
        "POST", "/v1/jobs", {"type": "example.fanout", "payload": {"count": count}}
    )
    assert status == 201, parent
    assert parent["parent_id"] is None
    done = ann.wait_for(parent["id"], {"succeeded", "failed", "cancelled"})
    assert done["status"] == "succeeded", done

    status, listing = ann.call("GET", f"/v1/jobs?parent_id={parent['id']}&limit=200")
    assert status == 200, listing
    children = {job["id"]: job for job in listing["items"]}
    assert set(children) == {*done["result"]["parts"], done["result"]["total"]}
    assert sorted(job["type"] for job in children.values()) == ["example.square"] * count + [
        "example.sum"
    ]
    assert {job["parent_id"] for job in children.values()} == {parent["id"]}
    assert {job["owner_id"] for job in children.values()} == {parent["owner_id"]}

    total = ann.wait_for(done["result"]["total"], {"succeeded", "failed", "cancelled"})
    assert total["status"] == "succeeded", total
    assert total["result"] == {"sum": sum(n * n for n in range(1, count + 1))}
    assert total["depends_on"] == done["result"]["parts"]

    # Someone else sees none of them; the admin sees them all, from the CLI too.
    status, theirs = user(stack, "bob@workflows.test").call(
        "GET", f"/v1/jobs?parent_id={parent['id']}"
    )
    assert (status, theirs["items"]) == (200, [])
    login = taskmill(stack, tmp_path, "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert login.returncode == 0, login.stderr
    listed = taskmill(
        stack, tmp_path, "--json", "jobs", "list", "--parent-id", parent["id"], "--limit", "200"
    )
    assert listed.returncode == 0, listed.stderr
    assert {job["id"] for job in json.loads(listed.stdout)["items"]} == set(children)
