"""What `make run` checks before it starts anything, each failure one line saying what to do.

A port in use, a second stack on the same data directory, an unreachable `DATABASE_URL`:
found here, nothing has started yet, so nothing is left running after the message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import traceback
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "stack.lock"


class PreflightError(Exception):
    """A problem the user fixes; its message is one line with the fix."""


@dataclass(frozen=True)
class Port:
    number: int
    what: str  # "API", "SQS"
    variable: str  # the environment variable that moves it


def _bind_error(number: int, host: str = "127.0.0.1") -> OSError | None:
    """Why `number` cannot be listened on, or None. Probed the way the servers bind
    (`SO_REUSEADDR`), so a port left in TIME_WAIT by the previous run is not "in use"."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, number))
            probe.listen(1)
        except OSError as exc:
            return exc
    return None


def port_message(port: Port, exc: OSError, avoid: frozenset[int] = frozenset()) -> str:
    return _port_advice(port, exc, avoid)[0]


def _port_advice(port: Port, exc: OSError, avoid: frozenset[int]) -> tuple[str, int | None]:
    """The line for a port that cannot be listened on, and the port it suggests instead."""
    if exc.errno == errno.EADDRINUSE:
        instead = _free_near(port.number, avoid)
        return (
            f"port {port.number} ({port.what}) is already in use: stop what listens there "
            f"(`ss -ltnp 'sport = :{port.number}'` shows it) or choose another port, e.g. "
            f"{port.variable}={instead} make run"
        ), instead
    if exc.errno == errno.EACCES:
        instead = _free_near(8000 if port.what == "API" else 9324, avoid)
        return (
            f"port {port.number} ({port.what}) needs privileges to listen on: choose one above "
            f"1023, e.g. {port.variable}={instead} make run"
        ), instead
    return f"cannot listen on 127.0.0.1:{port.number} ({port.what}, {port.variable}): {exc}", None


def _free_near(number: int, avoid: frozenset[int] = frozenset()) -> int:
    """A port above `number` that is free now (a suggestion, not a reservation)."""
    for candidate in range(number + 1, min(number + 100, 65535)):
        if candidate not in avoid and _bind_error(candidate) is None:
            return candidate
    return number + 1


def check_ports(ports: list[Port]) -> None:
    """Every port that cannot be listened on, each with another to choose: one no other line
    suggests, so following every line at once starts the stack."""
    avoid = {port.number for port in ports}
    problems = []
    for port in ports:
        error = _bind_error(port.number)
        if error is not None:
            problem, instead = _port_advice(port, error, frozenset(avoid))
            problems.append(problem)
            if instead is not None:
                avoid.add(instead)
    if problems:
        raise PreflightError("; ".join(problems))


class DataDirLock:
    """One local stack per data directory: an exclusive `flock` on `<data_dir>/stack.lock`,
    which holds the owner's pid for the message. The kernel releases the lock when its
    process dies however it dies, so the lock of a killed stack is simply taken over."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        data_dir = self.path.parent
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            why = "it is a file" if data_dir.is_file() else (exc.strerror or str(exc))
            raise PreflightError(
                f"TASKMILL_DATA_DIR {data_dir} cannot be used ({why}): give a directory "
                "you can write (it is made if missing), or unset it for .taskmill/ here"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            stop = f"stop it first (kill {holder})" if holder.isdigit() else "stop it first"
            raise PreflightError(
                f"another local stack (pid {holder}) is already running on {self.path.parent}: "
                f"{stop}, or give this one its own TASKMILL_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        # The file stays (removing it would let a stack that opened it a moment ago lock a
        # file nobody else sees); an empty one means "nobody".
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


# `user:password@` wherever it is (`postgresql://`, or a URL missing its colon).
_USERINFO = re.compile(r"([^\s:/@]*):[^\s@/]*@")
_PASSWORD_WORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, password: str | None = None, shown: str | None = None) -> str:
    """`text` without a database password: the URL's user-info, `password=...` words, and
    the password itself wherever else it appears as a whole (a driver message quoting the
    URL), not inside other words: a short password would mangle the message ("p" made
    "supported" "su******orted"). A password equal to `shown` (the user name, printed
    anyway) is left: `password authentication failed for user "postgres"` stays readable."""
    if password and password != shown:
        whole = rf"(?<![A-Za-z0-9]){re.escape(password)}(?![A-Za-z0-9])"
        text = re.sub(whole, "***", text)
    text = _PASSWORD_WORD.sub(r"\1***", text)
    return _USERINFO.sub(r"\1@", text)


def describe_database(url: str) -> tuple[str, str | None]:
    """`user@host:port/dbname` for messages (never the password), and the password (for
    `redact`)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a malformed URL is not echoed (it may hold a password)
        return "not a connection string psycopg understands", None
    host = str(parts.get("host") or "localhost (unix socket)")
    port = parts.get("port") or 5432
    user = f"{parts['user']}@" if parts.get("user") else ""
    password = parts.get("password")
    return f"{user}{host}:{port}/{parts.get('dbname', '')}", str(password) if password else None


