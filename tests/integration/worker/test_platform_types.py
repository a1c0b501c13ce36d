"""The platform job types against moto (SES, ECS) and a local HTTP server."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from taskmill.jobs.model import JobStatus
from taskmill.jobs.retry import JobFailure, PermanentJobFailure
from taskmill.jobtypes.container_tasks import ATTEMPT_ENDED, CANCELLED, TIMED_OUT, ContainerTasks
from taskmill.jobtypes.http_request import check_destination
from taskmill.lifecycle.ecs_events import finish_from_event
from taskmill.recovery.sweep import Sweeper, SweepLimits

from functions.retry.ecs_events import handler as container_events_handler
from tests.integration.worker.conftest import failures, queue_messages
from tests.support.lambda_events import FakeLambdaContext


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_http_request_refuses_other_schemes(url: str) -> None:
    with pytest.raises(PermanentJobFailure, match="only http and https"):
        check_destination(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://192.168.0.1/",
    ],
)
def test_http_request_refuses_private_addresses_unless_allowed(url: str) -> None:
    with pytest.raises(PermanentJobFailure, match="non-public"):
        check_destination(url, allow_private=False)
    check_destination(url, allow_private=True)


def test_http_request_stores_status_and_excerpt(enqueue, deliver, store, http_receiver) -> None:
    url, received = http_receiver
    job = enqueue("http.request", {"url": url, "method": "POST", "body": "hi"})
    assert failures(deliver()) == []
    done = store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.result["status"] == 200
    assert done.result["body_excerpt"] == "thanks"
    assert received[0]["body"] == b"hi"


def test_http_request_to_a_private_address_fails_permanently(
    enqueue, deliver, store, worker, sqs, job_queue
) -> None:
    worker.services.settings = worker.services.settings.model_copy(
        update={"http_allow_private": False}
    )
    job = enqueue("http.request", {"url": "http://127.0.0.1:9/"})
    assert failures(deliver()) == []
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 1  # not retried: it can never succeed
    assert "non-public" in (failed.last_error or "")


def test_email_send_through_ses(enqueue, deliver, store, worker) -> None:
    ses = boto3.client("ses")
    ses.verify_email_identity(EmailAddress="jobs@example.com")
    worker.services.settings = worker.services.settings.model_copy(
        update={"ses_sender": "jobs@example.com"}
    )
    job = enqueue("email.send", {"to": ["ann@example.com"], "subject": "Hi", "text": "Hello"})
    assert failures(deliver()) == []
    done = store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.result["message_id"]
    assert ses.get_send_quota()["SentLast24Hours"] == 1


def test_email_without_a_sender_fails_with_a_clear_error(enqueue, deliver, store) -> None:
    job = enqueue("email.send", {"to": ["a@example.com"], "subject": "s", "text": "t"})
    deliver()
    assert "TASKMILL_SES_SENDER" in (store.get(job.id).last_error or "")


@pytest.fixture
def ecs_cluster(worker) -> str:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # Task ENIs get DNS names, as in the VPC the CDK stack creates (moto needs it too).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
    arn = boto3.client("ecs").create_cluster(clusterName="taskmill-test")["cluster"]["clusterArn"]
    worker.services.settings = worker.services.settings.model_copy(
        update={"ecs_cluster_arn": arn, "ecs_subnets": subnet, "ecs_security_groups": group}
    )
    return arn


def _stopped_event(task_arn: str, cluster: str, exit_code: int | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "job", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {
        "version": "0",
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {
            "clusterArn": cluster,
            "taskArn": task_arn,
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stoppedReason": "Essential container in task exited",
            "containers": [container],
        },
    }


def test_container_run_finishes_on_the_task_stop_event(
    enqueue, deliver, store, worker, ecs_cluster
) -> None:
    job = enqueue("container.run", {"image": "alpine:3", "command": ["echo", "hi"]})
    assert failures(deliver()) == []
    running = store.get(job.id)
    assert running.status is JobStatus.RUNNING  # until ECS says the task stopped
    assert running.external_ref
    tasks = boto3.client("ecs").list_tasks(cluster=ecs_cluster)["taskArns"]
    assert tasks == [running.external_ref]
    # An event that is not the stop changes nothing.
    running_event = _stopped_event(running.external_ref, ecs_cluster, None)
    running_event["detail"]["lastStatus"] = "RUNNING"
    assert finish_from_event(store, worker.outcomes, running_event, logger=_logger()) is None
    done = finish_from_event(
        store,
        worker.outcomes,
        _stopped_event(running.external_ref, ecs_cluster, 0),
        logger=_logger(),
    )
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.result["exit_code"] == 0
    assert done.result["log_stream"].startswith("taskmill/job/")


def test_container_non_zero_exit_is_retried_then_dead_lettered(
    enqueue, deliver, store, worker, job_queue, ecs_cluster, sqs
) -> None:
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=1)
    deliver()
    ref = store.get(job.id).external_ref
    assert ref
    failed = finish_from_event(
        store, worker.outcomes, _stopped_event(ref, ecs_cluster, 3), logger=_logger()
    )
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == "container exited with 3"
    assert len(queue_messages(sqs, job_queue.dlq_url("normal"))) == 1


@pytest.fixture
def ecs_events(worker_settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The deployed ECS-events function, built from its environment on first use."""
    import functions.retry.ecs_events as module

    monkeypatch.setattr(module, "_outcomes", None)
    for name, value in _env(worker_settings).items():
        monkeypatch.setenv(name, value)

    def handle(event: dict[str, Any]) -> Any:
        context: Any = FakeLambdaContext()
        return container_events_handler(event, context)

    return handle


