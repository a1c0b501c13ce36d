"""`taskmill`: the operator and user CLI. Talks to any deployment (local or AWS) over the API.

Tokens are kept per profile in `$TASKMILL_CONFIG_DIR/profiles.json` (default
`~/.config/taskmill`), and refreshed with the refresh token when the access token expires.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = {"succeeded", "failed", "cancelled"}


class CliError(Exception):
    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        # The request may not have been handled, or its answer was lost: trying again with
        # the same Idempotency-Key is safe.
        self.retryable = retryable


RETRYABLE_STATUSES = (502, 503, 504)


def config_path() -> Path:
    base = os.environ.get("TASKMILL_CONFIG_DIR") or Path.home() / ".config" / "taskmill"
    return Path(base) / "profiles.json"


def load_profiles() -> dict[str, Any]:
    path = config_path()
    return json.loads(path.read_text()) if path.exists() else {}


def save_profiles(profiles: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profiles, indent=2))
    path.chmod(0o600)


class Client:
    def __init__(self, profile: str, url: str | None) -> None:
        self.profile = profile
        self.profiles = load_profiles()
        saved = self.profiles.get(profile, {})
        self.url = (
            url or os.environ.get("TASKMILL_URL") or saved.get("url") or DEFAULT_URL
        ).rstrip("/")
        self.saved = saved

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        token: str | None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text) if text else None
            except ValueError:
                return error.code, {"error": {"message": text.decode(errors="replace")}}
        except urllib.error.URLError as error:
            raise CliError(f"cannot reach {self.url}: {error.reason}", retryable=True) from None
        except (TimeoutError, ConnectionError) as error:
            raise CliError(f"no answer from {self.url}: {error}", retryable=True) from None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Any:
        status, answer = self._send(
            method, path, body, self.saved.get("access_token") if auth else None, headers
        )
        if status == 401 and auth and self.saved.get("refresh_token"):
            refreshed, tokens = self._send(
                "POST", "/v1/auth/refresh", {"refresh_token": self.saved["refresh_token"]}, None
            )
            if refreshed == 200:
                self.remember(tokens)
                status, answer = self._send(method, path, body, tokens["access_token"], headers)
        if status >= 400:
            error = (answer or {}).get("error") or {"message": (answer or {}).get("message", "")}
            detail = f" {json.dumps(error.get('details'))}" if error.get("details") else ""
            raise CliError(
                f"{status} {error.get('code', '')}: {error.get('message')}{detail}".strip(),
                retryable=status in RETRYABLE_STATUSES,
            )
        return answer

    def remember(self, tokens: dict[str, Any], email: str | None = None) -> None:
        self.saved = {
            **self.saved,
            "url": self.url,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            **({"email": email} if email else {}),
        }
        self.profiles[self.profile] = self.saved
        save_profiles(self.profiles)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [
        [("" if row.get(c) is None else str(row.get(c)))[:60] for c in columns] for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


JOB_COLUMNS = ["id", "type", "status", "priority", "attempts", "progress", "name", "last_error"]


def show(args: argparse.Namespace, value: Any, columns: list[str] | None = None) -> None:
    if args.json or columns is None:
        print(json.dumps(value, indent=2, default=str))
    elif isinstance(value, list):
        print(table(value, columns))
    else:
        print(table([value], columns))


def watch_job(client: Client, args: argparse.Namespace, job_id: str) -> dict[str, Any]:
    while True:
        job = client.call("GET", f"/v1/jobs/{job_id}")
        if not args.json:
            bar = "#" * (job["progress"] // 5)
            message = job.get("progress_message") or ""
            print(
                f"\r{job['status']:<10} [{bar:<20}] {job['progress']:>3}% {message[:40]:<40}",
                end="",
                flush=True,
            )
        if job["status"] in FINISHED:
            if not args.json:
                print()
            return job
        time.sleep(args.interval)


def run(args: argparse.Namespace) -> Any:
    client = Client(args.profile, args.url)
    command = args.command
    if command == "login":
        password = (
            args.password or os.environ.get("TASKMILL_PASSWORD") or getpass.getpass("password: ")
        )
        tokens = client.call(
            "POST", "/v1/auth/login", {"email": args.email, "password": password}, auth=False
        )
        client.remember(tokens, args.email)
        return print(f"logged in to {client.url} as {args.email} (profile {args.profile})")
    if command == "types":
        return show(args, client.call("GET", "/v1/job-types"), ["name", "external", "description"])
    if command == "queues":
        return show(
            args,
            client.call("GET", "/v1/queues")["items"],
            ["priority", "visible", "in_flight", "delayed", "dlq_depth", "oldest_age_seconds"],
        )
    if command == "requeue":
        body = {
            "status": args.status,
            "older_than_seconds": args.older_than,
            "limit": args.limit,
            "dry_run": args.dry_run,
        }
        return show(args, client.call("POST", "/v1/admin/requeue", body))
    if command == "jobs":
        return jobs(client, args)
    if command == "dlq":
        return dlq(client, args)
    if command == "users":
        return users(client, args)
    if command == "schedules":
        return schedules(client, args)
    raise CliError(f"unknown command {command}")


CREATE_TRIES = 3


def create_safely(client: Client, body: dict[str, Any], key: str) -> Any:
    """Create a job, retrying what may have worked (a 503 or a lost answer can come after the
    job was committed) with the same Idempotency-Key: a retry returns the job the first try
    created instead of a second one."""
    headers = {"Idempotency-Key": key}
    for attempt in range(1, CREATE_TRIES + 1):
        try:
            return client.call("POST", "/v1/jobs", body, headers=headers)
        except CliError as error:
            if attempt == CREATE_TRIES or not error.retryable:
                raise
        time.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def jobs(client: Client, args: argparse.Namespace) -> Any:
    action = args.action
    if action == "create":
        body: dict[str, Any] = {"type": args.type, "payload": json.loads(args.payload)}
        for field in ("priority", "name", "max_attempts", "delay_seconds", "webhook_url"):
            if getattr(args, field) is not None:
                body[field] = getattr(args, field)
        if args.tag:
            body["tags"] = args.tag
        job = create_safely(client, body, args.idempotency_key or str(uuid.uuid4()))
        if args.watch:
            job = watch_job(client, args, job["id"])
        return show(args, job, JOB_COLUMNS)
    if action == "list":
        query = {
            k: v
            for k, v in {
                "status": args.status,
                "type": args.type,
                "priority": args.priority,
                "tag": args.tag,
                "limit": args.limit,
            }.items()
            if v is not None
        }
        return show(args, client.call("GET", f"/v1/jobs?{urlencode(query)}")["items"], JOB_COLUMNS)
    if action == "get":
        return show(
            args, client.call("GET", f"/v1/jobs/{args.id}"), None if args.json else JOB_COLUMNS
        )
    if action == "watch":
        return show(args, watch_job(client, args, args.id), JOB_COLUMNS)
    if action in ("cancel", "retry"):
        return show(args, client.call("POST", f"/v1/jobs/{args.id}/{action}"), JOB_COLUMNS)
    raise CliError(f"unknown jobs action {action}")


def dlq(client: Client, args: argparse.Namespace) -> Any:
    if args.action == "list":
        answer = client.call("GET", f"/v1/dlq/{args.priority}?limit={args.limit}")
        if args.json:
            return show(args, answer)
        print(
            table(
                answer["items"], ["job_id", "type", "status", "attempts", "problem", "last_error"]
            )
        )
        if answer["failed_without_message"]:
            print(f"failed jobs with no DLQ message: {', '.join(answer['failed_without_message'])}")
        return None
    body: dict[str, Any] = {
        "limit": args.limit,
        "dry_run": args.dry_run,
        "purge_orphans": args.purge_orphans,
        "background": args.background,
    }
    if args.job_id:
        body["job_ids"] = args.job_id
    if args.type:
        body["type"] = args.type
    answer = client.call("POST", f"/v1/dlq/{args.priority}/redrive", body)
    if "status" in answer:  # an asynchronous task: follow its progress
        while answer["status"] in ("pending", "running"):
            if not args.json:
                print(
                    f"\rredrive {answer['status']}: {answer['redriven']} redriven, "
                    f"{answer['orphans']} orphans",
                    end="",
                    flush=True,
                )
            time.sleep(args.interval)
            answer = client.call("GET", f"/v1/dlq/redrives/{answer['id']}")
        if not args.json:
            print()
    return show(args, answer)


def users(client: Client, args: argparse.Namespace) -> Any:
    columns = ["id", "email", "role", "disabled"]
    if args.action == "list":
        return show(args, client.call("GET", "/v1/users")["items"], columns)
    if args.action == "create":
        password = args.password or getpass.getpass("password for the new account: ")
        return show(
            args,
            client.call(
                "POST", "/v1/users", {"email": args.email, "password": password, "role": args.role}
            ),
            columns,
        )
    if args.action == "role":
        return show(
            args, client.call("PUT", f"/v1/users/{args.id}/role", {"role": args.role}), columns
        )
    if args.action == "delete":
        client.call("DELETE", f"/v1/users/{args.id}")
        return print("deleted")
    raise CliError(f"unknown users action {args.action}")


def schedules(client: Client, args: argparse.Namespace) -> Any:
    columns = ["id", "name", "cron", "enabled", "next_fire_at", "last_job_id"]
    if args.action == "list":
        return show(args, client.call("GET", "/v1/schedules")["items"], columns)
    if args.action == "create":
        body = {
            "name": args.name,
            "cron": args.cron,
            "job": {"type": args.type, "payload": json.loads(args.payload)},
        }
        return show(args, client.call("POST", "/v1/schedules", body), columns)
    if args.action == "delete":
        client.call("DELETE", f"/v1/schedules/{args.id}")
        return print("deleted")
    raise CliError(f"unknown schedules action {args.action}")


def parser() -> argparse.ArgumentParser:
    # The global options are accepted before or after the command; SUPPRESS keeps a
    # subcommand from overwriting a value given before it with its own default.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--url", help=f"API base URL (default: the profile's, or {DEFAULT_URL})")
    common.add_argument("--profile")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--interval", type=float, help="seconds between polls (default 1)")
    top = argparse.ArgumentParser(prog="taskmill", description=__doc__, parents=[common])
    sub = top.add_subparsers(dest="command", required=True)
    login = sub.add_parser("login", parents=[common])
    login.add_argument("--email", required=True)
    login.add_argument("--password")
    sub.add_parser("types", parents=[common])
    sub.add_parser("queues", parents=[common])
    requeue = sub.add_parser("requeue", parents=[common])
    requeue.add_argument("--status", choices=["queued", "failed"], required=True)
    requeue.add_argument("--older-than", type=int, default=300)
    requeue.add_argument("--limit", type=int, default=100)
    requeue.add_argument("--dry-run", action="store_true")

    jobs_parser = sub.add_parser("jobs", parents=[common]).add_subparsers(
        dest="action", required=True
    )
    create = jobs_parser.add_parser("create", parents=[common])
    create.add_argument("type")
    create.add_argument("--payload", default="{}")
    create.add_argument("--priority", choices=["high", "normal", "low"])
    create.add_argument("--name")
    create.add_argument("--tag", action="append")
    create.add_argument("--max-attempts", type=int, dest="max_attempts")
    create.add_argument("--delay", type=float, dest="delay_seconds")
    create.add_argument("--webhook-url", dest="webhook_url")
    create.add_argument("--watch", action="store_true", help="follow until it finishes")
    create.add_argument(
        "--idempotency-key",
        dest="idempotency_key",
        help="repeat-safe key (default: a new one per command, reused by its own retries)",
    )
    listing = jobs_parser.add_parser("list", parents=[common])
    for name in ("status", "type", "priority", "tag"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--limit", type=int, default=50)
    for action in ("get", "watch", "cancel", "retry"):
        jobs_parser.add_parser(action, parents=[common]).add_argument("id")

    dlq_parser = sub.add_parser("dlq", parents=[common]).add_subparsers(
        dest="action", required=True
    )
    dlq_list = dlq_parser.add_parser("list", parents=[common])
    dlq_list.add_argument("priority", choices=["high", "normal", "low"])
    dlq_list.add_argument("--limit", type=int, default=100)
    redrive = dlq_parser.add_parser("redrive", parents=[common])
    redrive.add_argument("priority", choices=["high", "normal", "low"])
    redrive.add_argument("--job-id", action="append")
    redrive.add_argument("--type")
    redrive.add_argument("--limit", type=int, default=100)
    redrive.add_argument("--dry-run", action="store_true")
    redrive.add_argument("--purge-orphans", action="store_true")
    redrive.add_argument("--background", action="store_true")

    users_parser = sub.add_parser("users", parents=[common]).add_subparsers(
        dest="action", required=True
    )
    users_parser.add_parser("list", parents=[common])
    user_create = users_parser.add_parser("create", parents=[common])
    user_create.add_argument("email")
    user_create.add_argument("--password")
    user_create.add_argument("--role", choices=["admin", "user", "worker"], default="user")
    role = users_parser.add_parser("role", parents=[common])
    role.add_argument("id")
    role.add_argument("role", choices=["admin", "user", "worker"])
    users_parser.add_parser("delete", parents=[common]).add_argument("id")

    schedules_parser = sub.add_parser("schedules", parents=[common]).add_subparsers(
        dest="action", required=True
    )
    schedules_parser.add_parser("list", parents=[common])
    schedule_create = schedules_parser.add_parser("create", parents=[common])
    schedule_create.add_argument("name")
    schedule_create.add_argument("cron", help='five fields, UTC, e.g. "*/5 * * * *"')
    schedule_create.add_argument("type")
    schedule_create.add_argument("--payload", default="{}")
    schedules_parser.add_parser("delete", parents=[common]).add_argument("id")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Not `set_defaults`: the global options' actions are shared with every subcommand, and
    # a default set on one parser would overwrite a value given before the subcommand.
    defaults = {
        "url": None,
        "profile": os.environ.get("TASKMILL_PROFILE", "default"),
        "json": False,
        "interval": 1.0,
    }
    for name, value in defaults.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    try:
        run(args)
    except CliError as error:
        print(f"taskmill: {error}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as error:
        print(f"taskmill: --payload is not valid JSON ({error.msg})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
