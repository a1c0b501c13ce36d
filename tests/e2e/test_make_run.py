"""What a user sees of `make run` (`python -m taskmill_local.stack`): the banner, one-line errors
with their fix, stops at any moment that leave nothing behind, and restarts that lose no job.

Real subprocesses; assertions on what is printed and what is left running, never on time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ROOT,
    Http,
    RunningStack,
    closed_port,
    stack_env,
    start_stack,
)

pytestmark = pytest.mark.e2e


def run_to_exit(env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskmill_local.stack"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_on(data_dir: Path) -> str:
    """Every process whose command line names the data directory (the stack, Postgres)."""
    found = subprocess.run(["pgrep", "-af", str(data_dir)], capture_output=True, text=True)
    return found.stdout.strip()


def wait_for_exit(process: subprocess.Popen[str], timeout: float = 60) -> int:
    return process.wait(timeout=timeout)


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield int(other.getsockname()[1])


def test_the_banner_says_where_everything_is_and_its_login_line_works(tmp_path) -> None:
    data_dir = tmp_path / "data"
    stack = start_stack(data_dir, {"TASKMILL_ADMIN_PASSWORD": ""})
    try:
        # The API answers before start-up has finished (pollers, the first sweep): a stop
        # before the banner is a stop during start-up, which prints no banner.
        deadline = time.monotonic() + 60
        while "log in:" not in stack.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        banner = stack.log.read_text()
        sqs_endpoint = (data_dir / "sqs.endpoint").read_text().strip()
        [login] = [line.split("log in:", 1)[1] for line in banner.splitlines() if "log in:" in line]
        login = login.strip()
        # The printed line, as printed, from where `make run` runs, against the running stack.
        done = subprocess.run(
            ["bash", "-c", login],
            cwd=ROOT,
            env={**os.environ, "TASKMILL_CONFIG_DIR": str(tmp_path / "cli")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "logged in" in done.stdout
        assert stack.stop() == 0
        output = stack.log.read_text()
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
    # Started with TASKMILL_PORT=0 and TASKMILL_SQS_PORT=0: the ports the servers bound.
    url = f"http://127.0.0.1:{stack.port}"
    assert stack.port != 0
    assert f"API:         {url}/v1\n" in output
    assert f"Swagger UI:  {url}/v1/docs\n" in output
    assert f"Console:     {url}/console/\n" in output
    assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", sqs_endpoint)
    assert f"SQS:         {sqs_endpoint}  (local SQS" in output
    assert f"password in {data_dir / 'admin.password'}" in output
    assert "Traceback" not in output
    # Quiet: the banner and the stop, no request log (the test's health polls made requests).
    assert len(output.splitlines()) < 15, output
    assert f"login --url {url} --email " in login
    # What the stack published for scripts is gone with it.
    assert not (data_dir / "api.url").exists()
    assert not (data_dir / "sqs.endpoint").exists()


def banner_of(stack: RunningStack) -> str:
    deadline = time.monotonic() + 60
    while "log in:" not in stack.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    return stack.log.read_text()


def signs_in(stack: RunningStack, password: str) -> bool:
    body = {"email": ADMIN_EMAIL, "password": password}
    return Http(stack.url).call("POST", "/v1/auth/login", body)[0] == 200


def test_a_restart_never_points_at_a_password_the_admin_does_not_have(tmp_path) -> None:
    """The first admin is made once and never changed by a later start (as a deploy never
    changes it): a restart with another TASKMILL_ADMIN_PASSWORD, or with none, must not send
    the user to a password that does not open the account."""
    data_dir = tmp_path / "data"
    password_file = data_dir / "admin.password"
    first = start_stack(data_dir)  # TASKMILL_ADMIN_PASSWORD=ADMIN_PASSWORD
    assert "password from TASKMILL_ADMIN_PASSWORD" in banner_of(first)
    assert first.stop() == 0

    second = start_stack(data_dir, {"TASKMILL_ADMIN_PASSWORD": "another-password-1"})
    try:
        shown = banner_of(second)
        assert signs_in(second, ADMIN_PASSWORD)  # unchanged, as documented
        assert "password from TASKMILL_ADMIN_PASSWORD" not in shown
        assert "made by an earlier start with another password" in shown
        assert "# asks for the password" in shown
    finally:
        assert second.stop() == 0

    third = start_stack(data_dir, {"TASKMILL_ADMIN_PASSWORD": ""})
    try:
        shown = banner_of(third)
        assert f"password in {password_file}" not in shown
        assert "made by an earlier start with another password" in shown
        # No file holding a password that opens nothing (`until [ -s admin.password ]`).
        assert not password_file.exists()
    finally:
        assert third.stop() == 0


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["-h"], 0), (["--port", "9"], 2)])
def test_arguments_start_nothing_help_says_where_the_settings_are(
    tmp_path, argv: list[str], code: int
) -> None:
    """`taskmill-local --help` (or `python -m taskmill_local.stack --help`) is a question, not
    a start: it used to start the whole stack on the default ports, data in the current
    directory. Its settings are environment variables; an argument is a usage error."""
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "taskmill_local.stack", *argv],
        cwd=tmp_path,
        env=stack_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        pytest.fail(f"`{' '.join(argv)}` started the stack")
    assert process.returncode == code, err
    assert "Taskmill is running" not in out
    assert not data_dir.exists()
    if code == 0:
        assert "TASKMILL_PORT" in out
        assert "TASKMILL_DATA_DIR" in out
    else:
        [line] = err.splitlines()
        assert line.startswith("taskmill: ")
        assert "--help" in line


@pytest.mark.parametrize("which", ["TASKMILL_PORT", "TASKMILL_SQS_PORT"])
def test_a_port_in_use_is_one_line_with_the_fix_and_nothing_starts(
    tmp_path, listening: int, which: str
) -> None:
    data_dir = tmp_path / "data"
    done = run_to_exit(stack_env(data_dir, {which: str(listening)}))
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"port {listening}" in line
    assert "already in use" in line
    assert f"{which}=" in line  # how to choose another
    assert not (data_dir / "pgdata").exists()
    assert processes_on(data_dir) == ""


def test_a_second_stack_on_the_same_data_dir_is_refused(stack: RunningStack) -> None:
    done = run_to_exit(stack_env(stack.data_dir))
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert f"another local stack (pid {stack.process.pid})" in line
    assert "TASKMILL_DATA_DIR" in line
    assert stack.process.poll() is None  # the first one is untouched
    assert Http(stack.url).call("GET", "/v1/health")[0] == 200


def test_an_unreachable_database_url_is_one_line_without_the_password(tmp_path) -> None:
    data_dir = tmp_path / "data"
    with closed_port() as port:
        url = f"postgresql://taskmill:pa55-word-XYZ@127.0.0.1:{port}/taskmill"
        done = run_to_exit({**stack_env(data_dir), "DATABASE_URL": url})
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    assert "pa55-word-XYZ" not in line
    assert "127.0.0.1" in line
    assert "unset" in line
    assert "DATABASE_URL" in line
    assert processes_on(data_dir) == ""


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path, where: str) -> None:
    """`TASKMILL_DATA_DIR` naming a file, or a path no one can create: not a traceback."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    data_dir = a_file if where == "a file" else a_file / "data"
    done = run_to_exit(stack_env(data_dir), timeout=60)
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"taskmill: TASKMILL_DATA_DIR {data_dir} cannot be used (")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("answering", ["nothing", "not SQS"])
def test_an_sqs_endpoint_that_does_not_answer_is_one_line_and_nothing_starts(
    tmp_path, answering: str, listening: int
) -> None:
    """AWS_ENDPOINT_URL (an ElasticMQ or LocalStack of one's own, or one left exported in the
    shell) where no SQS answers: a 70-line botocore traceback, after the embedded Postgres
    had been made and started."""
    data_dir = tmp_path / "data"
    with closed_port() as closed:
        port = closed if answering == "nothing" else listening  # accepts, never answers HTTP
        endpoint = f"http://127.0.0.1:{port}"
        env = {**stack_env(data_dir), "AWS_ENDPOINT_URL": endpoint}
        done = run_to_exit(env, timeout=90)
    assert done.returncode != 0
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"taskmill: cannot reach an SQS endpoint at AWS_ENDPOINT_URL {endpoint}")
    assert "env -u AWS_ENDPOINT_URL make run" in line  # the way back to the local SQS
    assert not (data_dir / "pgdata").exists()
    assert processes_on(data_dir) == ""


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("TASKMILL_ADMIN_EMAIL", "admin", "is not an e-mail address the API's login takes"),
        ("TASKMILL_ADMIN_PASSWORD", "short", "at least 10 characters, it has 5"),
    ],
)
def test_a_first_admin_who_could_not_sign_in_is_one_line_and_nothing_starts(
    tmp_path, variable: str, value: str, said: str
) -> None:
    """Not a stack whose admin the login refuses (400), nor a traceback from the start-up."""
    data_dir = tmp_path / "data"
    done = run_to_exit({**stack_env(data_dir), variable: value}, timeout=60)
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"taskmill: {variable} ")
    assert said in line
    assert "short" not in line  # the password is never shown
    assert not (data_dir / "pgdata").exists()