def test_container_events_handler(enqueue, deliver, store, ecs_cluster, ecs_events) -> None:
    job = enqueue("container.run", {"image": "alpine:3"})
    deliver()
    ref = store.get(job.id).external_ref
    assert ref
    answer = ecs_events(_stopped_event(ref, ecs_cluster, 0))
    assert answer == {"job_id": str(job.id), "status": "succeeded"}


def test_container_run_without_a_runtime_fails_clearly(enqueue, deliver, store) -> None:
    job = enqueue("container.run", {"image": "alpine:3"})
    deliver()
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED
    assert "no container runtime" in (failed.last_error or "")


def test_worker_handler_entry_point_builds_from_the_environment(
    enqueue, sqs, job_queue, store, worker_settings, monkeypatch
) -> None:
    import functions.worker.handler as module
    from tests.support.lambda_events import receive_event

    monkeypatch.setattr(module, "_worker", None)
    for name, value in _env(worker_settings).items():
        monkeypatch.setenv(name, value)
    job = enqueue("noop")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    context: Any = FakeLambdaContext()
    assert module.handler(event, context) == {"batchItemFailures": []}
    assert store.get(job.id).status is JobStatus.SUCCEEDED


def test_each_local_container_has_its_own_worker_and_connection(
    enqueue, sqs, job_queue, store, worker_settings, monkeypatch, db
) -> None:
    """The local stack's pollers are containers of their own, as Lambda's concurrent
    invocations are: two of them run their batches on two workers and two connections."""
    import functions.worker.handler as module
    from tests.support.lambda_events import receive_event

    for name, value in _env(worker_settings).items():
        monkeypatch.setenv(name, value)
    containers = [module.new_container(), module.new_container()]
    for container in containers:
        job = enqueue("noop")
        event = receive_event(sqs, job_queue.queue_url("normal"))
        context: Any = FakeLambdaContext()
        assert container(event, context) == {"batchItemFailures": []}
        assert store.get(job.id).status is JobStatus.SUCCEEDED
    rows = db.execute(
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE application_name = 'taskmill-worker' AND datname = current_database()"
    )
    assert rows[0]["n"] == 2


def test_job_failure_is_retryable_by_default() -> None:
    assert JobFailure("x").retryable


def _env(settings: Any) -> dict[str, str]:
    env = {"DATABASE_URL": settings.database_url.get_secret_value()}
    for priority in ("high", "normal", "low"):
        env[f"TASKMILL_QUEUE_URL_{priority.upper()}"] = settings.queue_url(priority)
        env[f"TASKMILL_DLQ_URL_{priority.upper()}"] = settings.dlq_url(priority)
    return env


def _logger() -> Any:
    import logging

    return logging.getLogger("test")


def _unused() -> None:
    json.dumps({})


def test_container_success_releases_its_dependents_at_once(
    enqueue, deliver, store, job_queue, ecs_cluster, sqs, ecs_events
) -> None:
    parent = enqueue("container.run", {"image": "alpine:3"})
    child = enqueue("noop", depends_on=[parent.id])
    assert store.get(child.id).status is JobStatus.WAITING
    deliver()
    ref = store.get(parent.id).external_ref
    assert ref
    assert ecs_events(_stopped_event(ref, ecs_cluster, 0))["status"] == "succeeded"
    released = store.get(child.id)
    assert released.status is JobStatus.QUEUED  # not waiting for the next sweep
    assert not released.send_pending  # its message is on the queue already
    [message] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert json.loads(message["Body"])["job_id"] == str(child.id)


