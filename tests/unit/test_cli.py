"""The `taskmill` CLI without a server: help, version, URL choice, exit codes, completion, batch
files. What it does against a real API is in tests/e2e/test_cli.py."""

from __future__ import annotations

import argparse
import getpass
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from taskmill_local import cli
from taskmill_local.cli import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TASKMILL_URL", "TASKMILL_PORT", "TASKMILL_PROFILE", "TASKMILL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKMILL_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"taskmill {version('taskmill')}"


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                yield name, argparse.Action([], name, help=helps.get(name))
                for path, nested in subcommands(child):
                    yield f"{name} {path}", nested


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in cli.walk(cli.parser()):
        for action in command._actions:
            if not action.help and not isinstance(action, argparse._SubParsersAction):
                missing.append(f"{path or 'taskmill'}: {action.option_strings or action.dest}")
    missing += [f"{path}: no summary" for path, a in subcommands(cli.parser()) if not a.help]
    assert missing == []


def test_help_documents_exit_codes_and_completion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for line in (
        "0    success",
        "1    a watched job",
        "3    not logged in",
        "130  interrupted",
        "141  the reader of the output left",
    ):
        assert line in out
    assert 'eval "$(taskmill completion bash)"' in out
    for command in ("whoami", "logout", "stats", "audit", "completion"):
        assert f"    {command}" in out


def test_the_url_follows_the_environment_then_the_profile(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.Client("default", None).url == "http://127.0.0.1:8000"
    isolated.mkdir(parents=True)
    (isolated / "profiles.json").write_text(json.dumps({"default": {"url": "https://saved/"}}))
    assert cli.Client("default", None).url == "https://saved"
    monkeypatch.setenv("TASKMILL_PORT", "18999")
    assert cli.Client("default", None).url == "http://127.0.0.1:18999"
    monkeypatch.setenv("TASKMILL_URL", "https://env.example/")
    assert cli.Client("default", None).url == "https://env.example"
    assert cli.Client("default", "http://flag:1").url == "http://flag:1"


def test_a_bad_port_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TASKMILL_PORT", "eighty")
    assert main(["types"]) == 2
    assert capsys.readouterr().err == "taskmill: TASKMILL_PORT='eighty' is not a port number\n"
    # Digits to str.isdigit, not to a URL: "²" was a ValueError traceback, "٣" a request to
    # http://127.0.0.1:٣ ("did not answer JSON").
    for other in ("\u00b2", "\u0663"):
        monkeypatch.setenv("TASKMILL_PORT", other)
        assert main(["types"]) == 2
        said = capsys.readouterr().err
        assert said == f"taskmill: TASKMILL_PORT={other!r} is not a port number\n"
    # 0 is the local stack's "any free port": only the stack knows which it got.
    monkeypatch.setenv("TASKMILL_PORT", "0")
    assert main(["types"]) == 2
    assert "TASKMILL_PORT=0" in capsys.readouterr().err
    monkeypatch.setenv("TASKMILL_URL", "http://127.0.0.1:18999")  # what it printed
    assert cli.Client("default", None).url == "http://127.0.0.1:18999"


@pytest.fixture
def api() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """A scripted API: `answers[path]` is (status, body), or a list of them answered in turn
    (the last one again once it is the only one left); every request is recorded."""
    seen: list[dict[str, Any]] = []
    answers: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length) if length else b""
            seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "body": json.loads(body) if body else None,
                }
            )
            scripted = answers.get(self.path, (404, {"error": {"code": "not_found"}}))
            if isinstance(scripted, list):
                scripted = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            status, reply = scripted
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, answers
    server.shutdown()
    server.server_close()


def save_profile(config: Path, url: str) -> None:
    config.mkdir(parents=True, exist_ok=True)
    profile = {"url": url, "access_token": "old-access", "refresh_token": "old-refresh"}
    (config / "profiles.json").write_text(json.dumps({"default": profile}))


