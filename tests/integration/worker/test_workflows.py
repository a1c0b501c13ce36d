"""Workflows in the worker (SPEC §6): `context.dependency_results` and `context.submit`, on
real Postgres and moto. Children are committed only with their parent's success."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel
from taskmill.db import Database
from taskmill.jobs.model import Job, JobStatus
from taskmill.jobs.retry import JobFailure
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.lifecycle.outcomes import Outcomes
from taskmill.lifecycle.submit import JobRequest, resolve
from taskmill.queue.sqs import JobQueue
from taskmill.worker.children import ChildJobRefused
from taskmill.worker.runner import Worker

from functions.worker.handler import process_event
from tests.integration.worker.conftest import Calls, failures, queue_messages
from tests.support.factories import make_user
from tests.support.lambda_events import FakeLambdaContext, receive_event


class Text(BaseModel):
    text: str


class Anything(BaseModel):
    value: Any


class Size(BaseModel):
    characters: int


def children_of(store: JobStore, parent_id: UUID) -> list[Job]:
    return store.list_jobs(JobFilter(parent_id=parent_id), limit=200).items


def sent_ids(sqs: Any, job_queue: JobQueue, priority: str = "normal") -> set[str]:
    return {
        json.loads(m["Body"])["job_id"] for m in queue_messages(sqs, job_queue.queue_url(priority))
    }


@pytest.fixture
def parents(registry: JobTypeRegistry, calls: Calls) -> JobTypeRegistry:
    """Test types that submit children: `two.children` always; `fails.after.submit` fails
    its first attempt after submitting (the second submits and succeeds)."""

    @registry.register("two.children", max_attempts=3, backoff_base_seconds=0)
    def two(context: Any, payload: Any) -> str:
        calls.hit()
        context.submit("noop", name="first")
        context.submit("noop", name="second")
        return "parent done"

    @registry.register("fails.after.submit", max_attempts=3, backoff_base_seconds=0)
    def flaky(context: Any, payload: Any) -> str:
        run = calls.hit()
        context.submit("noop", name=f"from run {run}")
        context.submit("noop", name=f"from run {run}")
        if run == 1:
            raise JobFailure("first attempt fails after submitting")
        return "ok"

    @registry.register("echo.dependencies")
    def echo(context: Any, payload: Any) -> Any:
        return context.dependency_results

    @registry.register("submits.unknown")
    def unknown(context: Any, payload: Any) -> str:
        try:
            context.submit("no.such.type")
        except ChildJobRefused as exc:
            return f"seen at once: {exc}"
        return "not refused"

    @registry.register("submits.bad.option")
    def bad_option(context: Any, payload: Any) -> str:
        try:
            context.submit("noop", run_at="0001-01-01T00:00:00+14:00")
        except ChildJobRefused as exc:
            return str(exc)
        return "not refused"

    @registry.register("submits.two.start.times")
    def two_start_times(context: Any, payload: Any) -> str:
        try:
            context.submit("noop", run_at="2030-01-01T00:00:00Z", delay_seconds=60)
        except ChildJobRefused as exc:
            return str(exc)
        return "not refused"

    @registry.register("submits.unknown.uncaught")
    def uncaught(context: Any, payload: Any) -> str:
        context.submit("sleep", {"seconds": "many"})
        return "unreachable"

    @registry.register("takes.text", payload=Text)
    def takes_text(context: Any, payload: Text) -> int:
        return len(payload.text)

    @registry.register("submits.large.child", payload=Size, max_attempts=3)
    def large_child(context: Any, payload: Size) -> str:
        context.submit("takes.text", {"text": "x" * payload.characters})
        return "submitted"

    @registry.register("submits.many.large.children", payload=Size)
    def many_large_children(context: Any, payload: Size) -> str:
        for _ in range(100):
            context.submit("takes.text", {"text": "x" * payload.characters})
        return "submitted"

    @registry.register("submits.nested.child")
    def nested_child(context: Any, payload: Any) -> str:
        text: Any = "bottom"
        for _ in range(100):
            text = [text]
        context.submit("takes.anything", {"value": text})
        return "submitted"

    @registry.register("takes.anything", payload=Anything)
    def takes_anything(context: Any, payload: Anything) -> None:
        return None

    registry.load_modules(["tests.support.fanout_jobs"])
    return registry


def test_children_are_created_with_the_success_owned_and_sent(
    parents, enqueue, deliver, store: JobStore, sqs, job_queue
) -> None:
    parent = enqueue("two.children", correlation_id="corr-1")
    assert failures(deliver()) == []
    assert store.get(parent.id).status is JobStatus.SUCCEEDED
    children = children_of(store, parent.id)
    assert sorted(c.name or "" for c in children) == ["first", "second"]
    for child in children:
        assert child.parent_id == parent.id
        assert child.owner_id == parent.owner_id
        assert child.correlation_id == "corr-1"  # inherited unless the body sets one
        assert child.status is JobStatus.QUEUED
        assert not child.send_pending  # sent after the commit
    assert sent_ids(sqs, job_queue) == {str(c.id) for c in children}
    # Other jobs are nobody's children.
    assert children_of(store, children[0].id) == []
    assert store.get(parent.id).parent_id is None


def test_a_failed_attempt_creates_no_children_and_a_retry_submits_again(
    parents, enqueue, deliver, store: JobStore, calls
) -> None:
    parent = enqueue("fails.after.submit")
    assert len(failures(deliver())) == 1  # retried: the message comes back
    assert store.get(parent.id).status is JobStatus.QUEUED
    assert children_of(store, parent.id) == []
    assert failures(deliver()) == []
    assert store.get(parent.id).status is JobStatus.SUCCEEDED
    assert [c.name for c in children_of(store, parent.id)] == ["from run 2", "from run 2"]
    assert calls.count == 2


def test_a_duplicate_delivery_creates_the_children_once(
    parents, enqueue, deliver, store: JobStore, sqs, job_queue, calls
) -> None:
    parent = enqueue("two.children")
    event = receive_event(sqs, job_queue.queue_url("normal"))
    assert failures(deliver(event=event)) == []
    assert failures(deliver(event=event)) == []  # the same message again
    assert calls.count == 1
    assert len(children_of(store, parent.id)) == 2


def test_a_superseded_attempt_commits_neither_success_nor_children(
    parents, enqueue, store: JobStore, job_queue, registry
) -> None:
    """Two runs of one job: the first lost its lease (recovered, claimed again) and reports
    late. Its success is refused, and its children with it; the current run's stand."""
    parent = enqueue("two.children")
    first = store.claim(parent.id)
    assert first is not None
    assert first.lease_token is not None
    store.release(first.id, first.lease_token, "test: the lease was recovered")
    second = store.claim(parent.id)
    assert second is not None
    outcomes = Outcomes(store, job_queue, registry)
    child = resolve(JobRequest(type="noop", payload={}), registry)
    late = outcomes.succeeded_with_children(
        first, "late", [child.model_copy(update={"parent_id": parent.id})], actor="test"
    )
    assert late is None
    assert children_of(store, parent.id) == []
    assert store.get(parent.id).status is JobStatus.RUNNING
    current = outcomes.succeeded_with_children(
        second, "current", [child.model_copy(update={"parent_id": parent.id})], actor="test"
    )
    assert current is not None
    assert current.result == "current"
    assert len(children_of(store, parent.id)) == 1


