"""`make run`: the whole platform on one machine, running the same handlers as the cloud.

Embedded Postgres (unless DATABASE_URL), a moto SQS server on TASKMILL_SQS_PORT (9324; unless
AWS_ENDPOINT_URL) with the cloud's queues, the API behind an API Gateway emulation on
TASKMILL_PORT (8000), worker pollers per queue, the recovery sweep every few seconds, and a
first admin account. Ports, the data directory's lock, DATABASE_URL, AWS_ENDPOINT_URL, the
job modules, the first admin and the functions' settings are checked before anything starts;
Ctrl-C, SIGTERM or SIGHUP stop everything at any moment, start-up included.

Only the standard library is imported at module level, so that an old Python gets a one-line
message from `main()` rather than a traceback from an import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskmill.db import Database

DEFAULT_ADMIN_EMAIL = "admin@taskmill.local"
DEFAULT_PORT = 8000
# ElasticMQ's port, the usual one for a local SQS (LocalStack's 4566 is often taken by it).
DEFAULT_SQS_PORT = 9324
QUEUE_PREFIX = "taskmill-local"
SWEEP_SECONDS = 5.0
LOG_LEVELS = ("debug", "info", "warning", "error")
log = logging.getLogger("taskmill.local")


class StartupAborted(Exception):
    """A stop was asked for while starting: what was started is stopped, nothing reported."""


@dataclass
class LocalConfig:
    data_dir: Path
    port: int
    sqs_port: int = DEFAULT_SQS_PORT
    database_url: str | None = None
    aws_endpoint_url: str | None = None
    admin_email: str = DEFAULT_ADMIN_EMAIL
    admin_password: str | None = None
    pollers_per_queue: int = 2
    sweep_seconds: float = SWEEP_SECONDS

    @classmethod
    def from_environment(cls) -> LocalConfig:
        config = cls(
            data_dir=Path(os.environ.get("TASKMILL_DATA_DIR", ".taskmill")).resolve(),
            port=_port_setting("TASKMILL_PORT", DEFAULT_PORT),
            sqs_port=_port_setting("TASKMILL_SQS_PORT", DEFAULT_SQS_PORT),
            database_url=os.environ.get("DATABASE_URL") or None,
            aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            admin_email=os.environ.get("TASKMILL_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL),
            admin_password=os.environ.get("TASKMILL_ADMIN_PASSWORD") or None,
        )
        # Each is free on its own, so the port check passes them; the API, started after the
        # SQS server, would then find its port "already in use" by the stack itself.
        if config.port == config.sqs_port != 0 and not config.aws_endpoint_url:
            raise ValueError(
                f"TASKMILL_PORT and TASKMILL_SQS_PORT are both {config.port}: the API and the "
                "local SQS each need a port of their own; give them two different ones"
            )
        return config


# The recovery sweep's timings locally, where the user does not set them: unsent jobs are
# taken over sooner than in the cloud (10 s, not 30: nothing here is slow), and a queued job's
# message is replaced only after every hold is over (as cdk.json's values are), so a job held
# back by a rate or a later run_at is not sent another message every minute. A restart of the
# stack re-sends queued jobs anyway, and tests that kill the SQS endpoint set less.
def sweep_timings(environ: Mapping[str, str]) -> dict[str, str]:
    """The sweep's settings for the local stack: the user's where set, else the defaults."""
    # Imported here: this module imports only the standard library at its top (see above).
    from taskmill.flow.holds import (
        MAX_CONCURRENCY_HOLD_SECONDS,
        MAX_NOT_DUE_HOLD_SECONDS,
        MAX_RATE_HOLD_SECONDS,
    )

    longest_hold = max(
        MAX_RATE_HOLD_SECONDS, MAX_CONCURRENCY_HOLD_SECONDS, MAX_NOT_DUE_HOLD_SECONDS
    )
    defaults = {
        "TASKMILL_SEND_GRACE_SECONDS": "10",
        "TASKMILL_REQUEUE_AFTER_SECONDS": str(longest_hold + 60),
    }
    return {name: environ.get(name, default) for name, default in defaults.items()}


def handler_environment(
    environ: Mapping[str, str],
    *,
    database_url: str,
    sqs_endpoint: str,
    jwt_secret: str,
    webhook_secret: str,
) -> dict[str, str]:
    """What the stack sets for its handlers on top of `environ` (the queues' URLs apart)."""
    return {
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": sqs_endpoint,
        "AWS_DEFAULT_REGION": environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "TASKMILL_STAGE": "local",
        "TASKMILL_JWT_SECRET": jwt_secret,
        "TASKMILL_WEBHOOK_SECRET": webhook_secret,
        **sweep_timings(environ),
        "POWERTOOLS_METRICS_NAMESPACE": "Taskmill",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # No CloudWatch here: EMF lines and the sweep's line every few seconds would
        # drown the console. Set them yourself to see them.
        "POWERTOOLS_METRICS_DISABLED": environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
        "POWERTOOLS_LOG_LEVEL": environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
    }


def check_settings(environ: Mapping[str, str]) -> None:
    """Each function's settings, as its cold start will read them: a bad value (say
    TASKMILL_HTTP_ALLOW_PRIVATE=maybe) is one line, not a 503 on every request."""
    from taskmill.errors import SettingsError
    from taskmill.settings import ApiSettings, RecoverySettings, WorkerSettings, load_settings

    from taskmill_local.preflight import PreflightError

    for settings in (ApiSettings, WorkerSettings, RecoverySettings):
        try:
            load_settings(settings, environ)
        except SettingsError as exc:
            raise PreflightError(str(exc)) from None


def check_settings_before_start(config: LocalConfig, environ: Mapping[str, str]) -> None:
    """`check_settings` before anything starts: what the stack makes at start (its database,
    SQS endpoint, queues and keys) stands in as placeholders, so a bad value of the user's
    is one line before Postgres is made or started."""
    from taskmill.topology import QUEUES

    endpoint = config.aws_endpoint_url or f"http://127.0.0.1:{config.sqs_port}"
    placeholders = handler_environment(
        environ,
        database_url=config.database_url or "postgresql://127.0.0.1/taskmill",
        sqs_endpoint=endpoint,
        jwt_secret="x" * 64,
        webhook_secret="x" * 64,
    )
    for queue in QUEUES:
        priority = queue.priority.value
        placeholders[f"TASKMILL_QUEUE_URL_{priority.upper()}"] = f"{endpoint}/{priority}"
        placeholders[f"TASKMILL_DLQ_URL_{priority.upper()}"] = f"{endpoint}/{priority}-dlq"
    check_settings({**environ, **placeholders})


def _port_setting(name: str, default: int) -> int:
    """A port from the environment; 0 is any free port, which the server binds itself and
    reports (the banner, `api.url` and `sqs.endpoint` in the data directory): no window
    between choosing a port and listening on it for another program to take it."""
    value = os.environ.get(name) or str(default)
    # ASCII digits only: `isdigit` also takes "²" (which int() refuses) and "٣" (read as 3).
    if not (value.isascii() and value.isdigit()) or not 0 <= int(value) < 65536:
        raise ValueError(
            f"{name} must be a port number (1-65535, or 0 for any free one), not {value!r}"
        )
    return int(value)


def _publish(path: Path, text: str) -> None:
    """Write a file that scripts poll for whole: a reader sees it complete or not at all."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _secret_file(path: Path, size: int = 32) -> str:
    """A generated secret kept under the data dir, so tokens survive a restart."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(size))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class LocalStack:
    config: LocalConfig
    # Set by the caller to stop a start-up half-way (checked between its steps).
    abort: threading.Event = field(default_factory=threading.Event)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _threads: list[threading.Thread] = field(default_factory=list)
    # Whether the password the banner points at (TASKMILL_ADMIN_PASSWORD, else admin.password)
    # opens the first admin's account: one made by an earlier start keeps its own.
    admin_password_known: bool = True
    url: str = ""
    sqs_endpoint: str = ""

    def _first_admin(self, db: Database) -> bool:
        """Make the first admin unless its account exists, and tell whether the password the
        banner points at opens it. An account made by an earlier start is never changed (as a
        deploy never changes it): it keeps the password it was made with, or was given since,
        whatever TASKMILL_ADMIN_PASSWORD says now; and no admin.password is generated for it,
        since that password would open nothing."""
        from taskmill.auth.bootstrap import ensure_first_admin
        from taskmill.auth.passwords import verify_password
        from taskmill.users.store import UserStore

        config = self.config
        password_file = config.data_dir / "admin.password"
        account = UserStore(db).find_by_email(config.admin_email)
        password: str | None = config.admin_password
        if account is None:
            password = password or _secret_file(password_file, 12)
            account, created = ensure_first_admin(db, config.admin_email, password)
            if created:
                return True
        elif password is None and password_file.exists():
            password = password_file.read_text().strip()
        return password is not None and verify_password(password, account.password_hash)

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _step(self) -> None:
        """Between two start-up steps: give up if a stop was asked for meanwhile."""
        if self.abort.is_set():
            raise StartupAborted

    def _start(self) -> None:
        from taskmill_local.queues import create_queues

        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        database_url = config.database_url or self._exits.enter_context(self._postgres())
        self._step()
        endpoint = config.aws_endpoint_url or self._sqs_server()
        self._step()
        self.sqs_endpoint = endpoint
        # For the AWS CLI, boto3 and the e2e tests (`aws sqs start-message-move-task ...`).
        endpoint_file = config.data_dir / "sqs.endpoint"
        _publish(endpoint_file, endpoint + "\n")
        self._exits.callback(endpoint_file.unlink, missing_ok=True)
        env = handler_environment(
            os.environ,
            database_url=database_url,
            sqs_endpoint=endpoint,
            jwt_secret=_secret_file(config.data_dir / "jwt.key", 48),
            webhook_secret=_secret_file(config.data_dir / "webhook.key", 48),
        )
        os.environ.update(env)  # the handlers read their settings from here, as in Lambda
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        from taskmill_local.preflight import PreflightError, sqs_endpoint_problem

        sqs = boto3.client("sqs")
        try:
            os.environ.update(create_queues(sqs, QUEUE_PREFIX))
        except (BotoCoreError, ClientError) as exc:  # AWS_ENDPOINT_URL's SQS went away
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise PreflightError(sqs_endpoint_problem(endpoint, reason)) from None
        check_settings(os.environ)
        self._step()

        from taskmill.db import Database
        from taskmill.db.migrate import migrate
        from taskmill.jobs.store import JobStore
        from taskmill.queue.sqs import JobQueue
        from taskmill.recovery.redrive_tasks import RedriveTaskStore
        from taskmill.settings import QueueSettings, load_settings

        migrate(database_url)
        self._step()
        db = Database(database_url, application_name="taskmill-local")
        try:
            self.admin_password_known = self._first_admin(db)
            store = JobStore(db)
            queue = JobQueue(load_settings(QueueSettings))
            if not config.aws_endpoint_url:
                # Our SQS starts empty every time: whatever was queued before the restart has
                # lost its message. Sent again below, before the pollers start.
                store.mark_queued_to_send()
                # And every failed job has lost its DLQ message, without which it would be
                # on no Dead letters page and no redrive would find it.
                self._dead_letter_failed(store, queue)
            if not config.database_url:
                # Our own Postgres, and the data directory's lock says no other stack uses
                # it: the jobs left running were run by the previous process, gone with
                # them. The sweep's first run (at once) recovers them.
                store.end_leases_of_own_workers()
                # Likewise its background redrives, which ran on its threads.
                RedriveTaskStore(db).fail_left_by_stopped_stack()
            self._send_marked(store, queue)
        finally:
            db.close()
        self._step()
        self._start_handlers(sqs, database_url)

    @staticmethod
    def _send_marked(store: Any, queue: Any, batch: int = 500) -> None:
        """Send every queued job marked "to be sent" now, not after the sweep's grace
        period: at start nothing else is sending them. What SQS refuses stays marked for
        the sweep."""
        from taskmill.lifecycle.sending import send_pending

        while True:
            jobs = store.pending_sends(older_than_seconds=0, limit=batch)
            sent = send_pending(store, queue, jobs)
            if len(jobs) < batch or len(sent) < len(jobs):
                return

    @staticmethod
    def _dead_letter_failed(store: Any, queue: Any, batch: int = 500) -> None:
        """Put every failed job's message back in its DLQ, as the last attempt left it."""
        after = None
        while True:
            jobs = store.failed_page(after=after, limit=batch)
            queue.dead_letter_many(jobs, "failed before the local stack restarted")
            if len(jobs) < batch:
                return
            after = jobs[-1].id

    @contextlib.contextmanager
    def _postgres(self) -> Iterator[str]:
        from taskmill_local.postgres import EmbeddedPostgres, ensure_database

        server = EmbeddedPostgres(self.config.data_dir / "pgdata", keep_data=True)
        try:
            url = ensure_database(server.url, "taskmill")
            self._spawn(lambda: self._watch_postgres(server), "postgres-watchdog")
            yield url
        finally:
            self.stop_event.set()  # the watchdog must not restart what is being stopped
            for thread in self._threads:
                if thread.name == "postgres-watchdog":
                    thread.join(timeout=5)
            server.stop()

    def _watch_postgres(self, server: Any) -> None:
        """Postgres killed under the stack (`kill -9`, the OOM killer) comes back within a
        second or two; the handlers reconnect on their next statement, as in the cloud after
        a failover."""
        while not self.stop_event.wait(1.0):
            try:
                if server.restart_if_dead():
                    log.warning("the embedded Postgres had stopped; it was started again")
            except (OSError, subprocess.SubprocessError):
                log.exception("the embedded Postgres could not be restarted; retrying")

    def _sqs_server(self) -> str:
        from taskmill_local import moto_fast, moto_move_tasks
        from taskmill_local.preflight import Port, PreflightError, port_message
        from taskmill_local.sqs_server import LocalSqsServer

        moto_fast.apply()  # ReceiveMessage in time independent of the backlog
        moto_move_tasks.apply()  # the console's "Start DLQ redrive" API
        try:
            server = LocalSqsServer("127.0.0.1", self.config.sqs_port)
        except OSError as exc:  # taken since the check before start-up
            port = Port(self.config.sqs_port, "local SQS", "TASKMILL_SQS_PORT")
            raise PreflightError(port_message(port, exc)) from None
        server.start()
        self._exits.callback(server.stop)
        return server.endpoint

    def _start_handlers(self, sqs: Any, database_url: str) -> None:
        # The handlers as the wheel installs them (`functions/` of a checkout, under the
        # name setup.py gives it): the same code the Lambda assets hold.
        import taskmill_functions.api.authorizer as authorizer
        import taskmill_functions.api.handler as api
        import taskmill_functions.retry.sweep as recovery
        import taskmill_functions.worker.handler as worker
        from taskmill.db import Database
        from taskmill.flow.pauses import PauseKind, PauseStore
        from taskmill.settings import ApiSettings, load_settings
        from taskmill.topology import QUEUES

        from taskmill_local.gateway import Gateway
        from taskmill_local.lambda_runtime import LocalContext
        from taskmill_local.pollers import QueuePauses, QueuePoller
        from taskmill_local.preflight import Port, PreflightError, port_message

        origins = load_settings(ApiSettings).cors_origin_list
        try:
            gateway = Gateway(
                api.handler,
                authorizer.handler,
                host="127.0.0.1",
                port=self.config.port,
                cors_preflight=bool(origins),
                cors_origins=origins,
            )
        except OSError as exc:  # taken since the check before start-up
            port = Port(self.config.port, "API", "TASKMILL_PORT")
            raise PreflightError(port_message(port, exc)) from None
        gateway.start()
        self._exits.callback(gateway.stop)
        self.url = f"http://127.0.0.1:{gateway.port}"
        # Where the API listens, for scripts and tests that start the stack on port 0.
        url_file = self.config.data_dir / "api.url"
        _publish(url_file, self.url + "\n")
        self._exits.callback(url_file.unlink, missing_ok=True)
        # The pollers' own connection: they read the paused queues about once a second.
        pauses_db = Database(database_url, application_name="taskmill-local-pollers")
        self._exits.callback(pauses_db.close)
        pause_store = PauseStore(pauses_db)
        pauses = QueuePauses(lambda: pause_store.names(PauseKind.QUEUE))
        for definition in QUEUES:
            url = os.environ[f"TASKMILL_QUEUE_URL_{definition.priority.value.upper()}"]
            for index in range(min(self.config.pollers_per_queue, definition.max_concurrency)):
                # Each poller is a Lambda container of its own (its own worker and
                # connection), as the event source mapping's concurrent invocations are.
                poller = QueuePoller(
                    sqs, url, definition, worker.new_container(), self.stop_event, pauses=pauses
                )
                self._spawn(poller.run, f"poller-{definition.priority.value}-{index}")

        def sweep_forever() -> None:
            # The first run at once: it recovers the jobs a previous run left running.
            while not self.stop_event.is_set():
                # LocalContext has what the handler reads of Lambda's context object.
                context: Any = LocalContext("taskmill-recovery", 60)
                try:
                    recovery.handler({"source": "local.schedule"}, context)
                except Exception:
                    log.exception(
                        "recovery sweep failed; next run in %ss", self.config.sweep_seconds
                    )
                self.stop_event.wait(self.config.sweep_seconds)

        self._spawn(sweep_forever, "sweep")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        # A poller in the middle of a long job body is not waited for (as a Lambda stopped
        # mid-invocation): the next start recovers that job. Five seconds for all of them.
        deadline = time.monotonic() + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() and t.name.startswith("poller") for t in self._threads):
            log.warning("jobs still running were abandoned; the next start runs them again")
            # Their reports into a stopped database are not news.
            logging.disable(logging.WARNING)
        self._exits.close()