def test_a_job_module_that_cannot_be_imported_is_one_line_and_nothing_starts(tmp_path) -> None:
    """Not a banner followed by a traceback from every poller and sweep (a newcomer's typo)."""
    data_dir = tmp_path / "data"
    env = {**stack_env(data_dir), "TASKMILL_JOB_MODULES": "acme_jobs_not_there.resize"}
    done = run_to_exit(env, timeout=60)
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "TASKMILL_JOB_MODULES='acme_jobs_not_there.resize'" in line
    assert str(ROOT / "layers") in line  # where README says to put it
    assert not (data_dir / "pgdata").exists()
    assert processes_on(data_dir) == ""


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TASKMILL_HTTP_ALLOW_PRIVATE", "maybe"), ("TASKMILL_MAX_UNFINISHED_JOBS", "lots")],
)
def test_a_setting_the_functions_refuse_is_one_line_and_nothing_starts(
    tmp_path, variable: str, value: str
) -> None:
    """Checked before anything starts, as the README says: not after Postgres was made and
    started, the SQS server and its queues too, only to stop them all again."""
    data_dir = tmp_path / "data"
    done = run_to_exit({**stack_env(data_dir), variable: value}, timeout=60)
    assert done.returncode != 0
    assert done.stdout == ""  # not even "starting Taskmill locally…"
    [line] = done.stderr.splitlines()
    assert line.startswith("taskmill: ApiSettings is invalid: ")
    assert f"{variable}: " in line
    assert not (data_dir / "pgdata").exists()
    assert processes_on(data_dir) == ""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_during_start_up_leaves_nothing_running_and_prints_no_traceback(
    tmp_path, stop_signal: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "stack.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskmill_local.stack"],
            cwd=ROOT,
            env=stack_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            # SIGINT ignored, as for a job a shell starts with `&`: the stack must still hear it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        # Once its Postgres runs, the stack has something to stop.
        pid_file = data_dir / "pgdata" / "postmaster.pid"
        while not pid_file.exists() and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(stop_signal)
        code = wait_for_exit(process)
    output = log.read_text()
    assert code == 0, output
    assert "Traceback" not in output
    assert output.splitlines()[-1] == "stopped."
    assert processes_on(data_dir) == ""