def test_a_child_that_cannot_be_inserted_rolls_the_success_back(
    parents, enqueue, deliver, store: JobStore, db: Database, sqs, job_queue
) -> None:
    # The database refuses any child row: the success statement, which ran first in the
    # same transaction, must not be committed either.
    db.execute("""
CREATE FUNCTION refuse_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NOT NULL THEN
        RAISE EXCEPTION 'no children today' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_children BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION refuse_children();""")
    parent = enqueue("two.children", max_attempts=3)
    assert failures(deliver()) == []  # a permanent failure: acknowledged, to the DLQ
    failed = store.get(parent.id)
    assert failed.status is JobStatus.FAILED
    assert failed.result is None
    assert failed.last_error is not None
    assert failed.last_error.startswith("its 2 child jobs were not created: ")
    assert children_of(store, parent.id) == []
    statuses = [e["to_status"] for e in store.events(parent.id)]
    assert "succeeded" not in statuses
    assert sent_ids(sqs, job_queue) == set()


def test_children_over_the_owner_quota_fail_the_attempt_for_a_retry(
    parents,
    enqueue,
    store: JobStore,
    job_queue,
    sqs,
    platform_services,
) -> None:
    parent = enqueue("two.children", backoff_base_seconds=0)
    # The parent itself is unfinished until its success; the success and the two children
    # leave the owner at 2 unfinished jobs: over a quota of 1.
    worker = Worker(
        store,
        job_queue,
        parents,
        platform_services,
        deadline_margin_seconds=1.0,
        unfinished_limit=1,
    )
    event = receive_event(sqs, job_queue.queue_url("normal"))
    response = process_event(event, FakeLambdaContext(remaining_seconds=300), worker)
    assert len(failures(response)) == 1  # retryable: the message comes back
    retried = store.get(parent.id)
    assert retried.status is JobStatus.QUEUED
    assert retried.last_error == (
        "its 2 child jobs were not created: at most 1 unfinished jobs are allowed per user"
    )
    assert children_of(store, parent.id) == []