def test_container_failure_survives_an_sqs_error_on_the_dlq(
    enqueue, deliver, store, job_queue, ecs_cluster, sqs, ecs_events, caplog, http_receiver
) -> None:
    url, _ = http_receiver
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=1, webhook_url=url)
    deliver()
    ref = store.get(job.id).external_ref
    assert ref
    sqs.delete_queue(QueueUrl=job_queue.dlq_url("normal"))  # SQS refuses the DLQ send
    answer = ecs_events(_stopped_event(ref, ecs_cluster, 3))
    assert answer == {"job_id": str(job.id), "status": "failed"}
    assert store.get(job.id).status is JobStatus.FAILED
    assert "could not send a failed job to its DLQ" in caplog.text
    # What follows a final failure still happens: its completion webhook is on its way.
    [hook] = queue_messages(sqs, job_queue.queue_url("normal"))
    assert hook["MessageAttributes"]["job_type"]["StringValue"] == "webhook.deliver"


def test_a_container_task_outliving_its_timeout_is_a_timed_out_attempt(
    enqueue, deliver, store, worker, ecs_cluster, db
) -> None:
    """A container job's lease, once its task started, is the job's timeout: when it runs
    out, the task outlived the timeout (or its stop event was lost), which is no crashed
    worker. Refunded as a lost lease, the job went back to the queue with its attempt
    unspent and the worker started a second task beside the first, up to three times: one
    attempt ran the container four times."""
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=2, backoff_base_seconds=0)
    deliver()
    assert store.get(job.id).external_ref
    db.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (job.id,))
    failure = worker.outcomes.lease_expired(store.get(job.id))
    assert failure is not None
    again = store.get(job.id)
    assert (again.status, again.attempts, again.lost_leases) == (JobStatus.QUEUED, 1, 0)
    assert again.last_error is not None
    assert again.last_error.startswith(f"timed out after {again.timeout_seconds} s")
    assert "container task" in again.last_error


def test_a_late_stop_event_of_an_earlier_task_does_not_end_the_next_attempt(
    enqueue, deliver, store, worker, ecs_cluster
) -> None:
    """ECS events come at least once: a second STOPPED event of the first attempt's task,
    arriving once the retry was claimed but before its own task started, found the job by
    the first task's ARN, still on the row, and ended the new attempt with the old exit."""
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=2, backoff_base_seconds=0)
    deliver()
    first = store.get(job.id).external_ref
    assert first
    event = _stopped_event(first, ecs_cluster, 3)
    retried = finish_from_event(store, worker.outcomes, event, logger=_logger())
    assert retried is not None
    assert retried.status is JobStatus.QUEUED
    claimed = store.claim(job.id)  # the retry's claim; its task is not started yet
    assert claimed is not None
    assert claimed.external_ref is None
    assert finish_from_event(store, worker.outcomes, event, logger=_logger()) is None
    still = store.get(job.id)
    assert (still.status, still.attempts) == (JobStatus.RUNNING, 2)


def test_a_heartbeat_does_not_shorten_the_lease_of_a_started_container_task(enqueue, store) -> None:
    """The worker renews the leases of the bodies it still runs (to now + 60 s at most); a
    container body that started its task just before that heartbeat had its lease (the
    job's timeout, set as the task started) cut to a minute, after which the sweep ended
    the attempt while the task ran on, and the retry started a second task."""
    job = enqueue("container.run", {"image": "alpine:3"}, timeout_seconds=3600)
    claimed = store.claim(job.id)
    assert claimed is not None
    assert claimed.lease_token is not None
    started = store.set_external_ref(job.id, claimed.lease_token, "arn:aws:ecs:task/x")
    assert started is not None
    assert started.lease_until is not None
    store.extend_leases([(job.id, claimed.lease_token)], seconds=60)
    assert store.get(job.id).lease_until == started.lease_until


def _task(cluster: str, task_arn: str) -> dict[str, Any]:
    [task] = boto3.client("ecs").describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
    return task


def _sweep(store: Any, job_queue: Any, worker: Any, cluster: str | None) -> Any:
    return Sweeper(
        store,
        job_queue,
        worker.registry,
        SweepLimits(),
        containers=ContainerTasks(cluster, client_factory=boto3.client),
    ).run()[0]