def test_jobs_queued_waiting_or_running_before_a_restart_run_after_it(tmp_path) -> None:
    """Local SQS lives in memory and the previous process ran the bodies: after a restart,
    with no manual step, a running job runs again, the job waiting for it follows, and a
    delayed job whose message was lost runs when due."""
    data_dir = tmp_path / "data"
    first = start_stack(data_dir)
    http = Http(first.url)
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    # The blocker: running when the stack stops; its lease (timeout 600 s + slack) would
    # otherwise keep it "running" for ten minutes.
    blocker = http.call(
        "POST",
        "/v1/jobs",
        {"type": "sleep", "payload": {"seconds": 15}, "timeout_seconds": 600},
    )[1]
    assert http.wait_for(blocker["id"], {"running"}, timeout=60)["status"] == "running"
    status, waiting = http.call("POST", "/v1/jobs", {"type": "noop", "depends_on": [blocker["id"]]})
    assert (status, waiting["status"]) == (201, "waiting")
    status, delayed = http.call("POST", "/v1/jobs", {"type": "noop", "delay_seconds": 25})
    assert (status, delayed["status"]) == (201, "queued")
    assert first.stop() == 0
    stopped_output = first.log.read_text()
    assert "Traceback" not in stopped_output

    second = start_stack(data_dir)
    try:
        again = Http(second.url)
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        for job in (blocker, waiting, delayed):
            done = again.wait_for(job["id"], {"succeeded", "failed", "cancelled"}, timeout=120)
            assert done["status"] == "succeeded", done
    finally:
        assert second.stop() == 0


