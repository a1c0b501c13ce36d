"""`make run`: the whole platform on one machine, running the same handlers as the cloud.

Embedded Postgres (unless DATABASE_URL), a moto SQS server (unless AWS_ENDPOINT_URL) with the
cloud's queues, the API behind an API Gateway emulation on TASKMILL_PORT (8000), worker
pollers per queue, the recovery sweep every few seconds, and a first admin account.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.queues import create_queues

DEFAULT_ADMIN_EMAIL = "admin@taskmill.local"
QUEUE_PREFIX = "taskmill-local"
SWEEP_SECONDS = 5.0
log = logging.getLogger("taskmill.local")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalConfig:
    data_dir: Path
    port: int
    database_url: str | None = None
    aws_endpoint_url: str | None = None
    admin_email: str = DEFAULT_ADMIN_EMAIL
    admin_password: str | None = None
    pollers_per_queue: int = 2
    sweep_seconds: float = SWEEP_SECONDS

    @classmethod
    def from_environment(cls) -> LocalConfig:
        return cls(
            data_dir=Path(os.environ.get("TASKMILL_DATA_DIR", ".taskmill")).resolve(),
            port=int(os.environ.get("TASKMILL_PORT", "8000")),
            database_url=os.environ.get("DATABASE_URL") or None,
            aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            admin_email=os.environ.get("TASKMILL_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL),
            admin_password=os.environ.get("TASKMILL_ADMIN_PASSWORD") or None,
        )


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
    stop_event: threading.Event = field(default_factory=threading.Event)
    _exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _threads: list[threading.Thread] = field(default_factory=list)
    admin_password: str = ""
    url: str = ""
    sqs_endpoint: str = ""

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        database_url = config.database_url or self._exits.enter_context(self._postgres())
        endpoint = config.aws_endpoint_url or self._sqs_server()
        self.sqs_endpoint = endpoint
        # For the AWS CLI, boto3 and the e2e tests (`aws sqs start-message-move-task ...`).
        endpoint_file = config.data_dir / "sqs.endpoint"
        endpoint_file.write_text(endpoint + "\n")
        self._exits.callback(endpoint_file.unlink, missing_ok=True)
        env = {
            "DATABASE_URL": database_url,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            "TASKMILL_STAGE": "local",
            "TASKMILL_JWT_SECRET": _secret_file(config.data_dir / "jwt.key", 48),
            "TASKMILL_WEBHOOK_SECRET": _secret_file(config.data_dir / "webhook.key", 48),
            "TASKMILL_SEND_GRACE_SECONDS": "10",
            # Local SQS does not lose messages while it runs; a minute is plenty. Tests that
            # kill the SQS endpoint set less, so that lost messages are replaced sooner.
            "TASKMILL_REQUEUE_AFTER_SECONDS": os.environ.get(
                "TASKMILL_REQUEUE_AFTER_SECONDS", "60"
            ),
            "POWERTOOLS_METRICS_NAMESPACE": "Taskmill",
            "POWERTOOLS_TRACE_DISABLED": "true",
            # No CloudWatch here: EMF lines and the sweep's line every few seconds would
            # drown the console. Set them yourself to see them.
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        os.environ.update(env)  # the handlers read their settings from here, as in Lambda
        import boto3

        sqs = boto3.client("sqs")
        os.environ.update(create_queues(sqs, QUEUE_PREFIX))

        from taskmill.auth.bootstrap import ensure_first_admin
        from taskmill.db import Database
        from taskmill.db.migrate import migrate
        from taskmill.jobs.store import JobStore

        migrate(database_url)
        self.admin_password = config.admin_password or _secret_file(
            config.data_dir / "admin.password", 12
        )
        db = Database(database_url, application_name="taskmill-local")
        try:
            ensure_first_admin(db, config.admin_email, self.admin_password)
            if not config.aws_endpoint_url:
                # Our SQS starts empty every time: whatever was queued before the restart has
                # lost its message. The sweep's first run sends them again.
                JobStore(db).mark_queued_to_send()
        finally:
            db.close()
        self._start_handlers(sqs)

    @contextlib.contextmanager
    def _postgres(self) -> Iterator[str]:
        from local.postgres import EmbeddedPostgres, ensure_database

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
        from moto.server import ThreadedMotoServer

        from local import moto_fast, moto_move_tasks

        moto_fast.apply()  # ReceiveMessage in time independent of the backlog
        moto_move_tasks.apply()  # the console's "Start DLQ redrive" API
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        self._exits.callback(server.stop)
        return f"http://127.0.0.1:{port}"

    def _start_handlers(self, sqs: Any) -> None:
        from taskmill.topology import QUEUES

        import functions.api.authorizer as authorizer
        import functions.api.handler as api
        import functions.retry.sweep as recovery
        import functions.worker.handler as worker
        from local.gateway import Gateway
        from local.lambda_runtime import LocalContext
        from local.pollers import QueuePoller

        gateway = Gateway(api.handler, authorizer.handler, host="127.0.0.1", port=self.config.port)
        gateway.start()
        self._exits.callback(gateway.stop)
        self.url = f"http://127.0.0.1:{gateway.port}"
        for definition in QUEUES:
            url = os.environ[f"TASKMILL_QUEUE_URL_{definition.priority.value.upper()}"]
            for index in range(min(self.config.pollers_per_queue, definition.max_concurrency)):
                poller = QueuePoller(sqs, url, definition, worker.handler, self.stop_event)
                self._spawn(poller.run, f"poller-{definition.priority.value}-{index}")

        def sweep_forever() -> None:
            while not self.stop_event.wait(self.config.sweep_seconds):
                # LocalContext has what the handler reads of Lambda's context object.
                context: Any = LocalContext("taskmill-recovery", 60)
                try:
                    recovery.handler({"source": "local.schedule"}, context)
                except Exception:
                    log.exception(
                        "recovery sweep failed; next run in %ss", self.config.sweep_seconds
                    )

        self._spawn(sweep_forever, "sweep")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._exits.close()


def main() -> int:
    # Libraries (pgserver, botocore, moto's werkzeug) speak up only for warnings.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # werkzeug sets its own logger to INFO unless it has a level: every SQS call would print.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    log.setLevel(logging.INFO)
    config = LocalConfig.from_environment()
    stack = LocalStack(config)
    print("starting Taskmill locally…", flush=True)
    stack.start()
    where = (
        "" if config.admin_password else f"  (generated; kept in {config.data_dir}/admin.password)"
    )
    print(
        f"\nTaskmill is running.\n"
        f"  API:        {stack.url}/v1\n"
        f"  Swagger UI: {stack.url}/v1/docs\n"
        f"  health:     {stack.url}/v1/health\n"
        f"  SQS:        {stack.sqs_endpoint}\n"
        f"  admin:      {config.admin_email} / {stack.admin_password}"
        f"{where}\n"
        f"  data:       {config.data_dir}\n"
        f"Ctrl-C stops everything.\n",
        flush=True,
    )
    stopping = threading.Event()
    # Both explicitly: a shell that starts us in the background ignores SIGINT for us.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stopping.wait()
    print("stopping…", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
