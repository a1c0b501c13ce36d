"""taskmill: the Taskmill command line. Talks to any deployment (local or AWS) over the API.

Log in once per deployment (`taskmill login --email ...`); tokens are kept per profile in
$TASKMILL_CONFIG_DIR/profiles.json (default ~/.config/taskmill) and refreshed when the access
token expires. The API URL is --url, else $TASKMILL_URL, else http://127.0.0.1:$TASKMILL_PORT,
else the profile's, else http://127.0.0.1:8000. A profile's tokens are sent only to the URL
they were issued by.

Output is a table for people; --json prints the API's answer for scripts.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import http.client
import io
import json
import os
import signal
import sys
import time
import unicodedata
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
# A profile's values that the CLI reads as strings.
PROFILE_STRINGS = ("url", "access_token", "refresh_token", "email")
FINISHED = {"succeeded", "failed", "cancelled"}
PRIORITIES = ["high", "normal", "low"]
STATUSES = ["scheduled", "waiting", "queued", "running", "succeeded", "failed", "cancelled"]
ROLES = ["admin", "user", "worker"]
SHELLS = ["bash", "zsh"]

# Exit codes (documented in `taskmill --help` and the README).
EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_REFUSED = 4
EXIT_SERVER = 5
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    success
  {EXIT_JOB_FAILED}    a watched job (or background redrive) ended failed or cancelled
  {EXIT_USAGE}    usage error: unknown option, bad JSON, unreadable file, bad API URL
  {EXIT_AUTH}    not logged in, or the session ended: run `taskmill login`
  {EXIT_REFUSED}    the API refused the request (400, 403, 404, 409, 413, 429)
  {EXIT_SERVER}    the API failed (5xx) or could not be reached, or another service answered
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); a job being watched goes on running
  {EXIT_PIPE_CLOSED}  the reader of the output left (`taskmill jobs list | head`)
"""

EPILOG = f"""\
{EXIT_CODES}
shell completion: eval "$(taskmill completion bash)"   (or zsh), e.g. in ~/.bashrc
`taskmill COMMAND --help` describes each command."""


class CliError(Exception):
    def __init__(
        self, message: str, *, retryable: bool = False, exit_code: int = EXIT_SERVER
    ) -> None:
        super().__init__(message)
        # The request may not have been handled, or its answer was lost: trying again with
        # the same Idempotency-Key is safe.
        self.retryable = retryable
        self.exit_code = exit_code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=EXIT_USAGE)


RETRYABLE_STATUSES = (502, 503, 504)


NULL = type(None)


class Answer(dict[str, Any]):
    """A JSON object an API answered. The commands read the fields a Taskmill API always
    sends; one that is missing, or of another JSON type than Taskmill's where a command
    computes with it (`typed`, `rows`, `strings`), means another service answered, said as
    one line."""

    def __init__(self, fields: dict[str, Any], source: str) -> None:
        super().__init__(fields)
        self.source = source

    def __missing__(self, key: str) -> Any:
        raise CliError(f'{self.source} answered an object without "{key}": is it a Taskmill API?')

    def foreign(self, key: str, expected: str) -> CliError:
        return CliError(
            f'{self.source} answered "{key}": {described(self[key])} where Taskmill answers '
            f"{expected}: is it a Taskmill API?"
        )

    def typed(self, key: str, *kinds: type, optional: bool = False) -> Any:
        """self[key] if it is one of `kinds` (int includes float: JSON has numbers);
        `optional`: a missing field is None, as is null."""
        if optional and self.get(key) is None:
            return None
        value = self[key]
        allowed = (*kinds, float) if int in kinds else kinds
        if not isinstance(value, allowed):
            names = {dict: "an object", list: "a list", str: "a string", int: "a number"}
            raise self.foreign(key, " or ".join(names.get(kind, kind.__name__) for kind in kinds))
        return value

    def rows(self, key: str) -> list[Any]:
        """self[key], a list of objects."""
        value = self.typed(key, list)
        if not all(isinstance(row, Answer) for row in value):
            raise self.foreign(key, "a list of objects")
        return value

    def strings(self, key: str, *, optional: bool = False) -> list[str]:
        """self[key], a list of strings (ids); `optional`: missing or null is []."""
        value = self.typed(key, list, optional=optional) or []
        if not all(isinstance(item, str) for item in value):
            raise self.foreign(key, "a list of strings")
        return value


def described(value: Any) -> str:
    """What kind of JSON `value` is, for a message."""
    if value is None:
        return "null"
    kinds = [(bool, "boolean"), (int | float, "number"), (str, "string"), (list, "list")]
    return f"a JSON {next((kind for t, kind in kinds if isinstance(value, t)), 'object')}"


@functools.cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("taskmill")
    except PackageNotFoundError:  # run from a checkout without `pip install -e .`
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, ValueError):
            return "unknown"


def config_path() -> Path:
    base = os.environ.get("TASKMILL_CONFIG_DIR") or Path.home() / ".config" / "taskmill"
    return Path(base) / "profiles.json"


def load_profiles() -> dict[str, Any]:
    path = config_path()
    try:
        profiles = json.loads(path.read_text()) if path.exists() else {}
    except OSError as error:
        raise UsageError(f"{path} cannot be read: {error.strerror}") from None
    except ValueError:
        raise UsageError(f"{path} is not valid JSON; fix or delete it") from None
    # Hand-edited or written by something else: refuse it here, not with a traceback later.
    well_formed = isinstance(profiles, dict) and all(
        isinstance(profile, dict)
        and all(isinstance(profile.get(k, ""), str) for k in PROFILE_STRINGS)
        for profile in profiles.values()
    )
    if not well_formed:
        raise UsageError(
            f"{path} is not a profiles file (an object of profiles, each with string "
            f"{', '.join(PROFILE_STRINGS)}); fix or delete it"
        )
    return profiles


def save_profiles(profiles: dict[str, Any]) -> None:
    path = config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Tokens: readable by the owner only, from the first byte written.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(json.dumps(profiles, indent=2))
        path.chmod(0o600)  # a file made by an older version
    except OSError as error:
        raise UsageError(
            f"cannot save the login in {path}: {error.strerror} "
            "(TASKMILL_CONFIG_DIR picks another directory)"
        ) from None


def checked_url(url: str) -> str:
    """The API's base URL, refused early when urllib would fail on it with a traceback. A
    trailing /v1 (the local stack's banner prints the API as http://127.0.0.1:8000/v1) is
    dropped: every path the CLI sends starts with /v1."""
    base = url.rstrip("/").removesuffix("/v1")
    try:
        parts = urlsplit(base)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as error:
        raise UsageError(f"the API URL {url!r} is not valid: {error}") from None
    if not port_ok:
        raise UsageError(f"the API URL {url!r} is not valid: port 0 cannot be connected to")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"the API URL {url!r} is not an http(s) URL with a host, such as "
            "http://127.0.0.1:8000 or https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in base):
        raise UsageError(f"the API URL {url!r} is not valid: it contains spaces or controls")
    return base


def resolve_url(flag: str | None, saved: dict[str, Any]) -> str:
    """--url, $TASKMILL_URL, $TASKMILL_PORT (the local stack's), the profile's, the default."""
    if flag:
        return checked_url(flag)
    if os.environ.get("TASKMILL_URL"):
        return checked_url(os.environ["TASKMILL_URL"])
    port = os.environ.get("TASKMILL_PORT")
    if port:
        if not (port.isascii() and port.isdigit()):  # not "²" (int() refuses it) or "٣"
            raise UsageError(f"TASKMILL_PORT={port!r} is not a port number")
        if int(port) == 0:
            raise UsageError(
                "TASKMILL_PORT=0 lets the local stack choose its port: give the API URL it "
                "printed (also in $TASKMILL_DATA_DIR/api.url) with --url or TASKMILL_URL"
            )
        return f"http://127.0.0.1:{port}"
    return checked_url(saved.get("url") or DEFAULT_URL)