def test_a_killed_stack_is_taken_over_and_its_postgres_stopped_with_the_next(tmp_path) -> None:
    data_dir = tmp_path / "data"
    first = start_stack(data_dir)
    first.process.kill()  # kill -9: no clean-up at all; its Postgres keeps running
    first.process.wait(timeout=30)
    assert re.search(r"postgres", processes_on(data_dir))
    second = start_stack(data_dir)  # the lock of a dead process is free
    again = Http(second.url)
    again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert second.stop() == 0
    assert processes_on(data_dir) == ""


def test_a_background_redrive_cut_off_by_a_killed_stack_does_not_block_the_next_one(
    tmp_path,
) -> None:
    """A background redrive runs on a thread of the stack: killed (kill -9, a crash) mid-task,
    the task's row still says `running`. The next start on the same data directory knows no
    thread runs it any more: the task ends `failed` saying why, and a redrive of its DLQ is
    answered at once instead of a 409 for the next 15 minutes."""
    import psycopg
    from pgserver.utils import PostmasterInfo

    data_dir = tmp_path / "data"
    first = start_stack(data_dir)
    info = PostmasterInfo.read_from_pgdata(data_dir / "pgdata")
    assert info is not None, "the stack's Postgres is running"
    # The row a task whose chunk is at work leaves behind (a real one ends in moments here).
    with psycopg.connect(info.get_uri(database="taskmill"), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO redrive_tasks (id, priority, criteria, status) "
            "VALUES (gen_random_uuid(), 'low', '{}', 'running') RETURNING id"
        ).fetchone()
    assert row is not None
    task_id = str(row[0])
    before = Http(first.url)
    before.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, body = before.call("POST", "/v1/dlq/low/redrive", {"limit": 10})
    assert (status, body["error"]["details"]) == (409, {"task_id": task_id})
    first.process.kill()
    first.process.wait(timeout=30)

    second = start_stack(data_dir)
    try:
        again = Http(second.url)
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        status, task = again.call("GET", f"/v1/dlq/redrives/{task_id}")
        assert (status, task["status"]) == (200, "failed")
        assert "stopped" in task["error"]
        status, peek = again.call("GET", "/v1/dlq/low")
        assert (status, peek["redrive_task_id"], peek["complete"]) == (200, None, True)
        status, body = again.call("POST", "/v1/dlq/low/redrive", {"limit": 10})
        assert (status, body["redriven"]) == (200, [])
    finally:
        assert second.stop() == 0


def test_a_failed_job_is_still_in_its_dlq_after_a_restart_and_can_be_redriven(tmp_path) -> None:
    """The local SQS starts empty: without its message a failed job would vanish from the
    Dead letters page and the queue's DLQ depth, and a redrive would not find it."""
    data_dir = tmp_path / "data"
    first = start_stack(data_dir)
    http = Http(first.url)
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    status, job = http.call(
        "POST",
        "/v1/jobs",
        {"type": "fail", "payload": {"message": "boom"}, "max_attempts": 1, "priority": "low"},
    )
    assert status == 201, job
    assert http.wait_for(job["id"], {"failed"}, timeout=60)["status"] == "failed"
    status, peek = http.call("GET", "/v1/dlq/low")
    assert [item["job_id"] for item in peek["items"]] == [job["id"]]
    assert first.stop() == 0

    second = start_stack(data_dir)
    try:
        again = Http(second.url)
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        status, peek = again.call("GET", "/v1/dlq/low")
        assert status == 200, peek
        assert [(i["job_id"], i["last_error"]) for i in peek["items"]] == [(job["id"], "boom")]
        assert peek["failed_without_message"] == []
        status, queues = again.call("GET", "/v1/queues")
        assert {q["priority"]: q["dlq_depth"] for q in queues["items"]}["low"] == 1
        status, result = again.call("POST", "/v1/dlq/low/redrive", {})
        assert (status, result["redriven"]) == (200, [job["id"]])
    finally:
        assert second.stop() == 0