def test_a_401_tries_a_refresh_then_says_run_taskmill_login(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    unauthorized = {"error": {"code": "unauthorized", "message": "the session has ended"}}
    answers["/v1/auth/me"] = (401, unauthorized)
    answers["/v1/auth/refresh"] = (401, unauthorized)
    assert main(["whoami"]) == 3
    assert [s["path"] for s in seen] == ["/v1/auth/me", "/v1/auth/refresh"]
    assert seen[0]["auth"] == "Bearer old-access"
    assert seen[1]["body"] == {"refresh_token": "old-refresh"}
    err = capsys.readouterr().err
    assert err == (
        "taskmill: 401 unauthorized: the session has ended; "
        f"run `taskmill login --url {url} --email EMAIL`\n"
    )


def test_a_profiles_tokens_go_only_to_its_own_url(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, "https://elsewhere.example")
    answers["/v1/auth/me"] = (401, {"error": {"code": "unauthorized", "message": "no token"}})
    assert main(["--url", url, "whoami"]) == 3
    assert [(s["path"], s["auth"]) for s in seen] == [("/v1/auth/me", None)]
    assert f"not logged in ({url}, profile default)" in capsys.readouterr().err


def test_json_logout_answers_the_same_fields_logged_in_or_not(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    answers["/v1/auth/logout"] = (204, None)
    assert main(["--json", "--url", url, "logout"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "url": url,
        "profile": "default",
        "was_logged_in": True,
        "session_ended": True,
    }
    # Again, with nothing left to end: a script reads the same keys, not a KeyError.
    assert main(["--json", "--url", url, "logout"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "url": url,
        "profile": "default",
        "was_logged_in": False,
        "session_ended": False,
    }
    assert [s["path"] for s in seen] == ["/v1/auth/logout"]


@pytest.mark.parametrize(("status", "code"), [(403, 4), (409, 4), (429, 4), (500, 5), (503, 5)])
def test_exit_codes_follow_the_status(
    api, isolated: Path, capsys: pytest.CaptureFixture[str], status: int, code: int
) -> None:
    url, _, answers = api
    save_profile(isolated, url)
    answers["/v1/stats?window_hours=24"] = (status, {"error": {"code": "x", "message": "no"}})
    assert main(["stats"]) == code
    assert capsys.readouterr().err == f"taskmill: {status} x: no\n"


def test_an_unreachable_server_is_exit_5_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        assert main(["--url", f"http://127.0.0.1:{port}", "jobs", "list"]) == 5
    err = capsys.readouterr().err
    assert err.startswith(f"taskmill: cannot reach http://127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["jobs", "create", "noop", "--payload", "{nope"]) == 2
    assert "--payload is not valid JSON" in capsys.readouterr().err
    assert main(["jobs", "batch", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "frobnicate"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    "text",
    [
        '{"jobs": [{"type": "noop"}, {"type": "sleep"}]}',
        '[{"type": "noop"}, {"type": "sleep"}]',
        '{"type": "noop"}\n\n{"type": "sleep"}\n',
    ],
)
def test_batch_files_are_json_or_json_lines(tmp_path: Path, text: str) -> None:
    path = tmp_path / "jobs"
    path.write_text(text)
    assert [job["type"] for job in cli.read_batch(str(path))] == ["noop", "sleep"]


def test_a_batch_of_more_than_100_goes_in_requests_with_derived_keys(
    api, isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    job = {"id": "j", "type": "noop", "status": "queued", "priority": "normal", "attempts": 0}
    answers["/v1/jobs/batch"] = (201, {"items": [job] * 100})
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"type": "noop"}\n' * 150)
    assert main(["--json", "jobs", "batch", str(path), "--idempotency-key", "k"]) == 0
    assert [len(s["body"]["jobs"]) for s in seen] == [100, 50]
    assert len(json.loads(capsys.readouterr().out)["items"]) == 200  # what the API answered


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10/60s", (10, 60.0)),
        ("10/60", (10, 60.0)),
        ("10/1m", (10, 60.0)),
        ("100/h", (100, 3600.0)),
        ("5/s", (5, 1.0)),
        ("3/1.5s", (3, 1.5)),
    ],
)
def test_a_rate_is_n_per_period(text: str, rate: tuple[int, float]) -> None:
    assert cli.parse_rate(text) == {"limit": rate[0], "period_seconds": rate[1]}


@pytest.mark.parametrize("text", ["10", "x/60s", "0/60s", "10/0s", "10/60y", "10/-1s", "/60s"])
def test_a_bad_rate_is_a_usage_error(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["limits", "set", "customer:42", "--rate", text]) == 2
    assert "expected N/PERIOD" in capsys.readouterr().err


def test_limits_set_sends_the_whole_limit_and_shows_it_flat(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    limit = {
        "key": "customer:42",
        "concurrency": 2,
        "rate": {"limit": 10, "period_seconds": 60.0},
        "source": "limit",
        "updated_at": "2026-01-01T00:00:00Z",
        "updated_by": "admin:x",
        "use": {"running": 1, "started_in_window": 3, "tokens_available": 7.050688333333333},
    }
    answers["/v1/limits/customer:42"] = (200, limit)
    assert main(["limits", "set", "customer:42", "--concurrency", "2", "--rate", "10/60s"]) == 0
    assert seen[-1]["method"] == "PUT"
    assert seen[-1]["body"] == {"concurrency": 2, "rate": {"limit": 10, "period_seconds": 60.0}}
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["KEY", "CONCURRENCY", "RATE", "RUNNING", "TOKENS_AVAILABLE", "SOURCE"]
    assert row.split() == ["customer:42", "2", "10/60s", "1", "7.05", "limit"]

    assert main(["limits", "set", "customer:42", "--rate-limit", "5", "--rate-period", "2"]) == 0
    assert seen[-1]["body"] == {"concurrency": None, "rate": {"limit": 5, "period_seconds": 2.0}}
    capsys.readouterr()
    assert main(["limits", "get", "customer:42"]) == 0
    shown = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["rate:", "10/60s"] in shown
    assert ["started_in_window:", "3"] in shown
    assert ["tokens_available:", "7.05"] in shown

    answers["/v1/limits/customer:42"] = (204, None)
    assert main(["--json", "limits", "delete", "customer:42"]) == 0
    assert seen[-1]["method"] == "DELETE"
    assert json.loads(capsys.readouterr().out) == {"key": "customer:42", "deleted": True}


@pytest.mark.parametrize(
    "argv",
    [
        ["limits", "set", "k"],  # nothing to set
        ["limits", "set", "k", "--rate-limit", "5"],  # without its period
        ["limits", "set", "k", "--rate", "5/s", "--rate-limit", "5", "--rate-period", "1"],
    ],
)
def test_a_limit_needs_something_to_set_once(
    argv: list[str], api, capsys: pytest.CaptureFixture[str]
) -> None:
    _, seen, _ = api
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("taskmill: ")
    assert seen == []  # refused before any request


def test_queues_and_types_list_without_an_action_and_pause_with_one(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    queue = {"priority": "normal", "visible": 3, "in_flight": 0, "delayed": 0}
    answers["/v1/queues"] = (200, {"items": [{**queue, "dlq_depth": 0, "paused": True}]})
    assert main(["queues"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["PRIORITY", "PAUSED", "VISIBLE"]
    assert row.split()[:3] == ["normal", "true", "3"]

    paused = {"kind": "queue", "name": "normal", "paused": True, "paused_at": "t", "paused_by": "a"}
    answers["/v1/queues/normal/pause"] = (200, paused)
    assert main(["queues", "pause", "normal"]) == 0
    assert (seen[-1]["method"], seen[-1]["path"]) == ("POST", "/v1/queues/normal/pause")
    assert capsys.readouterr().out.startswith("paused queue normal")
    with pytest.raises(SystemExit):
        main(["queues", "pause", "urgent"])  # not a priority
    capsys.readouterr()

    resumed = {"kind": "type", "name": "http.request", "paused": False}
    answers["/v1/job-types/http.request/resume"] = (200, {**resumed, "paused_at": None})
    assert main(["--json", "types", "resume", "http.request"]) == 0
    assert json.loads(capsys.readouterr().out)["paused"] is False
    # The API answers the types as a list, not a page.
    answers["/v1/job-types"] = (200, [{"name": "noop", "external": False, "paused": True}])
    assert main(["types"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:3] == ["NAME", "EXTERNAL", "PAUSED"]


def test_jobs_create_sends_its_limit_keys(api, isolated: Path) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    job = {"id": "j", "type": "noop", "status": "queued", "priority": "normal", "attempts": 0}
    answers["/v1/jobs"] = (201, job)
    argv = ["jobs", "create", "noop", "--limit-key", "customer:42", "--limit-key", "api:x"]
    assert main(argv) == 0
    assert seen[-1]["body"]["limit_keys"] == ["customer:42", "api:x"]


def test_jobs_create_sends_its_dependencies(api, isolated: Path) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    job = {"id": "j", "type": "noop", "status": "waiting", "priority": "normal", "attempts": 0}
    answers["/v1/jobs"] = (201, job)
    argv = ["jobs", "create", "noop", "--depends-on", "a1", "--depends-on", "b2"]
    assert main(argv) == 0
    assert seen[-1]["body"]["depends_on"] == ["a1", "b2"]
    assert main(["jobs", "create", "noop"]) == 0
    assert "depends_on" not in seen[-1]["body"]


def run_completion(script: str, *words: str) -> list[str]:
    words_array = " ".join(f"'{w}'" for w in words)
    program = f"""{script}
COMP_WORDS=({words_array}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); _taskmill
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.split()


@pytest.mark.skipif(
    shutil.which("bash") is None, reason="bash is not installed: the completion runs in a real bash"
)
def test_bash_completion_offers_commands_options_and_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete -o default -F _taskmill taskmill" in script
    assert "whoami" in run_completion(script, "taskmill", "")
    assert run_completion(script, "taskmill", "jobs", "ev") == ["events"]
    assert run_completion(script, "taskmill", "--json", "jobs", "create", "x", "--pri") == [
        "--priority"
    ]
    assert run_completion(script, "taskmill", "jobs", "list", "--status", "f") == ["failed"]
    assert run_completion(script, "taskmill", "dlq", "redrive", "") == ["high", "normal", "low"]
    assert run_completion(script, "taskmill", "queues", "") == ["pause", "resume"]
    assert run_completion(script, "taskmill", "queues", "pause", "") == ["high", "normal", "low"]
    assert run_completion(script, "taskmill", "limits", "") == ["list", "get", "set", "delete"]
    # A free value (a URL, a file) is left to the shell's own completion.
    assert run_completion(script, "taskmill", "--url", "") == []


@pytest.mark.skipif(
    shutil.which("zsh") is None,
    reason="zsh is not installed (`apt install zsh`): the script loads in a real zsh",
)
def test_the_zsh_script_loads_in_zsh(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["completion", "zsh"]) == 0
    script = tmp_path / "completion.zsh"
    script.write_text(capsys.readouterr().out)
    # Without compinit loaded first (as in a bare ~/.zshrc) as well.
    check = f"source {script}; print -r -- $_comps[taskmill]"
    done = subprocess.run(
        ["zsh", "-f", "-c", check],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env={**os.environ, "ZDOTDIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip() == "_bash_complete -o default -F _taskmill"


def test_schedules_create_sends_the_time_zone_only_when_given(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    schedule = {
        "id": "s1",
        "name": "mornings",
        "cron": "0 9 * * MON-FRI",
        "timezone": "Asia/Tokyo",
        "enabled": True,
        "next_fire_at": "2027-01-04T00:00:00Z",
        "last_job_id": None,
    }
    answers["/v1/schedules"] = (201, schedule)
    args = ["schedules", "create", "mornings", "0 9 * * MON-FRI", "noop"]
    assert main([*args, "--timezone", "Asia/Tokyo"]) == 0
    assert main(args) == 0
    zoned, default = (s["body"] for s in seen)
    assert zoned == {
        "name": "mornings",
        "cron": "0 9 * * MON-FRI",
        "timezone": "Asia/Tokyo",
        "job": {"type": "noop", "payload": {}},
    }
    assert "timezone" not in default
    assert "Asia/Tokyo" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    ["notaurl", "http://[::1", "http://127.0.0.1:abc", "http://a b", "ftp://x", "file:///etc"],
)
def test_a_url_that_is_not_http_is_a_usage_error_in_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", url, "whoami"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"taskmill: the API URL {url!r} is not ")
    assert err.count("\n") == 1
    monkeypatch.setenv("TASKMILL_URL", url)
    assert main(["jobs", "list"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_url_the_banner_prints_with_v1_works_too(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `make run` prints "API: http://127.0.0.1:8000/v1"; logging in there went to
    # /v1/v1/auth/login and answered "401 a valid bearer token is required".
    url, seen, answers = api
    tokens = {"access_token": "a", "refresh_token": "r" * 20, "token_type": "Bearer"}
    answers["/v1/auth/login"] = (200, {**tokens, "expires_in": 900})
    answers["/v1/auth/me"] = (200, {"email": "a@b.c", "role": "user", "id": "1"})
    assert main(["--url", f"{url}/v1/", "login", "--email", "a@b.c", "--password", "x" * 10]) == 0
    assert main(["--url", f"{url}/v1", "whoami"]) == 0
    assert [s["path"] for s in seen] == ["/v1/auth/login", "/v1/auth/me"]
    assert seen[1]["auth"] == "Bearer a"  # the same API, so the same profile's tokens


def one_shot_server(reply: bytes) -> tuple[str, socket.socket]:
    """A server that answers every connection with `reply`, whatever was asked."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                conn.recv(65536)
                conn.sendall(reply)
                # Read what is left of the request before closing: closing with unread
                # data resets the connection, and the client would never see the reply.
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", listener


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP at all
        b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"access',  # cut short
    ],
)
def test_a_server_that_does_not_speak_http_is_exit_5_in_one_line(
    reply: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    url, listener = one_shot_server(reply)
    with listener:
        assert main(["--url", url, "login", "--email", "a@b.c", "--password", "x" * 10]) == 5
    err = capsys.readouterr().err
    assert err.startswith(f"taskmill: no valid HTTP answer from {url}: ")
    assert err.count("\n") == 1


def test_an_error_page_in_html_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    page = b"<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n"
    head = f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: {len(page)}\r\n\r\n".encode()
    url, listener = one_shot_server(head + page)
    with listener:
        assert main(["--url", url, "types"]) == 5
    err = capsys.readouterr().err
    assert err == "taskmill: 502: <html> <body> <h1>502 Bad Gateway</h1> </body> </html>\n"


@pytest.mark.parametrize(
    "content", ["[]", '{"default": []}', '{"default": {"url": 5}}', "directory"]
)
def test_a_broken_profiles_file_is_a_usage_error_in_one_line(
    content: str, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated.mkdir(parents=True)
    if content == "directory":
        (isolated / "profiles.json").mkdir()
    else:
        (isolated / "profiles.json").write_text(content)
    assert main(["--url", "http://127.0.0.1:9", "whoami"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"taskmill: {isolated / 'profiles.json'}")
    assert err.count("\n") == 1


def test_a_config_dir_that_cannot_be_written_is_one_line(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, answers = api
    answers["/v1/auth/login"] = (
        200,
        {"access_token": "a", "refresh_token": "r" * 20, "token_type": "Bearer", "expires_in": 1},
    )
    isolated.parent.mkdir(parents=True, exist_ok=True)
    isolated.write_text("a file where the directory should be")
    assert main(["--url", url, "login", "--email", "a@b.c", "--password", "x" * 10]) == 2
    err = capsys.readouterr().err
    assert err.startswith("taskmill: cannot save the login in ")
    assert err.count("\n") == 1


def test_another_apis_error_shape_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Another service on the port, answering its own JSON error shape.
    body = b'{"error": "Not Found", "path": "/v1/job-types"}'
    head = f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    url, listener = one_shot_server(head + body)
    with listener:
        assert main(["--url", url, "types"]) == 4
    assert capsys.readouterr().err == "taskmill: 404: Not Found\n"


def ok(body: bytes) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.mark.parametrize(
    ("command", "body", "said"),
    [
        (["whoami"], b"[1, 2]", "a JSON list where Taskmill answers a JSON object"),
        (["queues"], b'"hello"', "a JSON string where Taskmill answers a JSON object"),
        (["stats"], b"null", "null where Taskmill answers a JSON object"),
        (["types"], b'{"items": []}', "a JSON object where Taskmill answers a list of objects"),
        (["types"], b"[1, 2]", "a JSON list where Taskmill answers a list of objects"),
        (["whoami"], b'{"status": "ok"}', 'an object without "email"'),
        (["queues", "pause", "low"], b"{}", 'an object without "paused"'),
    ],
)
def test_another_apis_success_shape_is_one_line(
    isolated: Path, capsys: pytest.CaptureFixture[str], command: list[str], body: bytes, said: str
) -> None:
    """Another service on the port answering 200 with JSON of its own made the CLI print a
    traceback (a list indexed like an object, a field that is not there)."""
    url, listener = one_shot_server(ok(body))
    save_profile(isolated, url)
    with listener:
        assert main(["--url", url, *command]) == 5
    err = capsys.readouterr().err
    assert err == f"taskmill: {url} answered {said}: is it a Taskmill API?\n"


def test_a_followed_redrive_outlasts_a_server_that_blinks(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A background redrive's progress is polled like a watched job's: one 503 (or an
    unreachable API) ended the command with exit 5 while the redrive went on."""
    url, seen, answers = api
    save_profile(isolated, url)
    task = {"id": "t1", "status": "running", "redriven": 0, "orphans": 0, "purged": 0}
    answers["/v1/dlq/low/redrive"] = (202, task)
    unavailable = (503, {"error": {"code": "unavailable", "message": "try again"}})
    done = {**task, "status": "done", "redriven": 3, "error": None}
    answers["/v1/dlq/redrives/t1"] = [unavailable, unavailable, (200, done)]
    assert main(["dlq", "redrive", "low", "--background", "--interval", "0.01"]) == 0
    assert [s["path"] for s in seen].count("/v1/dlq/redrives/t1") == 3
    shown = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["redriven:", "3"] in shown


def test_a_redrive_task_in_a_state_taskmill_never_writes_is_not_a_success(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A followed task whose status was neither live nor an ending printed it and exited 0."""
    url, _, answers = api
    save_profile(isolated, url)
    task = {"id": "t1", "status": "running", "redriven": 0, "orphans": 0, "purged": 0}
    answers["/v1/dlq/low/redrive"] = (202, task)
    answers["/v1/dlq/redrives/t1"] = (200, {**task, "status": "paused", "error": None})
    assert main(["dlq", "redrive", "low", "--background", "--interval", "0.01"]) == 5
    err = capsys.readouterr().err
    assert err.endswith(
        'answered "status": a JSON string where Taskmill answers one of pending, running, done, '
        "failed: is it a Taskmill API?\n"
    )


def test_schedules_pause_resume_and_update_send_only_what_changes(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    schedule = {"id": "s1", "name": "n", "cron": "@daily", "enabled": False}
    answers["/v1/schedules/s1"] = (200, schedule)
    assert main(["schedules", "pause", "s1"]) == 0
    assert main(["schedules", "resume", "s1"]) == 0
    assert main(["schedules", "update", "s1", "--cron", "0 9 * * *", "--timezone", "UTC"]) == 0
    assert (
        main(["schedules", "update", "s1", "--type", "sleep", "--payload", '{"seconds": 1}']) == 0
    )
    assert [(s["method"], s["path"], s["body"]) for s in seen] == [
        ("PATCH", "/v1/schedules/s1", {"enabled": False}),
        ("PATCH", "/v1/schedules/s1", {"enabled": True}),
        ("PATCH", "/v1/schedules/s1", {"cron": "0 9 * * *", "timezone": "UTC"}),
        ("PATCH", "/v1/schedules/s1", {"job": {"type": "sleep", "payload": {"seconds": 1}}}),
    ]
    assert "@daily" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["schedules", "update", "s1"], "nothing to change"),
        (["schedules", "update", "s1", "--payload", "{}"], "--payload needs --type"),
        (["schedules", "update", "s1", "--type", "noop", "--payload", "{"], "not valid JSON"),
    ],
)
def test_schedules_update_refuses_what_it_cannot_send(
    api, isolated: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    url, seen, _ = api
    save_profile(isolated, url)
    assert main(args) == 2
    assert said in capsys.readouterr().err
    assert seen == []


def test_schedules_list_pages_like_the_other_lists(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    page = {"items": [], "next_cursor": "abc"}
    answers["/v1/schedules?"] = (200, page)
    answers["/v1/schedules?limit=2&cursor=abc"] = (200, {**page, "next_cursor": None})
    assert main(["schedules", "list"]) == 0
    assert "(more: add --cursor abc)" in capsys.readouterr().out
    assert main(["schedules", "list", "--limit", "2", "--cursor", "abc"]) == 0
    assert [s["path"] for s in seen] == ["/v1/schedules?", "/v1/schedules?limit=2&cursor=abc"]


def test_jobs_events_prints_the_whole_history_across_pages(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`GET /v1/jobs/{id}/events` is a paged list: the CLI read it as a bare list, and
    printed neither the events nor more than the first page of them."""
    url, seen, answers = api
    save_profile(isolated, url)
    path = "/v1/jobs/j1/events"

    def event(n: int, to: str) -> dict[str, Any]:
        return {"at": f"t{n}", "from_status": None, "to_status": to, "actor": "worker",
                "actor_email": None, "detail": {"n": n}}  # fmt: skip

    first = [event(n, "queued") for n in range(3)]
    second = [event(n, "running") for n in range(3, 5)]
    answers[f"{path}?limit=200"] = (200, {"items": first, "next_cursor": "c 1/+"})
    answers[f"{path}?limit=200&cursor=c+1%2F%2B"] = (200, {"items": second, "next_cursor": None})
    assert main(["jobs", "events", "j1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AT", "FROM_STATUS", "TO_STATUS", "ACTOR", "DETAIL"]
    assert [line.split()[0] for line in lines[1:]] == [f"t{n}" for n in range(5)]
    assert not any("more" in line for line in lines)
    assert main(["--json", "jobs", "events", "j1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": first + second, "next_cursor": None}
    assert [s["path"] for s in seen] == [
        f"{path}?limit=200",
        f"{path}?limit=200&cursor=c+1%2F%2B",
    ] * 2


def test_jobs_events_reads_a_deployment_from_before_the_history_was_paged(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An API from before the history was paged answers every event as a bare list: a newer
    CLI said "is it a Taskmill API?" to it."""
    url, _, answers = api
    save_profile(isolated, url)
    event = {"at": "t1", "from_status": None, "to_status": "queued", "actor": "worker"}
    answers["/v1/jobs/j1/events?limit=200"] = (200, [event])
    assert main(["jobs", "events", "j1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["t1", "queued", "worker"]
    assert main(["--json", "jobs", "events", "j1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": [event], "next_cursor": None}
    answers["/v1/jobs/j1/events?limit=200"] = (200, [event, 5])  # not a list of objects
    assert main(["jobs", "events", "j1"]) == 5
    assert "where Taskmill answers a list of objects" in capsys.readouterr().err


def test_jobs_events_stops_at_a_cursor_answered_twice(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service that answers every page with the same cursor would be read for ever."""
    url, seen, answers = api
    save_profile(isolated, url)
    page = {"items": [], "next_cursor": "again"}
    answers["/v1/jobs/j1/events?limit=200"] = (200, page)
    answers["/v1/jobs/j1/events?limit=200&cursor=again"] = (200, page)
    assert main(["jobs", "events", "j1"]) == 5
    assert capsys.readouterr().err == (
        f"taskmill: {url} answered a next_cursor it had already given (again): "
        "is it a Taskmill API?\n"
    )
    assert len(seen) == 2


JOB: dict[str, Any] = {
    "id": "0b6f3c1e-0000-4000-8000-000000000001",
    "type": "sleep",
    "status": "succeeded",
    "priority": "normal",
    "attempts": 1,
    "progress": 100,
    "progress_message": "done",
    "name": "n",
    "last_error": None,
    "tags": ["a"],
    "result": {"slept": 1},
}
LIMIT: dict[str, Any] = {
    "key": "customer:1",
    "concurrency": 2,
    "rate": {"limit": 10, "period_seconds": 60},
    "use": {"running": 1, "tokens_available": 1.5},
    "source": "admin",
}
TASK = {"id": "t1", "status": "done", "redriven": 2, "orphans": 0, "purged": 0, "error": None}
# Each command with an answer as Taskmill gives it (the scripted server gives it to every
# request the command makes: a create and the reads of its watch get the same job).
ANSWERS: list[tuple[list[str], Any]] = [
    (["whoami"], {"id": "u1", "email": "a@b.c", "role": "user"}),
    (
        ["login", "--email", "a@b.c", "--password", "x" * 10],
        {"access_token": "a", "refresh_token": "r"},
    ),
    (["jobs", "create", "sleep", "--watch", "--interval", "0.01"], JOB),
    (["jobs", "watch", JOB["id"], "--interval", "0.01"], JOB),
    (["jobs", "get", JOB["id"]], JOB),
    (["jobs", "cancel", JOB["id"]], JOB),
    (["jobs", "list"], {"items": [JOB], "next_cursor": "c"}),
    (
        ["jobs", "events", JOB["id"]],
        {
            "items": [{"at": "t", "from_status": "queued", "to_status": "running"}],
            "next_cursor": None,
        },
    ),
    (["queues"], {"items": [{"priority": "low", "paused": False, "visible": 1, "delayed": 0}]}),
    (["queues", "pause", "low"], {"priority": "low", "paused": True}),
    (["types"], [{"name": "noop", "external": False, "paused": False, "description": "d"}]),
    (["limits", "list"], {"items": [LIMIT], "next_cursor": None}),
    (["limits", "get", "customer:1"], LIMIT),
    (["limits", "set", "customer:1", "--concurrency", "2"], LIMIT),
    (
        ["stats"],
        {
            "window_hours": 24,
            "by_status": {"queued": 1},
            "by_type": {"noop": 1},
            "by_priority": {"low": 1},
            "duration_seconds": {"p50": 0.1, "p90": 0.2, "p99": 0.3},
            "throughput_per_minute_last_hour": {"succeeded": 1.0, "failed": 0.0},
        },
    ),
    (
        ["audit"],
        {"items": [{"at": "t", "action": "user.login", "detail": {}}], "next_cursor": None},
    ),
    (["requeue", "--status", "queued", "--older-than", "60"], {"requeued": ["j1", "j2"]}),
    (
        ["dlq", "list", "low"],
        {
            "items": [{"job_id": "j1", "type": "fail", "status": "failed", "attempts": 1}],
            "failed_without_message": ["j2"],
            "redrive_task_id": "t0",
        },
    ),
    (
        ["dlq", "redrive", "low"],
        {"redriven": ["j1"], "skipped": ["j2"], "orphans": ["m1"], "purged": ["m1"]},
    ),
    (["dlq", "redrive", "low", "--dry-run"], {"redriven": ["j1"], "orphans": ["m1"]}),
    (["dlq", "redrive", "low", "--background", "--interval", "0.01"], TASK),
    (["users", "list"], {"items": [{"id": "u1", "email": "a@b.c", "role": "user"}]}),
    (["schedules", "list"], {"items": [{"id": "s1", "name": "n", "cron": "@daily"}]}),
]
WRONG = [5, "x", [1], {"a": 1}, None, True, 1.5]


def wrongly_typed(value: Any) -> Iterator[tuple[str, Any]]:
    """`value` with one field somewhere in it (at any depth) replaced by a value of another
    JSON type, each way: (where, the changed value)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            for wrong in WRONG:
                if type(wrong) is not type(inner) and wrong != inner:
                    yield key, {**value, key: wrong}
            for where, changed in wrongly_typed(inner):
                yield f"{key}.{where}", {**value, key: changed}
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            for where, changed in wrongly_typed(inner):
                yield f"[{index}].{where}", [*value[:index], changed, *value[index + 1 :]]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    """main(argv): its exit code, or the exception that escaped it; and its stderr."""
    try:
        code: Any = main(argv)
    except BaseException as error:  # what escapes main is the finding
        code = error
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("command", "answer"), ANSWERS, ids=[" ".join(c[:2]) for c, _ in ANSWERS])
def test_a_foreign_answer_with_a_wrongly_typed_field_is_one_line_and_exit_5(
    isolated: Path, capsys: pytest.CaptureFixture[str], command: list[str], answer: Any
) -> None:
    """Another service answering 200 with JSON shaped like Taskmill's but with a field of
    another type somewhere (a progress that is a string, a list of ids that is a number, a
    row that is not an object) made the CLI print a traceback, or watch for ever."""
    url, listener = one_shot_server(ok(json.dumps(answer).encode()))
    save_profile(isolated, url)
    problems = []
    with listener:
        code, err = run_cli(["--url", url, *command], capsys)
        assert (code, err) == (0, ""), "the unchanged answer works"
        for where, changed in wrongly_typed(answer):
            listener_url, changed_listener = one_shot_server(ok(json.dumps(changed).encode()))
            save_profile(isolated, listener_url)
            with changed_listener:
                code, err = run_cli(["--url", listener_url, *command], capsys)
            said = err.startswith(f"taskmill: {listener_url} answered") and err.count("\n") == 1
            if (code, err) != (0, "") and not (code == 5 and said):
                problems.append(f"{where}={json.dumps(changed)[:80]}: {code!r} {err[-200:]!r}")
    assert problems == []


def test_a_batch_file_that_is_not_text_is_a_usage_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "jobs.json.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00\xd0\xff")
    assert main(["--url", "http://127.0.0.1:9", "jobs", "batch", str(binary)]) == 2
    assert capsys.readouterr().err == f"taskmill: {binary} is not UTF-8 text (JSON or JSON Lines)\n"


def cli_process(url: str, config: Path, *argv: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "taskmill_local.cli", "--url", url, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TASKMILL_CONFIG_DIR": str(config), **env},
    )


def test_what_the_output_encoding_cannot_show_is_replaced_not_a_traceback(
    api, isolated: Path
) -> None:
    """A job named in letters the terminal's encoding lacks (an ASCII or Latin-1 locale)
    ended `jobs get` with UnicodeEncodeError."""
    url, _, answers = api
    save_profile(isolated, url)
    answers["/v1/jobs/j1"] = (200, {**JOB, "id": "j1", "name": "r\u00e9sum\u00e9 \u2713"})
    process = cli_process(url, isolated, "jobs", "get", "j1", PYTHONIOENCODING="ascii")
    out, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (0, "")
    assert "r?sum? ?" in out


def test_a_reader_that_leaves_early_ends_the_cli_quietly(api, isolated: Path) -> None:
    """`taskmill jobs list | head -1`: the rest of the table has nowhere to go."""
    url, _, answers = api
    save_profile(isolated, url)
    answers["/v1/jobs?limit=50"] = (200, {"items": [JOB] * 3000, "next_cursor": None})
    process = cli_process(url, isolated, "jobs", "list")
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline().startswith("ID ")
    process.stdout.close()
    assert (process.wait(timeout=60), process.stderr.read()) == (cli.EXIT_PIPE_CLOSED, "")


def test_ctrl_c_during_a_watch_says_the_job_goes_on(api, isolated: Path) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    answers["/v1/jobs/j1"] = (200, {**JOB, "id": "j1", "status": "running"})
    process = cli_process(url, isolated, "jobs", "watch", "j1", "--interval", "0.05")
    while not seen:  # watching: past start-up, in the poll loop
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert err.splitlines()[-1] == (
        "taskmill: interrupted; job j1 goes on (`taskmill jobs watch j1` follows it)"
    )
    assert "Traceback" not in err


@pytest.mark.parametrize("body", [b'{"progress": NaN}', b"[" * 100_000 + b"]" * 100_000])
def test_json_no_taskmill_api_writes_is_one_line_and_exit_5(
    isolated: Path, capsys: pytest.CaptureFixture[str], body: bytes
) -> None:
    """NaN (which Python's json reads) and nesting past the parser's recursion limit."""
    url, listener = one_shot_server(ok(body))
    save_profile(isolated, url)
    with listener:
        assert main(["--url", url, "jobs", "get", "j1"]) == 5
    assert (
        capsys.readouterr().err == f"taskmill: {url} did not answer JSON: is it a Taskmill API?\n"
    )


def test_cancelling_a_running_job_says_the_cancel_is_on_its_way(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table after `jobs cancel` said "running" and nothing else: it read as if the
    cancel had not worked."""
    url, _, answers = api
    save_profile(isolated, url)
    running = {**JOB, "id": "j1", "status": "running", "cancel_requested": True}
    answers["/v1/jobs/j1/cancel"] = (200, running)
    assert main(["jobs", "cancel", "j1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("cancel requested: the job stops at its next check")
    answers["/v1/jobs/j1/cancel"] = (200, {**running, "status": "cancelled"})
    assert main(["jobs", "cancel", "j1"]) == 0
    assert "cancel requested" not in capsys.readouterr().out


def test_users_delete_sends_the_password_only_for_ones_own_account(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen, answers = api
    save_profile(isolated, url)
    answers["/v1/auth/me"] = (200, {"id": "me-1", "email": "ann@x.io", "role": "admin"})
    answers["/v1/users/other-2"] = (204, None)
    answers["/v1/users/me-1"] = (204, None)
    assert main(["users", "delete", "other-2"]) == 0
    assert (seen[-1]["method"], seen[-1]["body"]) == ("DELETE", None)
    assert main(["users", "delete", "me-1", "--password", "my long password"]) == 0
    assert (seen[-1]["method"], seen[-1]["body"]) == (
        "DELETE",
        {"current_password": "my long password"},
    )
    assert capsys.readouterr().out.splitlines() == ["deleted user other-2", "deleted user me-1"]


def test_dlq_list_says_when_it_is_not_the_whole_dlq(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, answers = api
    save_profile(isolated, url)
    peek: dict[str, Any] = {
        "priority": "low",
        "items": [],
        "failed_without_message": [],
        "redrive_task_id": None,
    }
    answers["/v1/dlq/low?limit=100"] = (200, {**peek, "complete": False})
    assert main(["dlq", "list", "low"]) == 0
    assert "not the whole DLQ" in capsys.readouterr().out
    answers["/v1/dlq/low?limit=100"] = (200, {**peek, "complete": True})
    assert main(["dlq", "list", "low"]) == 0
    assert "not the whole DLQ" not in capsys.readouterr().out


def test_users_delete_knows_ones_own_id_however_it_is_spelled(
    api, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API reads a UUID in any spelling; typed in capitals without hyphens, one's own id
    still makes the CLI ask for the password (here typed on standard input) and send it,
    instead of sending a delete the API refuses."""
    url, seen, answers = api
    save_profile(isolated, url)
    me = "0f8e7a4c-1b2d-4e3f-9a8b-7c6d5e4f3a2b"
    typed = me.replace("-", "").upper()
    answers["/v1/auth/me"] = (200, {"id": me, "email": "ann@x.io", "role": "user"})
    answers[f"/v1/users/{typed}"] = (204, None)
    monkeypatch.setattr("sys.stdin", io.StringIO("my long password\n"))
    with warnings.catch_warnings():  # no terminal: it reads standard input, and says so
        warnings.simplefilter("error", getpass.GetPassWarning)  # not with a Python warning
        assert main(["users", "delete", typed]) == 0
    assert (seen[-1]["method"], seen[-1]["body"]) == (
        "DELETE",
        {"current_password": "my long password"},
    )


def test_what_users_and_workers_wrote_cannot_drive_the_terminal(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job's name, tags, error and progress message come from its owner, its body or an
    external worker; an admin listing everyone's jobs must see them, not have them erase the
    table's lines, move the cursor, set the window title or reorder the text."""
    url, _, answers = api
    save_profile(isolated, url)
    hostile = {
        **JOB,
        "status": "running",
        "name": "\x1b[1A\x1b[2K\x1b]0;pwned\x07hidden",
        "last_error": "\x9b31mred\u202eevil",
        "progress": 40,
        "progress_message": "\x1b[2Jcleared",
    }
    answers["/v1/jobs?limit=50"] = (200, {"items": [hostile], "next_cursor": None})
    answers[f"/v1/jobs/{JOB['id']}"] = [(200, hostile), (200, JOB)]
    assert main(["jobs", "list"]) == 0
    assert main(["jobs", "get", JOB["id"]]) == 0
    assert main(["jobs", "watch", JOB["id"], "--interval", "0.01"]) == 0
    out = capsys.readouterr().out
    for unshown in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert unshown not in out
    assert "\\x1b[1A\\x1b[2K\\x1b]0;pwned\\x07hidden" in out
    assert "\\x9b31mred\\u202eevil" in out
    assert "\\x1b[2Jcleared" in out


def test_names_in_wide_characters_keep_the_table_aligned(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Columns were padded by characters, not by the columns a terminal shows them in: a
    name in CJK (two columns a character) pushed the rest of its row out of line."""
    url, _, answers = api
    save_profile(isolated, url)
    jobs = [
        {**JOB, "id": str(uuid.uuid4()), "name": name, "last_error": "boom"}
        for name in ("画像の変換", "resize", "e\u0301te\u0301")  # wide; plain; combining marks
    ]
    answers["/v1/jobs?limit=50"] = (200, {"items": jobs, "next_cursor": None})
    assert main(["jobs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "STATUS" in line)
    error_column = cli.shown_width(header[: header.index("LAST_ERROR")])
    rows = [line for line in lines if any(j["id"] in line for j in jobs)]
    assert len(rows) == 3
    for row in rows:
        assert cli.shown_width(row[: row.index("boom")]) == error_column, row


def test_a_long_wide_cell_is_cut_to_its_shown_width() -> None:
    assert cli.shown_width(cli.cell("画" * 50, width=20)) <= 20
    assert cli.cell("画" * 50, width=20).endswith("…")


def test_jobs_list_by_creation_time_sends_times_with_a_zone(
    api, isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API refuses a time without a zone (400): the CLI reads one as local time."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        url, seen, answers = api
        save_profile(isolated, url)
        query = (
            "created_after=2026-11-25T09%3A30%3A00%2B05%3A30"
            "&created_before=2026-11-26T00%3A00%3A00%2B05%3A30&limit=50"
        )
        answers[f"/v1/jobs?{query}"] = (200, {"items": [JOB], "next_cursor": None})
        argv = ["jobs", "list", "--created-after", "2026-11-25T09:30"]
        assert main([*argv, "--created-before", "2026-11-26"]) == 0  # a date: its midnight
        assert seen[-1]["path"] == f"/v1/jobs?{query}"
        with pytest.raises(SystemExit):
            main(["jobs", "list", "--created-after", "yesterday"])
        assert "not an ISO 8601 time" in capsys.readouterr().err
        query = "created_after=2026-11-25T04%3A00%3A00%2B00%3A00&limit=50"
        answers[f"/v1/jobs?{query}"] = (200, {"items": [], "next_cursor": None})
        assert main(["jobs", "list", "--created-after", "2026-11-25T04:00Z"]) == 0  # kept
        assert seen[-1]["path"] == f"/v1/jobs?{query}"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_watched_jobs_error_cannot_drive_the_terminal(
    api, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A watch ends by saying why the job failed on stderr: its `last_error` comes from the
    job's body or an external worker, and was written to the terminal as it was."""
    url, _, answers = api
    save_profile(isolated, url)
    failed = {**JOB, "status": "failed", "last_error": "\x1b]0;pwned\x07boom\u202eevil"}
    answers[f"/v1/jobs/{JOB['id']}"] = (200, failed)
    assert main(["jobs", "watch", JOB["id"], "--interval", "0.01"]) == 1
    err = capsys.readouterr().err
    for unshown in ("\x1b", "\x07", "\u202e"):
        assert unshown not in err
    assert f"taskmill: job {JOB['id']} failed: \\x1b]0;pwned\\x07boom\\u202eevil" in err