class Client:
    def __init__(self, profile: str, url: str | None) -> None:
        self.profile = profile
        self.profiles = load_profiles()
        self.saved: dict[str, Any] = self.profiles.get(profile, {})
        self.url = resolve_url(url, self.saved)

    @property
    def has_session(self) -> bool:
        """Tokens for this URL: a profile's tokens never go to another server."""
        return bool(self.saved.get("access_token")) and (
            str(self.saved.get("url", "")).rstrip("/") == self.url
        )

    def login_hint(self) -> str:
        command = f"taskmill login --url {self.url}"
        if self.profile != "default":
            command += f" --profile {self.profile}"
        return f"run `{command} --email {self.saved.get('email') or 'EMAIL'}`"

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
        request.add_header("User-Agent", f"taskmill-cli/{version()}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                text = response.read()
                return response.status, self._parsed(text)
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, self._parsed(text)
            except ValueError:
                # An HTML error page (a proxy's, a load balancer's): one line of it.
                page = " ".join(text.decode(errors="replace").split())
                return error.code, {"error": {"message": page[:200]}}
        except urllib.error.URLError as error:
            raise CliError(
                f"cannot reach {self.url}: {error.reason} (is the API running? "
                "`make run` starts it locally; --url or TASKMILL_URL picks another)",
                retryable=True,
            ) from None
        except (TimeoutError, ConnectionError) as error:
            raise CliError(f"no answer from {self.url}: {error}", retryable=True) from None
        except http.client.HTTPException as error:
            # Something else listens there, or the answer was cut short.
            said = " ".join(str(error).split())
            raise CliError(
                f"no valid HTTP answer from {self.url}: {type(error).__name__}"
                + (f": {said[:100]}" if said else ""),
                retryable=True,
            ) from None
        except ValueError:
            raise CliError(f"{self.url} did not answer JSON: is it a Taskmill API?") from None

    def _parsed(self, text: bytes) -> Any:
        """The JSON answered; ValueError for what is not JSON as Taskmill sends it: NaN and
        Infinity (Python's json reads them, no Taskmill API writes them) and nesting deeper
        than the parser's recursion."""
        if not text:
            return None

        def constant(name: str) -> Any:
            raise ValueError(f"{name} is not JSON")

        try:
            return json.loads(
                text,
                object_hook=lambda fields: Answer(fields, self.url),
                parse_constant=constant,
            )
        except RecursionError:
            raise ValueError("nested too deeply") from None

    def shaped(self, answer: Any, shape: type[dict[str, Any]] | type[list[Any]] | None) -> Any:
        """`answer` if it has the shape the route answers (`dict`: an object, `list`: a list
        of objects, None: anything, as for 204): other JSON comes from another service."""
        if shape is None:
            return answer
        rows = answer if shape is list else [answer]
        if not isinstance(rows, list) or not all(isinstance(row, Answer) for row in rows):
            expected = "a JSON object" if shape is dict else "a list of objects"
            raise CliError(
                f"{self.url} answered {described(answer)} where Taskmill answers {expected}: "
                "is it a Taskmill API?"
            )
        return answer

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        shape: type[dict[str, Any]] | type[list[Any]] | None = dict,
    ) -> Any:
        token = self.saved.get("access_token") if auth and self.has_session else None
        status, answer = self._send(method, path, body, token, headers)
        if status == 401 and token and self.saved.get("refresh_token"):
            refreshed, tokens = self._send(
                "POST", "/v1/auth/refresh", {"refresh_token": self.saved["refresh_token"]}, None
            )
            if refreshed == 200:
                self.remember(self.shaped(tokens, dict))
                status, answer = self._send(method, path, body, tokens["access_token"], headers)
        if status >= 400:
            raise self._error(status, answer, auth)
        return self.shaped(answer, shape)

    def _error(self, status: int, answer: Any, auth: bool) -> CliError:
        envelope = answer if isinstance(answer, dict) else {}
        error = envelope.get("error") or {"message": envelope.get("message", "")}
        if not isinstance(error, dict):  # another service's shape: {"error": "Not Found"}
            error = {"message": " ".join(str(error).split())[:200]}
        detail = f" {json.dumps(error.get('details'))}" if error.get("details") else ""
        code = f" {error['code']}" if error.get("code") else ""
        message = f"{status}{code}: {error.get('message') or 'no message'}{detail}"
        if status == 401:
            if auth:
                where = f"{self.url}, profile {self.profile}"
                if not self.has_session:
                    message = f"not logged in ({where})"
                return CliError(f"{message}; {self.login_hint()}", exit_code=EXIT_AUTH)
            return CliError(message, exit_code=EXIT_AUTH)
        return CliError(
            message,
            retryable=status in RETRYABLE_STATUSES,
            exit_code=EXIT_SERVER if status >= 500 else EXIT_REFUSED,
        )

    def remember(self, tokens: Answer, email: str | None = None) -> None:
        # Checked before saving: a profile that is not strings is refused by every later run.
        self.saved = {
            **self.saved,
            "url": self.url,
            "access_token": tokens.typed("access_token", str),
            "refresh_token": tokens.typed("refresh_token", str),
            **({"email": email} if email else {}),
        }
        self.profiles[self.profile] = self.saved
        save_profiles(self.profiles)

    def forget(self) -> None:
        self.saved = {k: v for k, v in self.saved.items() if not k.endswith("_token")}
        self.profiles[self.profile] = self.saved
        save_profiles(self.profiles)


# --- output ----------------------------------------------------------------------------------


# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts a sequence
# that can erase lines, move the cursor, set the title or the clipboard; C1's CSI does the
# same in one byte) and the bidirectional overrides and isolates, which reorder what follows.
_UNSHOWN = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as its escape (`\\x1b`):
    names, tags, errors and progress messages come from users, job bodies and workers, and
    must not move an operator's cursor, erase a line of the table or rewrite what is shown."""
    return text.translate(_UNSHOWN)


