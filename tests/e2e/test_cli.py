"""The `taskmill` console script (the one `make` installs into .venv/bin) against the local stack
over HTTP, as a user sees it: what it prints, and its exit codes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    RunningStack,
    closed_port,
    live_redrive_task,
)

pytestmark = pytest.mark.e2e

TASKMILL = Path(sys.executable).parent / "taskmill"


@pytest.fixture(scope="module")
def config(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile logged in as the admin; the URL comes from TASKMILL_PORT, as after `make run`."""
    directory = tmp_path_factory.mktemp("cli-config")
    login = taskmill(
        stack, directory, "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD
    )
    assert login.returncode == 0, login.stderr
    assert login.stdout == f"logged in to {stack.url} as {ADMIN_EMAIL} (profile default)\n"
    return directory


def environment(stack: RunningStack, config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKMILL_")}
    return {**env, "TASKMILL_CONFIG_DIR": str(config_dir), "TASKMILL_PORT": str(stack.port)}


def taskmill(
    stack: RunningStack, config_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TASKMILL), *args],
        capture_output=True,
        text=True,
        env=environment(stack, config_dir),
        input=stdin,
        timeout=60,
        check=False,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_console_script_is_installed_in_the_venv() -> None:
    assert TASKMILL.is_file(), "make installs the `taskmill` console script into .venv/bin"
    done = subprocess.run(
        [str(TASKMILL), "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.startswith("taskmill ")


def test_whoami_and_a_watched_job_that_fails_exits_1(stack: RunningStack, config: Path) -> None:
    me = taskmill(stack, config, "whoami")
    assert me.returncode == 0
    assert f"email:   {ADMIN_EMAIL}\nrole:    admin\n" in me.stdout
    assert f"url:     {stack.url}\n" in me.stdout
    assert set(as_json(taskmill(stack, config, "--json", "whoami"))) >= {"id", "email", "role"}

    ok = taskmill(stack, config, "jobs", "create", "noop", "--watch", "--interval", "0.1")
    assert (ok.returncode, ok.stderr) == (0, "")
    assert "succeeded" in ok.stdout.splitlines()[-1]

    failed = taskmill(
        stack,
        config,
        "jobs",
        "create",
        "fail",
        "--max-attempts",
        "1",
        "--payload",
        '{"message": "boom"}',
        "--watch",
        "--interval",
        "0.1",
    )
    assert failed.returncode == 1
    job_id = failed.stdout.splitlines()[-1].split()[0]
    assert failed.stderr == f"taskmill: job {job_id} failed: boom\n"
    again = taskmill(stack, config, "jobs", "watch", job_id, "--interval", "0.1")
    assert again.returncode == 1

    cancelled = as_json(
        taskmill(stack, config, "--json", "jobs", "create", "noop", "--delay", "60")
    )
    taskmill(stack, config, "jobs", "cancel", cancelled["id"])
    watched = taskmill(stack, config, "jobs", "watch", cancelled["id"])
    assert watched.returncode == 1
    assert watched.stderr.startswith(f"taskmill: job {cancelled['id']} cancelled")


def test_dlq_dry_run_says_would_redrive(stack: RunningStack, config: Path) -> None:
    created = taskmill(
        stack,
        config,
        "--json",
        "jobs",
        "create",
        "fail",
        "--max-attempts",
        "1",
        "--priority",
        "low",
        "--watch",
        "--interval",
        "0.1",
    )
    job = json.loads(created.stdout)
    assert job["status"] == "failed"

    dry = taskmill(stack, config, "dlq", "redrive", "low", "--job-id", job["id"], "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[:3] == [
        "dry run: would redrive 1 job from the low DLQ (nothing changed)",
        "JOB_ID",
        job["id"],
    ]
    dry_json = as_json(
        taskmill(
            stack, config, "--json", "dlq", "redrive", "low", "--job-id", job["id"], "--dry-run"
        )
    )
    assert dry_json["dry_run"] is True
    assert dry_json["would_redrive"] == [job["id"]]
    assert "redriven" not in dry_json
    status = as_json(taskmill(stack, config, "--json", "jobs", "get", job["id"]))["status"]
    assert status == "failed"  # nothing changed

    requeue = taskmill(
        stack, config, "requeue", "--status", "failed", "--older-than", "0", "--dry-run"
    )
    assert requeue.stdout.startswith("dry run: would requeue ")
    assert job["id"] in requeue.stdout
    requeue_json = as_json(
        taskmill(
            stack,
            config,
            "--json",
            "requeue",
            "--status",
            "failed",
            "--older-than",
            "0",
            "--limit",
            "1000",
            "--dry-run",
        )
    )
    assert job["id"] in requeue_json["would_requeue"]
    assert "requeued" not in requeue_json

    real = taskmill(stack, config, "dlq", "redrive", "low", "--job-id", job["id"])
    assert real.stdout.splitlines()[:3] == [
        "redrove 1 job from the low DLQ",
        "JOB_ID",
        job["id"],
    ]


def test_dlq_commands_say_when_a_background_redrive_hides_messages(
    stack: RunningStack, config: Path
) -> None:
    hidden = "a background redrive ({}) is running: the messages it passed over are hidden "
    with live_redrive_task(stack.data_dir, "high") as task:
        listed = taskmill(stack, config, "dlq", "list", "high")
        assert listed.returncode == 0, listed.stderr
        assert hidden.format(task) + "until it ends" in listed.stdout
        assert "no DLQ message" not in listed.stdout
        dry = taskmill(stack, config, "dlq", "redrive", "high", "--dry-run")
        assert dry.stdout.splitlines()[-1] == hidden.format(task) + "until it ends"
        refused = taskmill(stack, config, "dlq", "redrive", "high")
        assert refused.returncode != 0
        assert task in refused.stderr
    after = taskmill(stack, config, "dlq", "list", "high")
    assert "background redrive" not in after.stdout


def test_new_commands_answer_tables_and_json(stack: RunningStack, config: Path) -> None:
    job = as_json(taskmill(stack, config, "--json", "jobs", "create", "noop"))
    events = taskmill(stack, config, "jobs", "events", job["id"])
    assert events.stdout.startswith("AT ")
    assert "queued" in events.stdout
    assert ADMIN_EMAIL in events.stdout  # who created it, by e-mail
    events_json = as_json(taskmill(stack, config, "--json", "jobs", "events", job["id"]))
    assert events_json["next_cursor"] is None  # every page read
    assert events_json["items"][0]["to_status"] == "queued"
    assert set(events_json["items"][0]) == {
        "at",
        "from_status",
        "to_status",
        "actor",
        "actor_email",
        "detail",
    }

    taskmill(stack, config, "jobs", "watch", job["id"], "--interval", "0.1")
    deleted = taskmill(stack, config, "--json", "jobs", "delete", job["id"])
    assert as_json(deleted) == {"id": job["id"], "deleted": True}
    gone = taskmill(stack, config, "jobs", "get", job["id"])
    assert (gone.returncode, gone.stderr) == (4, "taskmill: 404 not_found: job not found\n")

    lines = '{"type": "noop"}\n{"type": "sleep", "payload": {"seconds": 0.1}}\n'
    key = f"batch-{uuid.uuid4()}"
    batch = taskmill(stack, config, "jobs", "batch", "--idempotency-key", key, stdin=lines)
    assert batch.returncode == 0, batch.stderr
    assert batch.stdout.startswith("ID ")
    assert len(batch.stdout.splitlines()) == 3
    repeat = as_json(
        taskmill(
            stack, config, "--json", "jobs", "batch", "-", "--idempotency-key", key, stdin=lines
        )
    )
    assert [j["type"] for j in repeat["items"]] == ["noop", "sleep"]
    assert [j["id"] for j in repeat["items"]] == [
        row.split()[0] for row in batch.stdout.splitlines()[1:]
    ]

    stats = as_json(taskmill(stack, config, "--json", "stats"))
    assert set(stats) >= {"by_status", "by_type", "by_priority", "duration_seconds"}
    assert taskmill(stack, config, "stats").stdout.startswith("STATUS ")

    key = f"audited:{uuid.uuid4().hex[:8]}"
    assert taskmill(stack, config, "limits", "set", key, "--concurrency", "1").returncode == 0
    audit = as_json(taskmill(stack, config, "--json", "audit", "--limit", "5"))
    assert set(audit) == {"items", "next_cursor"}
    assert set(audit["items"][0]) >= {"at", "action", "actor_id", "detail"}
    shown = taskmill(stack, config, "audit").stdout
    assert shown.startswith("AT ")
    assert shown.splitlines()[0].split()[2] == "ACTOR"
    assert any(ADMIN_EMAIL in line and key in line for line in shown.splitlines())

    queues = as_json(taskmill(stack, config, "--json", "queues"))
    assert [q["priority"] for q in queues["items"]] == ["high", "normal", "low"]


def test_an_expired_access_token_is_refreshed(
    stack: RunningStack, config: Path, tmp_path: Path
) -> None:
    shutil.copytree(config, tmp_path, dirs_exist_ok=True)
    profiles = json.loads((tmp_path / "profiles.json").read_text())
    profiles["default"]["access_token"] = "not-a-valid-token"
    (tmp_path / "profiles.json").write_text(json.dumps(profiles))
    assert taskmill(stack, tmp_path, "whoami").returncode == 0
    saved = json.loads((tmp_path / "profiles.json").read_text())["default"]
    assert saved["access_token"] != "not-a-valid-token"


def test_after_logout_a_kept_token_is_told_to_run_taskmill_login(
    stack: RunningStack, config: Path, tmp_path: Path
) -> None:
    session = tmp_path / "session"
    login = taskmill(stack, session, "login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert login.returncode == 0
    kept = tmp_path / "kept"  # the same tokens, kept by someone else
    shutil.copytree(session, kept)

    out = taskmill(stack, session, "logout")
    assert (out.returncode, out.stdout) == (0, f"logged out of {stack.url} (profile default)\n")
    assert "token" not in (session / "profiles.json").read_text()

    errors = []
    for directory in (session, kept):  # no tokens; revoked tokens whose refresh fails
        denied = taskmill(stack, directory, "jobs", "list")
        assert denied.returncode == 3
        assert denied.stderr.count("\n") == 1
        assert denied.stderr.endswith(
            f"run `taskmill login --url {stack.url} --email {ADMIN_EMAIL}`\n"
        )
        errors.append(denied.stderr)
    assert errors[0].startswith(f"taskmill: not logged in ({stack.url}, profile default); ")
    assert errors[1].startswith("taskmill: 401 ")  # the API's reason, after a refresh failed

    wrong = taskmill(stack, session, "login", "--email", ADMIN_EMAIL, "--password", "not-the-one!")
    assert wrong.returncode == 3


def test_unreachable_server_exits_5(stack: RunningStack, config: Path) -> None:
    with closed_port() as port:
        nowhere = f"http://127.0.0.1:{port}"
        done = taskmill(stack, config, "--url", nowhere, "jobs", "list")
    assert done.returncode == 5
    assert done.stderr.startswith(f"taskmill: cannot reach {nowhere}: ")
    assert done.stderr.count("\n") == 1


def test_ctrl_c_while_watching_is_one_line_and_exit_130(stack: RunningStack, config: Path) -> None:
    job = as_json(
        taskmill(stack, config, "--json", "jobs", "create", "sleep", "--payload", '{"seconds": 30}')
    )
    watcher = subprocess.Popen(
        [str(TASKMILL), "jobs", "watch", job["id"], "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(stack, config),
    )
    try:
        assert watcher.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # a status line per change when not on a terminal
            if watcher.stdout.readline().startswith("running"):
                break
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=10)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 130
    assert err == (
        f"taskmill: interrupted; job {job['id']} goes on "
        f"(`taskmill jobs watch {job['id']}` follows it)\n"
    )
    taskmill(stack, config, "jobs", "cancel", job["id"])


def test_an_operator_sets_limits_and_pauses_a_type(stack: RunningStack, config: Path) -> None:
    key = f"customer:{uuid.uuid4().hex[:8]}"
    created = taskmill(
        stack, config, "limits", "set", key, "--concurrency", "1", "--rate", "10/60s"
    )
    assert created.returncode == 0, created.stderr
    header, row = created.stdout.splitlines()
    assert header.split() == ["KEY", "CONCURRENCY", "RATE", "RUNNING", "TOKENS_AVAILABLE", "SOURCE"]
    assert row.split()[:3] == [key, "1", "10/60s"]

    job = as_json(
        taskmill(stack, config, "--json", "jobs", "create", "noop", "--limit-key", key, "--watch")
    )
    assert (job["status"], job["limit_keys"]) == ("succeeded", [key])
    limit = as_json(taskmill(stack, config, "--json", "limits", "get", key))
    assert limit["use"]["started_in_window"] == 1  # the job's start took a token
    listed = as_json(taskmill(stack, config, "--json", "limits", "list", "--limit", "200"))
    assert key in [item["key"] for item in listed["items"]]

    deleted = taskmill(stack, config, "limits", "delete", key)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted the limit on {key}\n")
    gone = taskmill(stack, config, "limits", "get", key)
    assert gone.returncode == 4
    assert gone.stderr.startswith("taskmill: 404 not_found: ")

    paused = taskmill(stack, config, "types", "pause", "noop")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("paused job type noop")
    try:
        types = as_json(taskmill(stack, config, "--json", "types"))
        assert [t["paused"] for t in types if t["name"] == "noop"] == [True]
        held = as_json(taskmill(stack, config, "--json", "jobs", "create", "noop"))
        # Another type in the same queue still runs meanwhile.
        other = taskmill(stack, config, "jobs", "create", "sleep", "--payload", '{"seconds": 0}')
        other_id = other.stdout.splitlines()[1].split()[0]
        assert (
            taskmill(stack, config, "jobs", "watch", other_id, "--interval", "0.1").returncode == 0
        )
        waiting = as_json(taskmill(stack, config, "--json", "jobs", "get", held["id"]))
        assert (waiting["status"], waiting["attempts"]) == ("queued", 0)
    finally:
        resumed = taskmill(stack, config, "types", "resume", "noop")
        assert resumed.returncode == 0, resumed.stderr
    done = taskmill(stack, config, "jobs", "watch", held["id"], "--interval", "0.2")
    assert done.returncode == 0, done.stdout
