"""Schemathesis against the OpenAPI document a local stack serves, as a user and as an admin
(`make test-slow`): every operation with at most 20 generated requests per phase (examples,
coverage — which also sends methods and inputs the document excludes —, fuzzing, stateful
sequences along the document's links) and a fixed seed.

Zero failures allowed of `not_a_server_error` (no 5xx, whatever the input), of
`response_schema_conformance` (every answer matches the document) and of
`status_code_conformance` (ST103: no answer has a status the document does not list for its
operation — SPEC §3: "the status it really answers ... the error envelope for each error
status it can answer") and of `unsupported_method` (a method a path does not take is a 405
with `Allow`, not a 404: the coverage phase sends each path the methods it does not list).
tests/integration/api/test_openapi.py checks the other direction: for a sample of routes,
every status the document lists does happen.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Http,
    RunningStack,
    start_stack,
)
from tests.support.faults import stop_postgres

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    (
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "unsupported_method",
    )
)
MAX_EXAMPLES = 20
SEED = 20261123
USER_EMAIL = "fuzzed-user@example.com"
USER_PASSWORD = "fuzzed-user-password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    running = start_stack(data_dir)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()
        stop_postgres(data_dir / "pgdata")


@pytest.fixture(scope="module")
def tokens(stack: RunningStack) -> dict[str, str]:
    """Both tokens first: fuzzing the login and sign-up routes fills their throttles for
    this address, and an admin's fuzzing may disable or delete the user."""
    admin = Http(stack.url)
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    user = Http(stack.url)
    status, body = user.call(
        "POST", "/v1/auth/register", {"email": USER_EMAIL, "password": USER_PASSWORD}
    )
    assert status == 201, body
    user.login(USER_EMAIL, USER_PASSWORD)
    assert admin.token
    assert user.token
    return {"user": user.token, "admin": admin.token}


def schemathesis(url: str, token: str, report_dir: Path) -> tuple[dict[str, Any], str]:
    """Run `st run` against the served document; its JSON report and its output."""
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # Logging out ends the caller's session, and deleting an account (the caller may
        # delete their own: the stateful phase follows the link from `GET /v1/auth/me`, an
        # admin's once it has created another admin) ends every request after it as a 401.
        # Both have their own tests: tests/security/test_account_state.py.
        "--exclude-path",
        "/v1/auth/logout",
        "--exclude-name",
        "DELETE /v1/users/{user_id}",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "json",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    # In the report's directory: schemathesis keeps a cache of failing cases under its working
    # directory and replays it on later runs, which would make a run depend on the ones before.
    done = subprocess.run(
        command, cwd=report_dir, capture_output=True, text=True, timeout=600, check=False
    )
    reports = sorted(report_dir.glob("json-*.json"))
    assert reports, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(reports[-1].read_text()), done.stdout


@pytest.mark.parametrize("role", ["user", "admin"])  # in this order: see `tokens`
def test_schemathesis_finds_no_server_error_schema_violation_or_undocumented_status(
    stack: RunningStack, tokens: dict[str, str], role: str, tmp_path: Path
) -> None:
    report, output = schemathesis(stack.url, tokens[role], tmp_path)
    failing = report["failures"]
    cases = report["test_cases"]
    warnings = report["warnings"]
    print(
        f"\n  schemathesis as {role}: {report['operations']['tested']} operations, "
        f"{cases['generated']} test cases in {report['running_time']:.0f} s; "
        f"server errors, schema violations and undocumented statuses: "
        f"{sum(f['count'] for f in failing)}; "
        f"operations refused to the role: {len(warnings['missing_auth'])}; "
        f"never reached with existing data: {len(warnings['missing_test_data'])}"
    )
    assert report["complete"], output[-3000:]
    assert report["errors"] == [], output[-5000:]
    assert failing == [], output[-8000:]
    # The token worked to the end, so every operation was tried as the role: those that
    # answered only 401/403 are the ones the role may not use (for a user, the admin routes)
    # and login and refresh, which refuse the generated credentials.
    caller = Http(stack.url)
    caller.token = tokens[role]
    assert caller.call("GET", "/v1/auth/me")[0] == 200
    assert caller.call("GET", "/v1/health")[0] == 200