def _columns(char: str) -> int:
    """Terminal columns `char` takes: two for East Asian wide and full-width characters
    (CJK, many emoji), none for combining marks, one otherwise."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def shown_width(text: str) -> int:
    return sum(_columns(char) for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - shown_width(text))


def cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = printable(" ".join(text.split()))
    if shown_width(text) <= width:
        return text
    cut, used = [], 0
    for char in text:
        used += _columns(char)
        if used > width - 1:
            break
        cut.append(char)
    return "".join(cut) + "…"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    # Padded by the columns a terminal gives each character, so names in CJK line up too.
    if not rows:
        return "(none)"
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(shown_width(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(_pad(c.upper(), w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(_pad(v, w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def details(pairs: dict[str, Any]) -> str:
    width = max(len(k) for k in pairs)
    return "\n".join(f"{k + ':':<{width + 1}} {cell(v, 200)}".rstrip() for k, v in pairs.items())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def show(
    args: argparse.Namespace,
    value: Any,
    columns: list[str],
    shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """A table of `columns` for people (each row through `shown` first, when given); with
    --json, `value` as JSON."""
    if args.json:
        print_json(value)
    else:
        rows: list[Any]
        if isinstance(value, Answer) and "items" in value:
            rows = value.rows("items")
        else:
            rows = value.get("items", [value]) if isinstance(value, dict) else value
        print(table([shown(row) for row in rows] if shown else rows, columns))
        if isinstance(value, dict) and value.get("next_cursor"):
            print(f"(more: add --cursor {value['next_cursor']})")


class StatusLine:
    """A watched job's status: one line rewritten in place on a terminal, a line per change
    otherwise (a log file or a pipe gets no carriage returns)."""

    def __init__(self) -> None:
        self.open = False
        self.last = ""

    def update(self, text: str) -> None:
        text = printable(text)
        if text == self.last:
            return
        self.last = text
        if sys.stdout.isatty():
            print(f"\r{text:<79}", end="", flush=True)
            self.open = True
        else:
            print(text.rstrip(), flush=True)

    def close(self) -> None:
        if self.open:
            print(flush=True)
            self.open = False


STATUS_LINE = StatusLine()
# The job being watched, for the Ctrl-C message.
WATCHING: list[str] = []

JOB_COLUMNS = ["id", "type", "status", "priority", "attempts", "progress", "name", "last_error"]
JOB_DETAILS = [
    "id",
    "type",
    "status",
    "priority",
    "name",
    "description",
    "tags",
    "attempts",
    "max_attempts",
    "progress",
    "progress_message",
    "payload",
    "result",
    "last_error",
    "run_at",
    "created_at",
    "started_at",
    "finished_at",
    "redrive_count",
    "depends_on",
    "parent_id",
    "limit_keys",
    "owner_id",
]

WATCH_PATIENCE_SECONDS = 30.0


def patient_get(client: Client, args: argparse.Namespace, path: str) -> Answer:
    """GET `path` for something being followed (a job, a background redrive): a server that
    blinks (unreachable, 502-504) for less than WATCH_PATIENCE_SECONDS is asked again every
    --interval, since what is followed goes on meanwhile."""
    failing_since: float | None = None
    while True:
        try:
            answer: Answer = client.call("GET", path)
            return answer
        except CliError as error:
            now = time.monotonic()
            failing_since = failing_since or now
            if not error.retryable or now - failing_since > WATCH_PATIENCE_SECONDS:
                raise
            time.sleep(args.interval)


def watch_job(client: Client, args: argparse.Namespace, job_id: str) -> Answer:
    """Poll until the job finishes (`patient_get`: a blink does not end the watch)."""
    WATCHING[:] = [job_id]
    while True:
        job = patient_get(client, args, job_path(job_id))
        # A status no Taskmill job has would never finish: the watch would go on for ever.
        status = job.typed("status", str)
        if status not in STATUSES:
            raise job.foreign("status", f"one of {', '.join(STATUSES)}")
        if not args.json:
            progress = min(max(int(job.typed("progress", int)), 0), 100)
            message = job.typed("progress_message", str, optional=True) or ""
            bar = "#" * (progress // 5)
            STATUS_LINE.update(f"{status:<10} [{bar:<20}] {progress:>3}% {message[:40]}")
        if status in FINISHED:
            STATUS_LINE.close()
            WATCHING.clear()
            return job
        time.sleep(args.interval)


def job_outcome(job: dict[str, Any]) -> int:
    """Exit code of a watched job: non-zero when it did not succeed."""
    if job["status"] in ("failed", "cancelled"):
        # Written by the job's body or an external worker: shown, never acted on.
        reason = f": {printable(str(job['last_error']))}" if job.get("last_error") else ""
        print(f"taskmill: job {job['id']} {job['status']}{reason}", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"{what} is not valid JSON ({error})") from None


# --- commands --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.command == "completion":
        print(completion_script(args.shell, parser()))
        return EXIT_OK
    client = Client(args.profile, args.url)
    handler = COMMANDS[args.command]
    return handler(client, args) or EXIT_OK


def same_id(known: object, typed: str) -> bool:
    """Whether `typed` names the account `known`: the API reads a UUID in any of its
    spellings (upper case, no hyphens, braces), so the CLI must too."""
    try:
        return uuid.UUID(str(known)) == uuid.UUID(typed)
    except ValueError:
        return str(known) == typed


def ask_password(prompt: str, alternative: str = "") -> str:
    try:
        with warnings.catch_warnings():
            # No terminal (cron, CI, `docker run` without -t): getpass reads standard input
            # and says "Password input may be echoed" itself; its GetPassWarning would add a
            # line naming getpass.py of the user's Python, noise that reads like a crash.
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            return getpass.getpass(prompt)
    except EOFError:  # no terminal to ask on
        raise UsageError(f"no password: give --password {alternative}".strip()) from None


def cmd_login(client: Client, args: argparse.Namespace) -> int:
    password = (
        args.password
        or os.environ.get("TASKMILL_PASSWORD")
        or ask_password(f"password for {args.email} at {client.url}: ", "or TASKMILL_PASSWORD")
    )
    tokens = client.call(
        "POST", "/v1/auth/login", {"email": args.email, "password": password}, auth=False
    )
    client.remember(tokens, args.email)
    if args.json:
        print_json({"url": client.url, "profile": client.profile, "email": args.email})
    else:
        print(f"logged in to {client.url} as {args.email} (profile {client.profile})")
    return EXIT_OK


def cmd_logout(client: Client, args: argparse.Namespace) -> int:
    if not client.has_session:
        if args.json:
            print_json(
                {
                    "url": client.url,
                    "profile": client.profile,
                    "was_logged_in": False,
                    "session_ended": False,  # the same keys whichever way: scripts read them
                }
            )
        else:
            print(f"not logged in to {client.url} (profile {client.profile}); nothing to do")
        return EXIT_OK
    problem: CliError | None = None
    try:
        client.call(
            "POST",
            "/v1/auth/logout",
            {"refresh_token": client.saved.get("refresh_token")},
            shape=None,
        )
    except CliError as error:
        # A session that has already ended (401) is as good as ended.
        if error.exit_code != EXIT_AUTH:
            problem = error
    ended = problem is None
    client.forget()
    if args.json:
        print_json(
            {
                "url": client.url,
                "profile": client.profile,
                "was_logged_in": True,
                "session_ended": ended,
            }
        )
    elif problem is None:
        print(f"logged out of {client.url} (profile {client.profile})")
    if problem is not None:
        raise CliError(
            f"tokens removed from this machine, but the session could not be ended on "
            f"the server: {problem}",
            exit_code=problem.exit_code,
        )
    return EXIT_OK


def cmd_whoami(client: Client, args: argparse.Namespace) -> int:
    me = client.call("GET", "/v1/auth/me")
    if args.json:
        print_json(me)
    else:
        print(
            details(
                {
                    "email": me["email"],
                    "role": me["role"],
                    "id": me["id"],
                    "url": client.url,
                    "profile": client.profile,
                }
            )
        )
    return EXIT_OK


def cmd_types(client: Client, args: argparse.Namespace) -> int:
    if args.action is not None:
        return pause_or_resume(client, args, "job-types", args.name, "job type")
    types = client.call("GET", "/v1/job-types", shape=list)
    show(args, types, ["name", "external", "paused", "description"])
    return EXIT_OK


def cmd_queues(client: Client, args: argparse.Namespace) -> int:
    if args.action is not None:
        return pause_or_resume(client, args, "queues", args.priority, "queue")
    columns = [
        "priority",
        "paused",
        "visible",
        "in_flight",
        "delayed",
        "dlq_depth",
        "oldest_age_seconds",
    ]
    show(args, client.call("GET", "/v1/queues"), columns)
    return EXIT_OK


def pause_or_resume(
    client: Client, args: argparse.Namespace, collection: str, name: str, what: str
) -> int:
    """`pause` or `resume` a queue or a job type. Both are idempotent: pausing a paused one
    (or resuming a running one) changes nothing and succeeds."""
    answer = client.call("POST", f"/v1/{collection}/{quote(name, safe='')}/{args.action}")
    if args.json:
        print_json(answer)
    elif answer["paused"]:
        print(f"paused {what} {name}: new jobs are accepted and wait; running ones finish")
    else:
        print(f"resumed {what} {name}: its waiting jobs start")
    return EXIT_OK


# --- limits ----------------------------------------------------------------------------------

LIMIT_COLUMNS = ["key", "concurrency", "rate", "running", "tokens_available", "source"]
PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str) -> dict[str, Any]:
    """`10/60s`, `10/1m`, `100/h`, `5/s` or `10/60` (seconds) → the API's rate."""
    count, slash, period = text.partition("/")
    unit = period[-1:] if period[-1:] in PERIOD_UNITS else "s"
    number = period[:-1] if period[-1:] in PERIOD_UNITS else period
    try:
        limit = int(count)
        seconds = (float(number) if number else 1.0) * PERIOD_UNITS[unit]
    except ValueError:
        limit, seconds = 0, 0.0
    if not slash or limit < 1 or seconds <= 0:
        raise UsageError(f"--rate {text!r}: expected N/PERIOD, e.g. 10/60s, 100/1h or 5/s")
    return {"limit": limit, "period_seconds": seconds}