def _shown(path: Path) -> str:
    """A path as the user would type it from where `make run` was started."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _cli_command() -> str:
    """The `taskmill` CLI as it can be run from here: the venv's script (`.venv/bin/
    taskmill` after `make`), else this Python with `-m taskmill_local.cli`."""
    script = Path(sys.executable).parent / "taskmill"
    if script.exists():
        return shlex.quote(_shown(script))
    return f"{shlex.quote(_shown(Path(sys.executable)))} -m taskmill_local.cli"


def banner(config: LocalConfig, stack: LocalStack) -> str:
    login = f"{_cli_command()} login --url {stack.url} --email {shlex.quote(config.admin_email)}"
    if not stack.admin_password_known:
        if config.admin_password:
            why = "TASKMILL_ADMIN_PASSWORD only sets a new account's"
        elif (config.data_dir / "admin.password").exists():
            why = (
                f"not the one in {_shown(config.data_dir / 'admin.password')}: changed since, "
                "or set by TASKMILL_ADMIN_PASSWORD"
            )
        else:
            why = "set by TASKMILL_ADMIN_PASSWORD then, or changed since"
        kept = f"made by an earlier start with another password ({why})"
        login += "   # asks for the password"
    elif config.admin_password:
        kept = "password from TASKMILL_ADMIN_PASSWORD"
        login += "   # asks for the password"
    else:
        password_file = _shown(config.data_dir / "admin.password")
        kept = f"password in {password_file}"
        # `--password=`: a generated password may start with "-", which argparse would take
        # for an option after a separate `--password` (a flaky banner test showed it).
        login += f' --password="$(cat {shlex.quote(password_file)})"'
    if config.database_url:
        from taskmill_local.preflight import describe_database

        database = f"{describe_database(config.database_url)[0]} (DATABASE_URL)"
    else:
        database = f"embedded Postgres in {_shown(config.data_dir / 'pgdata')}"
    sqs_note = (
        "(AWS_ENDPOINT_URL)"
        if config.aws_endpoint_url
        else f"(local SQS; also in {_shown(config.data_dir / 'sqs.endpoint')})"
    )
    return (
        f"\nTaskmill is running.\n"
        f"  API:         {stack.url}/v1\n"
        f"  Swagger UI:  {stack.url}/v1/docs\n"
        f"  Console:     {stack.url}/console/\n"
        f"  SQS:         {stack.sqs_endpoint}  {sqs_note}\n"
        f"  database:    {database}\n"
        f"  admin:       {config.admin_email}, {kept}\n"
        f"  log in:      {login}\n"
        f"Ctrl-C (or `kill {os.getpid()}`) stops everything. "
        f"More output: TASKMILL_LOG_LEVEL=info or debug.\n"
    )


def configure_logging(level_name: str) -> None:
    """`warning` (the default): problems only. `info`: also the handlers' own lines (each
    job, each sweep). `debug`: also one line per API request and per SQS call."""
    level = getattr(logging, level_name.upper())
    # Libraries (pgserver, botocore, moto) speak up only for warnings, whatever the level.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    log.setLevel(min(level, logging.INFO))
    # werkzeug (moto's server) logs every SQS request at INFO, unless its logger has a level.
    logging.getLogger("werkzeug").setLevel(
        logging.INFO if level <= logging.DEBUG else logging.WARNING
    )
    logging.getLogger("taskmill_local.gateway").setLevel(level)
    # The handlers' Powertools loggers (set yourself to override).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", level_name.upper())


def fail(message: str) -> int:
    print(f"taskmill: {message}", file=sys.stderr, flush=True)
    return 1


USAGE = """usage: make run   (= python -m taskmill_local.stack; taskmill-local when installed)

Starts the whole platform on this machine: Postgres, SQS, the API on TASKMILL_PORT, worker
pollers and the recovery sweep, until Ctrl-C. It takes no arguments; its settings are
environment variables, among them:

  TASKMILL_PORT            the API's port (8000; 0: any free one)
  TASKMILL_SQS_PORT        the local SQS's port (9324; 0: any free one)
  TASKMILL_DATA_DIR        where its data lives (.taskmill in the current directory)
  DATABASE_URL             a Postgres of yours instead of the embedded one
  AWS_ENDPOINT_URL         an SQS of yours instead of the local one
  TASKMILL_ADMIN_EMAIL     the first admin (admin@taskmill.local)
  TASKMILL_ADMIN_PASSWORD  its password when it is made (else generated into the data dir)
  TASKMILL_JOB_MODULES     your job types' modules, comma-separated
  TASKMILL_LOG_LEVEL       debug, info, warning (the default) or error

README.md, "Running locally (`make run`)", has them all."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args:
        print(
            f"taskmill: the local stack takes no arguments ({' '.join(args)}): its settings are "
            "environment variables, e.g. TASKMILL_PORT=8001 make run (--help lists them)",
            file=sys.stderr,
            flush=True,
        )
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - `python3 -m taskmill_local.stack` with an old python3
        return fail(
            f"Python 3.11 or newer is needed, this is {sys.version.split()[0]} "
            f"({sys.executable}): use `make run` (it makes .venv with a Python 3.11+)"
        )
    # First of all, so that a stop asked for during start-up is heard. SIGINT explicitly:
    # a shell starting us in the background (`make run &`) has it ignored.
    stopping = threading.Event()
    wake = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()
        wake.set()

    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, on_signal)

    level_name = (os.environ.get("TASKMILL_LOG_LEVEL") or "warning").lower()
    if level_name not in LOG_LEVELS:
        choices = ", ".join(LOG_LEVELS)
        return fail(f"TASKMILL_LOG_LEVEL must be one of {choices}, not {level_name!r}")
    configure_logging(level_name)
    # Ctrl-C reaches pgserver's initdb/pg_ctl too (same process group): their failure then
    # is the stop itself, not news.
    logging.getLogger("pgserver").addFilter(lambda record: not stopping.is_set())
    from taskmill_local.preflight import (
        DataDirLock,
        Port,
        PreflightError,
        add_job_module_paths,
        check_admin,
        check_database,
        check_job_types,
        check_ports,
        check_sqs_endpoint,
    )

    try:
        config = LocalConfig.from_environment()
    except ValueError as exc:
        return fail(str(exc))
    lock = DataDirLock(config.data_dir)
    try:
        lock.acquire()
        ports = [Port(config.port, "API", "TASKMILL_PORT")]
        if not config.aws_endpoint_url:
            ports.append(Port(config.sqs_port, "local SQS", "TASKMILL_SQS_PORT"))
        check_ports(ports)
        if config.database_url:
            check_database(config.database_url, config.data_dir)
        if config.aws_endpoint_url:
            check_sqs_endpoint(config.aws_endpoint_url)
        add_job_module_paths()
        check_job_types()
        check_admin(config.admin_email, config.admin_password, config.data_dir)
        check_settings_before_start(config, os.environ)
    except PreflightError as exc:
        lock.release()
        return fail(str(exc))
    try:
        code = _run(config, stopping, wake)
    finally:
        lock.release()
    _exit_without_waiting_for_bodies(code)
    return code


def _exit_without_waiting_for_bodies(code: int) -> None:
    """Everything is stopped, but a job body that was running (a thread of the worker's
    pool, which the interpreter joins at exit) would keep the process alive until it ends,
    reporting into a stopped database. As with a Lambda stopped mid-invocation, it is
    abandoned: the next start ends its lease and the sweep runs it again."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def wait_heeding_signals(event: threading.Event) -> None:
    """Wait for `event` in the main thread. Not one untimed wait: the kernel may deliver
    SIGTERM to any of the process's threads, and then the main thread's blocked lock is not
    interrupted, so the Python handler that sets the event never runs (a stop missed, seen
    in the browser tests). Waking twice a second runs pending handlers."""
    while not event.wait(timeout=0.5):
        pass


def _run(config: LocalConfig, stopping: threading.Event, wake: threading.Event) -> int:
    from taskmill_local.preflight import PreflightError

    if stopping.is_set():
        return 0
    stack = LocalStack(config, abort=stopping)
    failure: list[BaseException] = []

    def start() -> None:
        try:
            stack.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)
        finally:
            wake.set()

    print("starting Taskmill locally…", flush=True)
    starter = threading.Thread(target=start, name="start-up", daemon=True)
    starter.start()
    wait_heeding_signals(wake)  # started, failed, or a stop asked for
    if stopping.is_set():
        print("stopping…", flush=True)
        starter.join()  # it stops at its next step and stops what it had started
        if not failure:
            stack.stop()
        print("stopped.", flush=True)
        return 0
    if failure:
        if isinstance(failure[0], PreflightError):
            return fail(str(failure[0]))
        raise failure[0]
    print(banner(config, stack), flush=True)
    wait_heeding_signals(stopping)
    print("stopping…", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