def check_database(url: str, data_dir: Path, timeout_seconds: int = 5) -> None:
    """Connect once to `DATABASE_URL`; a failure is one line with the host (no password) and
    how to use the embedded Postgres instead."""
    import psycopg

    where, password = describe_database(url)
    user = where.split("@", 1)[0] if "@" in where else None
    if password is None and where.startswith("not a"):
        raise PreflightError(
            f"DATABASE_URL is {where} (expected postgresql://USER:PASSWORD@HOST:5432/DBNAME): "
            f"fix it, or unset it to use the embedded Postgres (data in "
            f"{data_dir / 'pgdata'}): env -u DATABASE_URL make run"
        )
    try:
        with psycopg.connect(url, connect_timeout=timeout_seconds, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        # libpq adds a generic hint; the line says what to do instead.
        reason = reason.split(" Is the server running")[0].rstrip(" .")
        reason = redact(reason, password, user)
        raise PreflightError(
            f"cannot reach the database in DATABASE_URL ({where}): {reason}. "
            f"Start it or fix DATABASE_URL, or unset it to use the embedded Postgres "
            f"(data in {data_dir / 'pgdata'}): env -u DATABASE_URL make run"
        ) from None


def sqs_endpoint_problem(url: str, reason: str) -> str:
    return (
        f"cannot reach an SQS endpoint at AWS_ENDPOINT_URL {url}: {reason}. Start it or fix "
        "AWS_ENDPOINT_URL, or unset it to use the local SQS the stack starts itself "
        "(on TASKMILL_SQS_PORT): env -u AWS_ENDPOINT_URL make run"
    )


def check_sqs_endpoint(url: str, timeout_seconds: float = 3) -> None:
    """Ask `AWS_ENDPOINT_URL` for one queue, without retries and with short timeouts; no SQS
    answering there is one line saying how to use the local one instead."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client(
            "sqs",
            endpoint_url=url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            config=Config(
                connect_timeout=timeout_seconds,
                read_timeout=timeout_seconds,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
        client.list_queues(MaxResults=1)
    except (BotoCoreError, ClientError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PreflightError(sqs_endpoint_problem(url, reason)) from None


def job_module_paths(cwd: Path | None = None) -> list[Path]:
    """Where the local stack imports `TASKMILL_JOB_MODULES` from, as they are deployed: in a
    checkout, `layers/` (the package layer ships its packages beside `taskmill`; README,
    "Adding a job type"), and the current directory (your CDK app's folder, whose packages
    its synth ships; `python -m` has it on sys.path, the `taskmill-local` script does not)."""
    found = [(cwd or Path.cwd()).resolve()]
    layers = Path(__file__).resolve().parents[2] / "layers"
    if (layers / "taskmill").is_dir():  # a checkout, not an installed wheel
        found.insert(0, layers)
    return found


def add_job_module_paths(cwd: Path | None = None) -> None:
    import sys

    for path in job_module_paths(cwd):
        if str(path) not in sys.path:
            sys.path.append(str(path))


def check_job_types(environ: dict[str, str] | None = None) -> None:
    """Build the job-type registry the functions will build, once, before anything starts: a
    job module that cannot be imported or registers badly is one line naming it and what to
    do, not a traceback from every poller and every sweep under a banner saying it runs."""
    import taskmill
    from taskmill.errors import SettingsError
    from taskmill.jobtypes.defaults import build_registry
    from taskmill.settings import JobTypeSettings, load_settings

    try:
        settings = load_settings(JobTypeSettings, environ)
    except SettingsError as exc:
        raise PreflightError(str(exc)) from None
    try:
        build_registry(settings.model_copy(update={"external_types": "[]"}), check=True)
    except Exception as exc:  # noqa: BLE001 - the user's own code: any error is theirs to fix
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        named = settings.job_module_names
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing and any(m == missing or m.startswith(f"{missing}.") for m in named):
            where = " or ".join(str(path) for path in job_module_paths())
            hint = f"put its package in {where}, or fix the name"
        else:
            # The line in the user's module, not the registry's check that refused it.
            platform = str(Path(taskmill.__file__).resolve().parent)
            frames = [
                frame
                for frame in traceback.extract_tb(exc.__traceback__)
                if not frame.filename.startswith(("<", platform))
            ]
            at = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
            hint = f"fix it{at}, or leave the module out"
        raise PreflightError(
            f"TASKMILL_JOB_MODULES={settings.job_modules!r} cannot be loaded: {reason}; {hint}"
        ) from None
    try:
        build_registry(settings, check=True)
    except Exception as exc:  # noqa: BLE001 - a declaration the registry refuses
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PreflightError(
            f"TASKMILL_EXTERNAL_TYPES cannot be loaded: {reason}; fix or unset it"
        ) from None


def check_admin(email: str, password: str | None, data_dir: Path) -> None:
    """The first admin the stack creates must be one that can sign in: an e-mail and a
    password the API's login accepts (checked before anything starts, not found out at the
    first `taskmill login`)."""
    from pydantic import TypeAdapter, ValidationError
    from taskmill.api.models import Email, Password

    try:
        # The login reads the address it is given as the API's Email type does (spaces
        # stripped, fullwidth letters made plain): an account stored otherwise is never found.
        accepted = TypeAdapter(Email).validate_python(email) == email
    except ValidationError:
        accepted = False
    if not accepted:
        raise PreflightError(
            f"TASKMILL_ADMIN_EMAIL {email!r} is not an e-mail address the API's login takes "
            "(name@domain in plain characters, no spaces or invisible characters): fix it, "
            "or unset it for admin@taskmill.local"
        )
    if password is None:
        return
    try:
        TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        [error] = exc.errors()
        raise PreflightError(
            f"TASKMILL_ADMIN_PASSWORD is not a password the API's login takes "
            f"({error['msg'].lower().replace('string', 'it')}, it has {len(password)}): "
            f"choose another, or unset it for a generated one in {data_dir / 'admin.password'}"
        ) from None