def shown_rate(rate: Answer | None) -> str | None:
    if not rate:
        return None
    period = float(rate.typed("period_seconds", int))
    return f"{rate['limit']}/{period:g}s"


def limit_row(limit: Answer) -> dict[str, Any]:
    """A limit as one flat row: its rate as N/PERIOD, its use beside it. The bucket refills
    continuously, so its level is a float with every digit the clock gave it; two decimals
    are what a person reads (`--json` keeps the API's value)."""
    use = dict(limit.typed("use", dict, optional=True) or {})
    if isinstance(use.get("tokens_available"), float):
        use["tokens_available"] = round(use["tokens_available"], 2)
    return {**limit, **use, "rate": shown_rate(limit.typed("rate", dict, optional=True))}


def limit_body(args: argparse.Namespace) -> dict[str, Any]:
    """The whole limit (PUT replaces it): what is not given is not limited."""
    if args.rate is not None and (args.rate_limit is not None or args.rate_period is not None):
        raise UsageError("give --rate N/PERIOD or --rate-limit with --rate-period, not both")
    if (args.rate_limit is None) != (args.rate_period is None):
        raise UsageError("--rate-limit and --rate-period go together")
    rate = parse_rate(args.rate) if args.rate is not None else None
    if args.rate_limit is not None:
        rate = {"limit": args.rate_limit, "period_seconds": args.rate_period}
    if args.concurrency is None and rate is None:
        raise UsageError("give --concurrency, --rate or both (`limits delete` removes a limit)")
    return {"concurrency": args.concurrency, "rate": rate}


def limit_path(key: str) -> str:
    return f"/v1/limits/{quote(key, safe=':')}"