def test_the_sweep_stops_the_task_of_a_container_attempt_that_timed_out(
    enqueue, deliver, store, worker, job_queue, ecs_cluster, db
) -> None:
    """Counted as timed out, the attempt's task no longer has a job waiting for it: left
    running it would cost Fargate time for nothing, beside the retry's own task."""
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=2, backoff_base_seconds=0)
    deliver()
    task_arn = store.get(job.id).external_ref
    assert _task(ecs_cluster, task_arn)["desiredStatus"] == "RUNNING"
    db.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (job.id,))
    report = _sweep(store, job_queue, worker, ecs_cluster)
    assert (report.recovered_retried, report.containers_stopped) == (1, 1)
    task = _task(ecs_cluster, task_arn)
    assert (task["desiredStatus"], task["stoppedReason"]) == ("STOPPED", TIMED_OUT)
    # Its stop event then finds no job holding the task: the retry is left as it is.
    assert (
        finish_from_event(
            store, worker.outcomes, _stopped_event(task_arn, ecs_cluster, 137), logger=_logger()
        )
        is None
    )
    assert store.get(job.id).status is JobStatus.QUEUED


def test_a_cancelled_container_job_has_its_task_stopped_and_ends_cancelled(
    enqueue, deliver, store, worker, job_queue, ecs_cluster
) -> None:
    # Its last attempt: a failure would end it failed (and dead-lettered), not cancelled.
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=1)
    deliver()
    task_arn = store.get(job.id).external_ref
    asked = store.cancel(job.id, actor="test")
    assert asked is not None
    assert (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)
    # Without a cluster (locally) there is nothing to stop.
    assert _sweep(store, job_queue, worker, None).containers_stopped == 0
    assert _sweep(store, job_queue, worker, ecs_cluster).containers_stopped == 1
    task = _task(ecs_cluster, task_arn)
    assert (task["desiredStatus"], task["stoppedReason"]) == ("STOPPED", CANCELLED)
    # The task's stop event (SIGTERM's exit) ends it cancelled.
    ended = finish_from_event(
        store, worker.outcomes, _stopped_event(task_arn, ecs_cluster, 143), logger=_logger()
    )
    assert ended is not None
    assert (ended.status, ended.attempts) == (JobStatus.CANCELLED, 1)
    assert _sweep(store, job_queue, worker, ecs_cluster).containers_stopped == 0


def test_a_task_ecs_will_not_stop_is_logged_and_asked_again_next_run(
    enqueue, deliver, store, worker, job_queue, ecs_cluster, caplog
) -> None:
    job = enqueue("container.run", {"image": "alpine:3"})
    deliver()
    store.cancel(job.id, actor="test")
    gone = ecs_cluster.replace("taskmill-test", "deleted-meanwhile")  # ECS answers an error
    with caplog.at_level("WARNING"):
        assert _sweep(store, job_queue, worker, gone).containers_stopped == 0
    assert "could not stop a container task" in caplog.text
    assert _sweep(store, job_queue, worker, ecs_cluster).containers_stopped == 1


def test_a_task_started_by_an_attempt_that_ended_meanwhile_is_stopped(
    enqueue, deliver, store, worker, ecs_cluster, db
) -> None:
    """The attempt ends (its lease taken by the sweep, the worker's deadline) while RunTask
    is under way: the task could not be recorded, so no sweep could ever stop it, and the
    retry would start another beside it. The body stops it itself."""
    job = enqueue("container.run", {"image": "alpine:3"}, max_attempts=2)
    ecs = boto3.client("ecs")

    class EndsTheAttemptDuringRunTask:
        def __getattr__(self, name: str) -> Any:
            return getattr(ecs, name)

        def run_task(self, **request: Any) -> Any:
            answer = ecs.run_task(**request)
            db.execute("UPDATE jobs SET lease_token = gen_random_uuid() WHERE id = %s", (job.id,))
            return answer

    worker.services._clients["ecs"] = EndsTheAttemptDuringRunTask()
    deliver()
    [task_arn] = ecs.list_tasks(cluster=ecs_cluster)["taskArns"]
    task = _task(ecs_cluster, task_arn)
    assert (task["desiredStatus"], task["stoppedReason"]) == ("STOPPED", ATTEMPT_ENDED)
    assert store.get(job.id).external_ref is None  # recorded nowhere, as the test set out
