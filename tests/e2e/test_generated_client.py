"""A client generated from the OpenAPI document the local stack serves works without hand
edits (SPEC §3): openapi-python-client, installed into a temporary venv for this test only
(tests/e2e/requirements-openapi-client.txt, from PyPI), generates it without a warning, and
the generated code signs in, creates a job (a parsed 201), reads it, and parses the error
envelope of a 400 and a 404.

Also over real HTTP: the document's relative server leads back to the API, and large
answers are gzipped for clients that accept it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.e2e.conftest import Http, RunningStack

REQUIREMENTS = Path(__file__).with_name("requirements-openapi-client.txt")
PASSWORD = "generated-client-password"

# Runs in the temporary venv, next to the generated package.
JOURNEY = """
import json, sys, uuid
from taskmill_client import AuthenticatedClient, Client
from taskmill_client.api.auth import login
from taskmill_client.api.jobs import create_job, get_job
from taskmill_client.models import Credentials, Error, JobCreate, JobOut, TokenResponse

url, email, password = sys.argv[1:4]
seen = {}
signed_in = login.sync_detailed(
    client=Client(base_url=url), body=Credentials(email=email, password=password)
)
assert isinstance(signed_in.parsed, TokenResponse), signed_in
seen["login"] = [signed_in.status_code, type(signed_in.parsed).__name__]
api = AuthenticatedClient(base_url=url, token=signed_in.parsed.access_token)
created = create_job.sync_detailed(client=api, body=JobCreate(type_="noop"))
assert isinstance(created.parsed, JobOut), created
seen["create"] = [created.status_code, "JobOut", str(created.parsed.id), str(created.parsed.status)]
read = get_job.sync_detailed(job_id=created.parsed.id, client=api)
assert isinstance(read.parsed, JobOut), read
seen["read"] = [read.status_code, "JobOut", str(read.parsed.id), read.parsed.type_]
for name, answer in (
    ("invalid", create_job.sync_detailed(client=api, body=JobCreate(type_="no-such-type"))),
    ("missing", get_job.sync_detailed(job_id=uuid.uuid4(), client=api)),
):
    assert isinstance(answer.parsed, Error), answer
    error = answer.parsed.error
    seen[name] = [answer.status_code, "Error", error.code, error.message, error.correlation_id]
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("openapi-client") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,  # this machine's pip configuration warns about every package
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def served_document(stack: RunningStack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.url + "/v1/openapi.json", timeout=30) as answer:  # noqa: S310
        document: dict[str, Any] = json.loads(answer.read())
    return document


def test_a_generated_client_signs_in_creates_reads_and_parses_errors(
    stack: RunningStack, http: Http, client_venv: Path, tmp_path: Path
) -> None:
    email = f"generated-{uuid.uuid4().hex[:8]}@example.com"
    status, body = http.call("POST", "/v1/auth/register", {"email": email, "password": PASSWORD})
    assert status == 201, body
    (tmp_path / "openapi.json").write_text(json.dumps(served_document(stack)))
    (tmp_path / "config.yaml").write_text(
        "project_name_override: taskmill-client\npackage_name_override: taskmill_client\n"
    )
    bin_dir = client_venv / "bin"
    # The generator formats its output with the ruff it installed: found on PATH.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    generated = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            "openapi.json",
            "--output-path",
            "taskmill_client",
            "--meta",
            "none",
            "--config",
            "config.yaml",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output, output  # nothing skipped, nothing to edit by hand

    journey = subprocess.run(
        [str(bin_dir / "python"), "-c", JOURNEY, stack.url, email, PASSWORD],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert journey.returncode == 0, journey.stdout + journey.stderr
    seen = json.loads(journey.stdout)
    assert seen["login"] == [200, "TokenResponse"]
    created_status, _, job_id, job_status = seen["create"]
    assert (created_status, job_status in {"queued", "running", "succeeded"}) == (201, True)
    assert seen["read"] == [200, "JobOut", job_id, "noop"]
    invalid_status, _, invalid_code, invalid_message, invalid_id = seen["invalid"]
    assert (invalid_status, invalid_code) == (400, "invalid_input")
    assert "no-such-type" in invalid_message
    assert invalid_id
    missing_status, _, missing_code, _, missing_id = seen["missing"]
    assert (missing_status, missing_code) == (404, "not_found")
    assert missing_id


def test_the_documented_server_leads_to_the_api(stack: RunningStack) -> None:
    document_url = stack.url + "/v1/openapi.json"
    [server] = served_document(stack)["servers"]
    base = urljoin(document_url, server["url"]).rstrip("/")
    assert base == stack.url
    with urllib.request.urlopen(base + "/v1/health", timeout=10) as answer:  # noqa: S310
        assert answer.status == 200


def test_swagger_ui_comes_gzipped_to_a_browser(stack: RunningStack) -> None:
    request = urllib.request.Request(  # noqa: S310
        stack.url + "/v1/docs", headers={"Accept-Encoding": "gzip, deflate, br"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        assert answer.headers["Content-Encoding"] == "gzip"
        assert answer.headers["Content-Type"].startswith("text/html")
        compressed = answer.read()
    page = gzip.decompress(compressed).decode()
    assert "SwaggerUIBundle" in page
    assert "validatorUrl: null" in page
    assert len(compressed) < len(page) // 3
    with urllib.request.urlopen(stack.url + "/v1/docs", timeout=30) as plain:  # noqa: S310
        assert plain.headers["Content-Encoding"] is None  # a client that did not ask
        assert plain.read().decode() == page