def cmd_limits(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        query = page_query(args)
        answer = client.call("GET", f"/v1/limits?{query}")
        if args.json:
            print_json(answer)
            return EXIT_OK
        show(args, {**answer, "items": [limit_row(x) for x in answer.rows("items")]}, LIMIT_COLUMNS)
    elif args.action == "get":
        limit = client.call("GET", limit_path(args.key))
        if args.json:
            print_json(limit)
        else:
            row = limit_row(limit)
            fields = ["key", "concurrency", "rate", "source", "running", "started_in_window"]
            fields += ["tokens_available", "updated_at", "updated_by"]
            print(details({name: row.get(name) for name in fields}))
    elif args.action == "set":
        limit = client.call("PUT", limit_path(args.key), limit_body(args))
        show(args, limit if args.json else limit_row(limit), LIMIT_COLUMNS)
    else:
        delete(client, args, limit_path(args.key), "the limit on", name="key")
    return EXIT_OK


def cmd_stats(client: Client, args: argparse.Namespace) -> int:
    stats = client.call("GET", f"/v1/stats?window_hours={args.window_hours}")
    if args.json:
        print_json(stats)
        return EXIT_OK

    def counts(name: str, key: str) -> str:
        rows = [{name: k, "jobs": v} for k, v in sorted(stats.typed(key, dict).items())]
        return table(rows, [name, "jobs"])

    durations = stats.typed("duration_seconds", dict, optional=True)
    throughput = stats.typed("throughput_per_minute_last_hour", dict, optional=True) or {}
    print(counts("status", "by_status"))
    print()
    print(counts("type", "by_type"))
    print()
    print(counts("priority", "by_priority"))
    print()

    def seconds(name: str) -> str:
        value = durations.typed(name, int, optional=True) if durations else None
        return "-" if value is None else f"{value:.3f} s"

    print(
        details(
            {
                "succeeded per minute (last hour)": throughput.get("succeeded"),
                "failed per minute (last hour)": throughput.get("failed"),
                f"duration p50 ({stats['window_hours']} h)": seconds("p50"),
                f"duration p90 ({stats['window_hours']} h)": seconds("p90"),
                f"duration p99 ({stats['window_hours']} h)": seconds("p99"),
            }
        )
    )
    return EXIT_OK


def cmd_audit(client: Client, args: argparse.Namespace) -> int:
    query = {"limit": args.limit, "cursor": args.cursor, "action": args.action}
    answer = client.call("GET", "/v1/audit?" + urlencode(without_none(query)))
    columns = ["at", "action", "actor", "target_type", "target_id", "detail"]
    show(args, answer, columns, by_email("actor_id"))
    return EXIT_OK


def by_email(actor_field: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A row whose `actor` is its account's e-mail where the API gave one, else `actor_field`
    (an account id, or the platform's part that acted)."""

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "actor": row.get("actor_email") or row.get(actor_field)}

    return shown


def ids_table(ids: list[str], heading: str = "job_id") -> str:
    return table([{heading: i} for i in ids], [heading])


def cmd_requeue(client: Client, args: argparse.Namespace) -> int:
    body = {
        "status": args.status,
        "older_than_seconds": args.older_than,
        "limit": args.limit,
        "dry_run": args.dry_run,
    }
    answer = client.call("POST", "/v1/admin/requeue", body)
    ids = answer.strings("requeued")
    if args.dry_run:
        # The API lists what it would re-send under "requeued"; nothing was.
        answer = {"dry_run": True, "would_requeue": ids}
    if args.json:
        print_json(answer)
        return EXIT_OK
    if args.dry_run:
        print(f"dry run: would requeue {plural(len(ids), 'job')} (nothing changed)")
    else:
        print(f"requeued {plural(len(ids), 'job')}")
    if ids:
        print(ids_table(ids))
    return EXIT_OK


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def page_query(args: argparse.Namespace) -> str:
    """A list's page options (`add_paging`) as its query string; the API's defaults apply
    to what is not given."""
    return urlencode(without_none({"limit": args.limit, "cursor": args.cursor}))


CREATE_TRIES = 3


def post_safely(client: Client, path: str, body: dict[str, Any], key: str) -> Any:
    """Create, retrying what may have worked (a 503 or a lost answer can come after the job
    was committed) with the same Idempotency-Key: a retry returns the job the first try
    created instead of a second one."""
    headers = {"Idempotency-Key": key}
    for attempt in range(1, CREATE_TRIES + 1):
        try:
            return client.call("POST", path, body, headers=headers)
        except CliError as error:
            if attempt == CREATE_TRIES or not error.retryable:
                raise
        time.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def create_safely(client: Client, body: dict[str, Any], key: str) -> Any:
    return post_safely(client, "/v1/jobs", body, key)


def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    return int(JOB_ACTIONS[args.action](client, args) or EXIT_OK)


def jobs_create(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"type": args.type, "payload": load_json(args.payload, "--payload")}
    for field in ("priority", "name", "max_attempts", "delay_seconds", "webhook_url"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    if args.tag:
        body["tags"] = args.tag
    if args.limit_key:
        body["limit_keys"] = args.limit_key
    if args.depends_on:
        body["depends_on"] = args.depends_on
    job = create_safely(client, body, args.idempotency_key or str(uuid.uuid4()))
    if args.watch:
        job = watch_job(client, args, job.typed("id", str))
    show(args, job, JOB_COLUMNS)
    return job_outcome(job) if args.watch else EXIT_OK


def jobs_list(client: Client, args: argparse.Namespace) -> int:
    query = without_none(
        {
            "status": args.status,
            "type": args.type,
            "priority": args.priority,
            "tag": args.tag,
            "parent_id": args.parent_id,
            "created_after": args.created_after,
            "created_before": args.created_before,
            "limit": args.limit,
            "cursor": args.cursor,
        }
    )
    show(args, client.call("GET", f"/v1/jobs?{urlencode(query)}"), JOB_COLUMNS)
    return EXIT_OK


def zoned_time(text: str) -> str:
    """An ISO 8601 time for the API, which refuses one without a zone: a time without one is
    read in this machine's local zone, as a person at the terminal means it."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-11-25T09:30 or 2026-11-25T09:30Z"
        ) from None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


def job_path(job_id: str, suffix: str = "") -> str:
    return f"/v1/jobs/{quote(job_id, safe='')}{suffix}"


def jobs_get(client: Client, args: argparse.Namespace) -> int:
    job = client.call("GET", job_path(args.id))
    if args.json:
        print_json(job)
    else:
        print(details({k: job.get(k) for k in JOB_DETAILS if k in job}))
    return EXIT_OK


def jobs_watch(client: Client, args: argparse.Namespace) -> int:
    job = watch_job(client, args, args.id)
    show(args, job, JOB_COLUMNS)
    return job_outcome(job)


def jobs_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.call("POST", job_path(args.id, "/cancel"))
    show(args, job, JOB_COLUMNS)
    # A running job's table still says "running": say that the cancel is on its way.
    if not args.json and job.get("cancel_requested") and job.get("status") == "running":
        print(
            f"cancel requested: the job stops at its next check of cancelled() "
            f"(`taskmill jobs watch {args.id}` follows it)"
        )
    return EXIT_OK


def jobs_retry(client: Client, args: argparse.Namespace) -> int:
    show(args, client.call("POST", job_path(args.id, "/retry")), JOB_COLUMNS)
    return EXIT_OK


def delete(
    client: Client,
    args: argparse.Namespace,
    path: str,
    what: str,
    *,
    name: str = "id",
    body: dict[str, Any] | None = None,
) -> None:
    """DELETE answers 204 with no body: say what was deleted (`args.<name>`), as a line or
    as JSON."""
    client.call("DELETE", path, body, shape=None)
    value = getattr(args, name)
    if args.json:
        print_json({name: value, "deleted": True})
    else:
        print(f"deleted {what} {value}")


def jobs_delete(client: Client, args: argparse.Namespace) -> int:
    delete(client, args, job_path(args.id), "job")
    return EXIT_OK


# Items per request when the CLI reads a whole list (the API's largest page).
WHOLE_LIST_PAGE = 200


def every_page(client: Client, path: str) -> Answer:
    """Every item of the paged list at `path`, read by following `next_cursor` until it is
    null: `{"items": [...], "next_cursor": null}`, as if the API had answered it in one page."""
    items: list[Any] = []
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        query = urlencode(without_none({"limit": WHOLE_LIST_PAGE, "cursor": cursor}))
        answer = client.call("GET", f"{path}?{query}", shape=None)
        if cursor is None and isinstance(answer, list):
            # A deployment from before the history was paged answers every event at once.
            answer = client.shaped(answer, list)
            return Answer({"items": answer, "next_cursor": None}, client.url)
        answer = client.shaped(answer, dict)
        items.extend(answer.rows("items"))
        cursor = answer.typed("next_cursor", str, optional=True)
        if not cursor:
            return Answer({"items": items, "next_cursor": None}, answer.source)
        if cursor in seen:  # a Taskmill API moves on at every page: this would never end
            raise CliError(
                f"{answer.source} answered a next_cursor it had already given ({cell(cursor)}): "
                "is it a Taskmill API?"
            )
        seen.add(cursor)


def jobs_events(client: Client, args: argparse.Namespace) -> int:
    """The whole history, every page of it."""
    events = every_page(client, job_path(args.id, "/events"))
    show(args, events, ["at", "from_status", "to_status", "actor", "detail"], by_email("actor"))
    return EXIT_OK


BATCH_SIZE = 100


def read_batch(source: str) -> list[dict[str, Any]]:
    """Jobs from a JSON file (`{"jobs": [...]}` or a list) or JSON Lines (a job a line)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise UsageError(f"cannot read {source}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text (JSON or JSON Lines)") from None
    name = "standard input" if source == "-" else source
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{name} holds no jobs")
    try:
        value = json.loads(stripped)
        jobs = value.get("jobs") if isinstance(value, dict) and "jobs" in value else value
        if isinstance(jobs, dict):
            jobs = [jobs]  # JSON Lines with one line
    except ValueError:
        jobs = []
        for number, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                jobs.append(load_json(line, f"{name} line {number}"))
    if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
        raise UsageError(f'{name}: expected {{"jobs": [...]}}, a JSON list or a job per line')
    return jobs


def jobs_batch(client: Client, args: argparse.Namespace) -> int:
    """Up to BATCH_SIZE jobs per request; each request has its own Idempotency-Key (derived
    from --idempotency-key when given), so re-running a file with the same key creates
    nothing twice."""
    specs = read_batch(args.file)
    base_key = args.idempotency_key or str(uuid.uuid4())
    created: list[dict[str, Any]] = []
    try:
        for start in range(0, len(specs), BATCH_SIZE):
            chunk = specs[start : start + BATCH_SIZE]
            key = base_key if len(specs) <= BATCH_SIZE else f"{base_key}/{start // BATCH_SIZE}"
            answer = post_safely(client, "/v1/jobs/batch", {"jobs": chunk}, key)
            created.extend(answer.rows("items"))
    except CliError as error:
        if created:
            show(args, {"items": created}, JOB_COLUMNS)
        raise CliError(
            f"created {len(created)} of {len(specs)} jobs, then: {error}",
            exit_code=error.exit_code,
        ) from None
    show(args, {"items": created}, JOB_COLUMNS)
    return EXIT_OK


JOB_ACTIONS = {
    "create": jobs_create,
    "list": jobs_list,
    "get": jobs_get,
    "watch": jobs_watch,
    "cancel": jobs_cancel,
    "retry": jobs_retry,
    "delete": jobs_delete,
    "events": jobs_events,
    "batch": jobs_batch,
}


HIDDEN_BY_TASK = (
    "a background redrive ({task}) is running: the messages it passed over are hidden until it ends"
)
NOT_WHOLE_DLQ = (
    "not the whole DLQ: it holds more messages than these (beyond --limit, or held for a moment "
    "by a redrive or another peek)"
)


def cmd_dlq(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        answer = client.call("GET", f"/v1/dlq/{args.priority}?limit={args.limit}")
        if args.json:
            print_json(answer)
            return EXIT_OK
        columns = ["job_id", "type", "status", "attempts", "problem", "last_error"]
        print(table(answer.rows("items"), columns))
        if missing := answer.strings("failed_without_message"):
            print(f"failed jobs with no DLQ message: {', '.join(missing)}")
        if answer.get("redrive_task_id"):
            print(HIDDEN_BY_TASK.format(task=answer["redrive_task_id"]))
        elif not answer.get("complete", True):
            print(NOT_WHOLE_DLQ)
        return EXIT_OK
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
        return follow_redrive(client, args, answer)
    ids = answer.strings("redriven", optional=args.dry_run)
    skipped = answer.strings("skipped", optional=True)
    orphans = len(answer.typed("orphans", list, optional=True) or [])
    purged = len(answer.typed("purged", list, optional=True) or [])
    if args.json:
        # The API's dry run lists the jobs it would redrive under "redriven"; none was.
        if args.dry_run:
            rest = {k: v for k, v in answer.items() if k not in ("redriven", "dry_run")}
            answer = Answer({"dry_run": True, "would_redrive": ids, **rest}, client.url)
        print_json(answer)
        return EXIT_OK
    source = f"the {args.priority} DLQ"
    if args.dry_run:
        print(f"dry run: would redrive {plural(len(ids), 'job')} from {source} (nothing changed)")
    else:
        print(f"redrove {plural(len(ids), 'job')} from {source}")
    if ids:
        print(ids_table(ids))
    if skipped:
        print(f"skipped (job no longer failed): {', '.join(skipped)}")
    if orphans:
        if purged:
            print(f"purged {plural(purged, 'message')} without a job")
        elif args.dry_run and args.purge_orphans:
            print(f"would purge {plural(orphans, 'message')} without a job")
        else:
            print(f"{plural(orphans, 'message')} without a job left (--purge-orphans deletes)")
    if answer.get("redrive_task_id"):
        print(HIDDEN_BY_TASK.format(task=answer["redrive_task_id"]))
    return EXIT_OK


REDRIVE_TASK_ENDINGS = ("done", "failed")


def follow_redrive(client: Client, args: argparse.Namespace, task: Answer) -> int:
    while task.typed("status", str) in ("pending", "running"):
        if not args.json:
            STATUS_LINE.update(
                f"redrive {task['status']}: {task['redriven']} redriven, {task['orphans']} orphans"
            )
        time.sleep(args.interval)
        task = patient_get(client, args, f"/v1/dlq/redrives/{quote(task.typed('id', str))}")
    STATUS_LINE.close()
    if task["status"] not in REDRIVE_TASK_ENDINGS:
        # Neither live nor ended: success cannot be claimed for a state Taskmill never writes.
        raise task.foreign("status", f"one of pending, running, {', '.join(REDRIVE_TASK_ENDINGS)}")
    if args.json:
        print_json(task)
    else:
        print(
            details(
                {
                    "redrive task": task["id"],
                    "status": task["status"],
                    "redriven": task["redriven"],
                    "orphans": task["orphans"],
                    "purged": task["purged"],
                    **({"error": task["error"]} if task.get("error") else {}),
                }
            )
        )
    if task["status"] == "failed":
        print(f"taskmill: redrive task {task['id']} failed: {task.get('error')}", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


USER_COLUMNS = ["id", "email", "role", "disabled"]


def cmd_users(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        query = page_query(args)
        show(args, client.call("GET", f"/v1/users?{query}"), USER_COLUMNS)
    elif args.action == "create":
        password = args.password or ask_password("password for the new account: ")
        user = client.call(
            "POST", "/v1/users", {"email": args.email, "password": password, "role": args.role}
        )
        show(args, user, USER_COLUMNS)
    elif args.action == "role":
        user = client.call("PUT", f"/v1/users/{quote(args.id)}/role", {"role": args.role})
        show(args, user, USER_COLUMNS)
    else:
        password = args.password
        if password is None and same_id(client.call("GET", "/v1/auth/me")["id"], args.id):
            password = ask_password("your password, to delete your own account: ")
        body = {"current_password": password} if password is not None else None
        delete(client, args, f"/v1/users/{quote(args.id)}", "user", body=body)
    return EXIT_OK


SCHEDULE_COLUMNS = [
    "id",
    "name",
    "cron",
    "timezone",
    "enabled",
    "next_fire_at",
    "last_job_id",
    "error",
]


def cmd_schedules(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        query = page_query(args)
        show(args, client.call("GET", f"/v1/schedules?{query}"), SCHEDULE_COLUMNS)
    elif args.action == "create":
        body = {
            "name": args.name,
            "cron": args.cron,
            "job": {"type": args.type, "payload": load_json(args.payload, "--payload")},
        }
        if args.timezone is not None:  # else the server's default (UTC)
            body["timezone"] = args.timezone
        schedule = client.call("POST", "/v1/schedules", body)
        show(args, schedule, SCHEDULE_COLUMNS)
    elif args.action in ("pause", "resume"):
        body = {"enabled": args.action == "resume"}
        show(args, client.call("PATCH", f"/v1/schedules/{quote(args.id)}", body), SCHEDULE_COLUMNS)
    elif args.action == "update":
        show(
            args,
            client.call("PATCH", f"/v1/schedules/{quote(args.id)}", schedule_changes(args)),
            SCHEDULE_COLUMNS,
        )
    else:
        delete(client, args, f"/v1/schedules/{quote(args.id)}", "schedule")
    return EXIT_OK


def schedule_changes(args: argparse.Namespace) -> dict[str, Any]:
    """`schedules update`'s body: only what was given. `--payload` without `--type` has no
    job to go in (the server replaces a schedule's job as a whole)."""
    changes: dict[str, Any] = {
        field: getattr(args, field)
        for field in ("name", "cron", "timezone")
        if getattr(args, field) is not None
    }
    if args.type is not None:
        changes["job"] = {
            "type": args.type,
            "payload": load_json(args.payload or "{}", "--payload"),
        }
    elif args.payload is not None:
        raise UsageError("--payload needs --type: a schedule's job is replaced as a whole")
    if not changes:
        raise UsageError("nothing to change: give --name, --cron, --timezone or --type")
    return changes


COMMANDS = {
    "login": cmd_login,
    "logout": cmd_logout,
    "whoami": cmd_whoami,
    "types": cmd_types,
    "queues": cmd_queues,
    "stats": cmd_stats,
    "audit": cmd_audit,
    "requeue": cmd_requeue,
    "jobs": cmd_jobs,
    "dlq": cmd_dlq,
    "users": cmd_users,
    "schedules": cmd_schedules,
    "limits": cmd_limits,
}


# --- completion ------------------------------------------------------------------------------


def walk(
    command: argparse.ArgumentParser, path: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, command
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}".strip())


def completion_script(shell: str, top: argparse.ArgumentParser) -> str:
    """A bash completion function generated from the parser (zsh runs it through
    bashcompinit): commands, options, and the values of options with choices. An option's
    free-form value (a file, a URL) falls back to the shell's file completion."""
    words, commands, valued, choices = [], [], [], []
    for path, command in walk(top):
        offered: list[str] = []
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                offered += list(action.choices)
                commands += [f'"{path}|{name}"' for name in action.choices]
            elif not action.option_strings:
                offered += [str(c) for c in action.choices or []]
            else:
                offered += action.option_strings
                if action.nargs != 0:
                    for option in action.option_strings:
                        valued.append(f'"{path}|{option}"')
                        if action.choices:
                            values = " ".join(str(c) for c in action.choices)
                            choices.append(f'        "{path}|{option}") echo "{values}" ;;')
        words.append(f'        "{path}") echo "{" ".join(offered)}" ;;')
    body = f"""\
# taskmill {shell} completion, generated by `taskmill completion {shell}`.
# Load it with: eval "$(taskmill completion {shell})"
_taskmill_words() {{
    case "$1" in
{chr(10).join(words)}
    esac
}}
_taskmill_is_command() {{
    case "$1|$2" in
        {"|".join(commands)}) return 0 ;;
    esac
    return 1
}}
_taskmill_takes_value() {{
    case "$1|$2" in
        {"|".join(valued)}) return 0 ;;
    esac
    return 1
}}
_taskmill_choices() {{
    case "$1|$2" in
{chr(10).join(choices)}
    esac
}}
_taskmill() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local path="" word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if [[ "$word" == -* ]]; then
            if _taskmill_takes_value "$path" "$word"; then ((i++)); fi
        elif _taskmill_is_command "$path" "$word"; then
            path="${{path:+$path }}$word"
        fi
    done
    if [[ "$prev" == -* ]] && _taskmill_takes_value "$path" "$prev"; then
        COMPREPLY=($(compgen -W "$(_taskmill_choices "$path" "$prev")" -- "$cur"))
        return 0
    fi
    local candidates=()
    for word in $(_taskmill_words "$path"); do
        # Options only once a dash is typed: commands and values first.
        if [[ "$cur" == -* || "$word" != -* ]]; then candidates+=("$word"); fi
    done
    COMPREPLY=($(compgen -W "${{candidates[*]}}" -- "$cur"))
}}
complete -o default -F _taskmill taskmill
"""
    if shell == "zsh":
        return (
            "(( $+functions[compdef] )) || { autoload -U compinit && compinit; }\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + body
        )
    return body


# --- arguments -------------------------------------------------------------------------------


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def parser() -> argparse.ArgumentParser:
    # The global options are accepted before or after the command; SUPPRESS keeps a
    # subcommand from overwriting a value given before it with its own default.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--url",
        metavar="URL",
        help="API base URL (default: $TASKMILL_URL, else http://127.0.0.1:$TASKMILL_PORT, "
        f"else the profile's, else {DEFAULT_URL})",
    )
    common.add_argument(
        "--profile",
        metavar="NAME",
        help="saved login to use (default: $TASKMILL_PROFILE or 'default')",
    )
    common.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    common.add_argument(
        "--interval", type=float, metavar="SECONDS", help="seconds between polls (default 1)"
    )

    def add(sub: Any, name: str, summary: str, description: str | None = None) -> Any:
        return sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=description or summary,
            epilog=EXIT_CODES,
            formatter_class=Formatter,
        )

    def add_paging(listing: Any, noun: str) -> None:
        listing.add_argument("--limit", type=int, help=f"{noun} per page (default 50)")
        listing.add_argument("--cursor", help="the next page, from a previous answer")

    def group(sub: Any, name: str, summary: str) -> Any:
        return add(sub, name, summary).add_subparsers(
            dest="action", required=True, metavar="ACTION", title="actions"
        )

    top = argparse.ArgumentParser(
        prog="taskmill",
        description=__doc__,
        epilog=EPILOG,
        parents=[common],
        formatter_class=Formatter,
    )
    top.add_argument("--version", action="version", version=f"taskmill {version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    login = add(sub, "login", "log in and keep the tokens in the profile")
    login.add_argument("--email", required=True, help="the account's email")
    login.add_argument(
        "--password", help="the password (default: $TASKMILL_PASSWORD, else asked for)"
    )
    add(sub, "logout", "end the session on the server and forget its tokens")
    add(sub, "whoami", "the account logged in, and where")

    def optional_group(sub: Any, name: str, summary: str) -> Any:
        """A command that lists without an action, and takes actions too."""
        return add(sub, name, summary).add_subparsers(
            dest="action", required=False, metavar="[ACTION]", title="actions"
        )

    types_parser = optional_group(
        sub, "types", "registered job types; without an action, list them"
    )
    queues_parser = optional_group(
        sub,
        "queues",
        "per priority: paused, visible, in flight, delayed, DLQ depth (admin); "
        "without an action, list them",
    )
    for action, summary in (
        ("pause", "pause (admin): new jobs are accepted and wait, running ones finish"),
        ("resume", "resume (admin): the waiting jobs start within seconds"),
    ):
        add(types_parser, action, summary).add_argument("name", help="job type")
        add(queues_parser, action, summary).add_argument(
            "priority", choices=PRIORITIES, help="which queue"
        )
    stats = add(sub, "stats", "job counts, throughput and duration percentiles (admin)")
    stats.add_argument(
        "--window-hours",
        type=int,
        default=24,
        metavar="HOURS",
        help="window of the duration percentiles (default 24)",
    )
    audit = add(sub, "audit", "audit log of admin and security events, newest first (admin)")
    audit.add_argument("--limit", type=int, default=50, help="entries per page (default 50)")
    audit.add_argument("--cursor", help="the next page, from a previous answer")
    audit.add_argument("--action", help="only this action, e.g. auth.login_failed")
    requeue = add(
        sub,
        "requeue",
        "re-send jobs stuck in queued or failed (admin)",
        "Manual recovery: re-send jobs in `queued` or `failed` not updated for a while.",
    )
    requeue.add_argument(
        "--status", choices=["queued", "failed"], required=True, help="which jobs to re-send"
    )
    requeue.add_argument(
        "--older-than",
        type=int,
        default=300,
        metavar="SECONDS",
        help="not updated for this long (default 300)",
    )
    requeue.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    requeue.add_argument("--dry-run", action="store_true", help="list them, change nothing")

    jobs_parser = group(sub, "jobs", "create, list, follow and manage jobs")
    create = add(jobs_parser, "create", "create a job")
    create.add_argument("type", help="job type (see `taskmill types`)")
    create.add_argument("--payload", default="{}", metavar="JSON", help="payload (default {})")
    create.add_argument("--priority", choices=PRIORITIES, help="default: the type's")
    create.add_argument("--name", help="a name to find it by")
    create.add_argument("--tag", action="append", help="a tag (repeatable)")
    create.add_argument(
        "--limit-key",
        action="append",
        dest="limit_key",
        metavar="KEY",
        help="a limit key it holds, e.g. customer:42 (repeatable, at most 4)",
    )
    create.add_argument(
        "--depends-on",
        action="append",
        dest="depends_on",
        metavar="ID",
        help="a job of yours it waits for; it runs once all succeeded (repeatable)",
    )
    create.add_argument(
        "--max-attempts", type=int, dest="max_attempts", metavar="N", help="default: the type's"
    )
    create.add_argument(
        "--delay", type=float, dest="delay_seconds", metavar="SECONDS", help="start later"
    )
    create.add_argument(
        "--webhook-url", dest="webhook_url", metavar="URL", help="POSTed to when it finishes"
    )
    create.add_argument(
        "--watch",
        action="store_true",
        help="follow until it finishes; exit 1 if it fails or is cancelled",
    )
    create.add_argument(
        "--idempotency-key",
        dest="idempotency_key",
        metavar="KEY",
        help="repeat-safe key: the same key and body return the same job "
        "(default: a new one per command, reused by its own retries)",
    )
    listing = add(jobs_parser, "list", "list jobs, newest first (yours; all for an admin)")
    listing.add_argument("--status", choices=STATUSES, help="only this status")
    listing.add_argument("--type", help="only this job type")
    listing.add_argument("--priority", choices=PRIORITIES, help="only this priority")
    listing.add_argument("--tag", help="only jobs with this tag")
    listing.add_argument(
        "--parent-id", metavar="ID", help="only the child jobs this job's body submitted"
    )
    for bound, words in (("after", "at or after"), ("before", "before")):
        listing.add_argument(
            f"--created-{bound}",
            type=zoned_time,
            metavar="TIME",
            help=f"only jobs created {words} TIME (ISO 8601; without a zone, this "
            "machine's local time; a date alone is its midnight)",
        )
    listing.add_argument("--limit", type=int, default=50, help="jobs per page (default 50)")
    listing.add_argument("--cursor", help="the next page, from a previous answer")
    for action, summary in (
        ("get", "a job in full"),
        ("watch", "follow a job until it finishes; exit 1 if it fails or is cancelled"),
        ("cancel", "cancel a job (a running one is asked to stop)"),
        ("retry", "re-run a failed or cancelled job"),
        ("delete", "delete a job that is not running"),
        ("events", "a job's whole history of status changes (every page)"),
    ):
        add(jobs_parser, action, summary).add_argument("id", help="job id")
    batch = add(
        jobs_parser,
        "batch",
        "create many jobs from a file",
        'Create jobs from a JSON file ({"jobs": [...]} or a list) or JSON Lines (a job per\n'
        'line, e.g. {"type": "noop"}), 100 per request.',
    )
    batch.add_argument(
        "file", nargs="?", default="-", help="the file, or - for standard input (default)"
    )
    batch.add_argument(
        "--idempotency-key",
        dest="idempotency_key",
        metavar="KEY",
        help="repeat-safe key: running the same file again with it creates nothing twice",
    )

    dlq_parser = group(sub, "dlq", "dead-letter queues: peek and redrive (admin)")
    dlq_list = add(dlq_parser, "list", "peek at a DLQ")
    dlq_list.add_argument("priority", choices=PRIORITIES, help="which DLQ")
    dlq_list.add_argument("--limit", type=int, default=100, help="at most (default 100)")
    redrive = add(
        dlq_parser,
        "redrive",
        "send dead-lettered jobs back with a fresh attempt budget",
        "Redrive all or some of a DLQ's jobs (fresh attempts, redrive_count + 1). More than\n"
        "100 (or --background) runs as a background task whose progress is followed.",
    )
    redrive.add_argument("priority", choices=PRIORITIES, help="which DLQ")
    redrive.add_argument("--job-id", action="append", metavar="ID", help="only this job (repeat)")
    redrive.add_argument("--type", help="only jobs of this type")
    redrive.add_argument("--limit", type=int, default=100, help="at most (default 100)")
    redrive.add_argument(
        "--dry-run", action="store_true", help="say what would be redriven, change nothing"
    )
    redrive.add_argument(
        "--purge-orphans", action="store_true", help="delete messages whose job is gone"
    )
    redrive.add_argument(
        "--background", action="store_true", help="run as a background task and follow it"
    )

    users_parser = group(sub, "users", "accounts and roles (admin)")
    users_list = add(users_parser, "list", "list accounts")
    add_paging(users_list, "accounts")
    user_create = add(users_parser, "create", "create an account")
    user_create.add_argument("email", help="the new account's email")
    user_create.add_argument("--password", help="its password (default: asked for)")
    user_create.add_argument("--role", choices=ROLES, default="user", help="default user")
    role = add(users_parser, "role", "change an account's role")
    role.add_argument("id", help="user id")
    role.add_argument("role", choices=ROLES, help="the new role")
    user_delete = add(users_parser, "delete", "delete an account")
    user_delete.add_argument("id", help="user id")
    user_delete.add_argument(
        "--password",
        help="your own password, needed to delete your own account (default: asked for "
        "then; an admin deleting another account needs none)",
    )

    limits_parser = group(
        sub, "limits", "concurrency and rate limits per limit key, and their use (admin)"
    )
    limits_list = add(limits_parser, "list", "list limits with their use")
    add_paging(limits_list, "limits")
    add(limits_parser, "get", "a limit and its use now").add_argument(
        "key", help="limit key, e.g. customer:42 or owner:<user id>"
    )
    limit_set = add(
        limits_parser,
        "set",
        "set (replace) the limit on a key",
        "Set the limit on a key, replacing what it had: what is not given is not limited\n"
        "(`set K --concurrency 2` after `set K --rate 10/60s` leaves no rate).",
    )
    limit_set.add_argument("key", help="limit key, e.g. customer:42")
    limit_set.add_argument(
        "--concurrency", type=int, metavar="N", help="at most N jobs holding it run at once"
    )
    limit_set.add_argument(
        "--rate", metavar="N/PERIOD", help="at most N starts per period: 10/60s, 100/1h, 5/s"
    )
    limit_set.add_argument(
        "--rate-limit", type=int, dest="rate_limit", metavar="N", help="the rate's N"
    )
    limit_set.add_argument(
        "--rate-period",
        type=float,
        dest="rate_period",
        metavar="SECONDS",
        help="the rate's period in seconds",
    )
    add(limits_parser, "delete", "remove the limit on a key").add_argument("key", help="limit key")

    schedules_parser = group(sub, "schedules", "recurring jobs")
    schedules_list = add(schedules_parser, "list", "list schedules")
    add_paging(schedules_list, "schedules")
    schedule_create = add(schedules_parser, "create", "create a schedule")
    schedule_create.add_argument("name", help="a name for it")
    schedule_create.add_argument(
        "cron", help='five fields or a macro, e.g. "*/5 * * * *", "0 9 * * MON-FRI", @daily'
    )
    schedule_create.add_argument("type", help="job type to create")
    schedule_create.add_argument(
        "--timezone", metavar="ZONE", help="IANA time zone the cron is read in (default UTC)"
    )
    schedule_create.add_argument("--payload", default="{}", metavar="JSON", help="job payload")
    for action, summary in (
        ("pause", "stop a schedule from creating jobs (it is kept)"),
        ("resume", "let a paused schedule run again, from its next fire time after now"),
    ):
        add(schedules_parser, action, summary).add_argument("id", help="schedule id")
    schedule_update = add(
        schedules_parser,
        "update",
        "change a schedule's name, expression, time zone or job",
        "Change what is given; the rest stays. A new cron or time zone counts from now (no "
        "catch-up run). --type (with --payload) replaces the schedule's job as a whole.",
    )
    schedule_update.add_argument("id", help="schedule id")
    schedule_update.add_argument("--name", help="a new name")
    schedule_update.add_argument("--cron", help="a new expression (five fields or a macro)")
    schedule_update.add_argument("--timezone", metavar="ZONE", help="a new IANA time zone")
    schedule_update.add_argument("--type", help="a new job type for every run")
    schedule_update.add_argument("--payload", metavar="JSON", help="its payload (with --type)")
    add(schedules_parser, "delete", "delete a schedule").add_argument("id", help="schedule id")

    completion = add(
        sub,
        "completion",
        "print a shell completion script",
        'Print a completion script. Load it with: eval "$(taskmill completion bash)"\n'
        "(zsh: the same with zsh), e.g. in ~/.bashrc or ~/.zshrc.",
    )
    completion.add_argument("shell", choices=SHELLS, help="bash or zsh")
    return top


def main(argv: list[str] | None = None) -> int:
    # A shell starts `taskmill ... &` with SIGINT ignored; an explicit interrupt should still
    # stop it (quietly, below).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # An output encoding that cannot show a job's name (PYTHONIOENCODING=ascii, a Latin-1
    # locale) shows "?" for those characters instead of ending in a traceback.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    try:
        args = parser().parse_args(argv)
        # Not `set_defaults`: the global options' actions are shared with every subcommand,
        # and a default set on one parser would overwrite a value given before the subcommand.
        defaults = {
            "url": None,
            "profile": os.environ.get("TASKMILL_PROFILE", "default"),
            "json": False,
            "interval": 1.0,
        }
        for name, value in defaults.items():
            if not hasattr(args, name):
                setattr(args, name, value)
        return run(args)
    except CliError as error:
        STATUS_LINE.close()
        print(f"taskmill: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        STATUS_LINE.close()
        going_on = (
            f"; job {WATCHING[0]} goes on (`taskmill jobs watch {WATCHING[0]}` follows it)"
            if WATCHING
            else ""
        )
        print(f"taskmill: interrupted{going_on}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `taskmill jobs list | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED


if __name__ == "__main__":
    sys.exit(main())