def test_a_dependency_that_is_not_the_owners_fails_the_attempt_for_good(
    parents, enqueue, deliver, store: JobStore, db: Database, registry, calls
) -> None:
    stranger = make_user(db)
    theirs = store.create(
        stranger, resolve(JobRequest(type="noop", payload={}), registry), actor="test"
    ).job

    @registry.register("depends.on.stranger")
    def body(context: Any, payload: Any) -> str:
        context.submit("noop", depends_on=[theirs.id])
        return "done"

    parent = enqueue("depends.on.stranger")
    assert failures(deliver()) == []
    failed = store.get(parent.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error == (
        "its 1 child jobs were not created: "
        "depends_on names a job that does not exist or is not yours"
    )


def test_a_child_depending_on_a_cancelled_job_fails_the_attempt_for_good(
    parents, enqueue, deliver, store: JobStore, registry, owner
) -> None:
    gone = store.create(owner, resolve(JobRequest(type="noop", payload={}), registry), actor="test")
    assert store.cancel(gone.job.id, actor="test") is not None

    @registry.register("depends.on.cancelled", max_attempts=3)
    def body(context: Any, payload: Any) -> str:
        context.submit("noop", depends_on=[gone.job.id])
        return "done"

    parent = enqueue("depends.on.cancelled")
    assert failures(deliver()) == []
    failed = store.get(parent.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)
    assert failed.last_error is not None
    assert failed.last_error.startswith("its 1 child jobs were not created: depends_on names")
    assert f"{gone.job.id} (cancelled)" in failed.last_error
    assert children_of(store, parent.id) == []


def test_an_invalid_child_is_refused_at_submit(parents, enqueue, deliver, store: JobStore) -> None:
    seen = enqueue("submits.unknown")
    uncaught = enqueue("submits.unknown.uncaught", max_attempts=3)
    assert failures(deliver()) == []
    assert store.get(seen.id).result == (
        "seen at once: child job refused: unknown job type 'no.such.type'"
    )
    assert children_of(store, seen.id) == []
    failed = store.get(uncaught.id)
    assert failed.status is JobStatus.FAILED  # not retryable: the same body would do it again
    assert failed.attempts == 1
    assert failed.last_error is not None
    assert failed.last_error.startswith(
        "child job refused: payload is not valid for job type 'sleep'"
    )


def test_a_refused_child_option_reads_as_the_validators_sentence(
    parents, enqueue, deliver, store: JobStore
) -> None:
    """It carried pydantic's "Value error, " before the sentence."""
    seen = enqueue("submits.bad.option")
    assert failures(deliver()) == []
    result = store.get(seen.id).result
    assert isinstance(result, str)
    assert result.startswith("child job refused: run_at: "), result
    assert "Value error" not in result


def test_a_child_given_run_at_and_delay_seconds_is_refused(
    parents, enqueue, deliver, store: JobStore
) -> None:
    seen = enqueue("submits.two.start.times")
    assert failures(deliver()) == []
    assert store.get(seen.id).result == (
        "child job refused: options: give run_at or delay_seconds, not both"
    )
    assert children_of(store, seen.id) == []


def test_dependency_results_are_keyed_by_job_id(
    parents, enqueue, deliver, store: JobStore, sqs, job_queue
) -> None:
    first = enqueue("counted")
    second = enqueue("counted")
    waiting = enqueue("echo.dependencies", depends_on=[first.id, second.id])
    alone = enqueue("echo.dependencies")
    assert waiting.status is JobStatus.WAITING
    assert failures(deliver()) == []  # the two counted ones and `alone`
    assert failures(deliver()) == []  # `waiting`, released and sent by the worker
    results = {str(j): store.get(j).result for j in (first.id, second.id)}
    assert sorted(r["run"] for r in results.values()) == [1, 2]
    assert store.get(waiting.id).result == results
    assert store.get(alone.id).result == {}


def test_a_job_without_dependencies_reads_nothing_more(
    parents, enqueue, deliver, db: Database
) -> None:
    for _ in range(3):
        enqueue("echo.dependencies")
    before = db.round_trips
    assert failures(deliver()) == []
    assert db.round_trips - before == 2  # claim and record, as for any job


def test_the_readme_fan_out_sums_its_children(
    parents, enqueue, deliver, store: JobStore, sqs, job_queue
) -> None:
    count = 4
    parent = enqueue("example.fanout", {"count": count})
    assert failures(deliver()) == []
    done = store.get(parent.id)
    children = {str(c.id): c for c in children_of(store, parent.id)}
    assert set(children) == {*done.result["parts"], done.result["total"]}
    total = children[done.result["total"]]
    assert total.status is JobStatus.WAITING
    assert total.depends_on == [UUID(p) for p in done.result["parts"]]
    assert {children[p].status for p in done.result["parts"]} == {JobStatus.QUEUED}
    assert failures(deliver()) == []  # the parts; the total is released and sent
    assert failures(deliver()) == []  # the total
    assert store.get(total.id).result == {"sum": sum(n * n for n in range(1, count + 1))}


def test_a_child_holds_the_limit_keys_it_is_given_and_no_owner_key(
    parents, enqueue, deliver, store: JobStore, registry
) -> None:
    @registry.register("keyed.children")
    def body(context: Any, payload: Any) -> str:
        context.submit("noop", limit_keys=["api:partner"])
        try:
            context.submit("noop", limit_keys=["owner:someone"])
        except ChildJobRefused as exc:
            return str(exc)
        return "not refused"

    parent = enqueue("keyed.children")
    assert failures(deliver()) == []
    done = store.get(parent.id)
    assert done.result.startswith("child job refused: limit_keys: owner: keys are implicit")
    [child] = children_of(store, parent.id)
    assert child.limit_keys == ["api:partner"]


def test_a_batch_mixing_parents_dependencies_and_webhooks_follows_each_up(
    parents, enqueue, deliver, store: JobStore
) -> None:
    # One batch: a parent with children and a webhook, a webhook job with a dependent, a
    # plain job with a dependent, a webhook job alone. The parent's row comes from its own
    # transaction, the others from the batch's success statement.
    hook = "https://example.com/hook"
    parent = enqueue("two.children", webhook_url=hook)
    hooked_dep = enqueue("noop", webhook_url=hook)
    plain_dep = enqueue("noop")
    alone = enqueue("noop", webhook_url=hook)
    waiting = [enqueue("noop", depends_on=[dep.id]) for dep in (hooked_dep, plain_dep)]
    assert all(store.get(w.id).status is JobStatus.WAITING for w in waiting)
    assert failures(deliver()) == []
    for job in (parent, hooked_dep, plain_dep, alone):
        assert store.get(job.id).status is JobStatus.SUCCEEDED
        assert not store.get(job.id).webhook_pending
    assert all(store.get(w.id).status is JobStatus.QUEUED for w in waiting)
    assert len(children_of(store, parent.id)) == 2
    hooks = [
        j for j in store.list_jobs(JobFilter(), limit=200).items if j.type == "webhook.deliver"
    ]
    events = {h.payload["event"]["job"]["id"]: h.payload["event"] for h in hooks}
    assert set(events) == {str(parent.id), str(hooked_dep.id), str(alone.id)}
    assert events[str(parent.id)]["job"]["result"] == "parent done"
    assert {e["type"] for e in events.values()} == {"job.succeeded"}


def test_a_child_payload_larger_than_the_api_takes_is_refused_at_submit(
    parents, enqueue, deliver, store: JobStore
) -> None:
    # The API refuses a payload over 256 KiB (413); a child had no bound at all, and a body
    # could create jobs of many megabytes that GET /v1/jobs/{id} and every list page holding
    # them could no longer answer within Lambda's 6 MB.
    large = enqueue("submits.large.child", {"characters": 300 * 1024})
    fits = enqueue("submits.large.child", {"characters": 200 * 1024})
    assert failures(deliver()) == []
    failed = store.get(large.id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 1)  # the same body again
    assert failed.last_error == (
        f"child job refused: payload is {300 * 1024 + 11} bytes; the limit is {256 * 1024}"
    )
    assert children_of(store, large.id) == []
    assert store.get(fits.id).status is JobStatus.SUCCEEDED
    assert len(children_of(store, fits.id)) == 1


def test_a_child_payload_nested_deeper_than_the_api_takes_is_refused_at_submit(
    parents, enqueue, deliver, store: JobStore
) -> None:
    # The API refuses a body nested deeper than 64 levels; such a child was created, and
    # GET /v1/jobs/{id} of it (and list pages holding it) answered 500.
    parent = enqueue("submits.nested.child")
    assert failures(deliver()) == []
    failed = store.get(parent.id)
    assert (failed.status, failed.last_error) == (
        JobStatus.FAILED,
        "child job refused: payload is nested deeper than 64 levels",
    )
    assert children_of(store, parent.id) == []


def test_children_whose_payloads_together_are_too_large_are_refused_at_submit(
    parents, enqueue, deliver, store: JobStore
) -> None:
    # Each child was held to 256 KiB, but not all of them together: 1,000 such children
    # were 256 MB in the worker's memory and in the one statement that creates them.
    parent = enqueue("submits.many.large.children", {"characters": 200 * 1024})
    assert failures(deliver()) == []
    failed = store.get(parent.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error is not None
    assert failed.last_error.startswith(
        "child job refused: the payloads of one attempt's children are at most 16777216 bytes"
    )
    assert children_of(store, parent.id) == []
