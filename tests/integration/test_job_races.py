"""Races between two real connections: the conditional statements decide the winner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import psycopg
from taskmill.db import Database
from taskmill.errors import DependencyFailed, Forbidden, IdempotencyMismatch, InvalidInput
from taskmill.jobs.model import JobStatus
from taskmill.jobs.retry import RetryDecision
from taskmill.jobs.store import AccountCheck, JobFilter, JobStore
from taskmill.users.store import RefreshTokenStore, UserStore

from tests.support.factories import create_job, make_user, new_job
from tests.support.locks import waits_for_a_lock

T = TypeVar("T")
S = TypeVar("S")


def race(
    database_url: str,
    action: Callable[[S], T],
    runners: int = 2,
    store: Callable[[Database], S] = JobStore,  # type: ignore[assignment]
) -> list[T]:
    """Run `action` at the same moment on separate connections, each given its own `store`
    (a `JobStore` unless said); return every result."""
    databases = [Database(database_url) for _ in range(runners)]
    for database in databases:
        database.connection()  # connect first so the barrier releases real statements
    barrier = threading.Barrier(runners)
    results: list[Any] = [None] * runners
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action(store(databases[index]))
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in databases:
        database.close()
    if errors:
        raise errors[0]
    return results


def test_two_claimers_of_one_job_exactly_one_wins(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    for _ in range(20):  # many rounds: a lucky interleaving must not hide a lost update
        job = create_job(store, owner)

        def claim(s: JobStore, job_id: Any = job.id) -> Any:
            return s.claim(job_id)

        results = race(database_url, claim)
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert store.get(job.id).attempts == 1
        assert [e["to_status"] for e in store.events(job.id)] == ["queued", "running"]


def test_idempotent_create_under_concurrency(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    for round_no in range(10):
        key = f"key-{round_no}"

        def create(s: JobStore, key: str = key) -> Any:
            return s.create(owner, new_job(idempotency_key=key), actor="t")

        results = race(database_url, create)
        assert results[0].job.id == results[1].job.id
        assert sorted(r.created for r in results) == [False, True]
    assert len(store.list_jobs(JobFilter(owner_id=owner), limit=100).items) == 10


def test_two_sweeps_release_each_scheduled_job_once(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    jobs = [
        create_job(store, owner, run_at=datetime.now(UTC) + timedelta(hours=1)) for _ in range(30)
    ]
    db.execute("UPDATE jobs SET run_at = now() WHERE status = 'scheduled'")
    results = race(database_url, lambda s: s.release_due_scheduled(limit=20))
    released = [job.id for batch in results for job in batch]
    assert len(released) == len(set(released)) == 30
    assert {j.id for j in jobs} == set(released)


def test_two_external_claimers_never_share_a_job(db: Database, database_url: str) -> None:
    store = JobStore(db)
    owner = make_user(db)
    for _ in range(12):
        create_job(store, owner, type="ext", external=True)
    results = race(database_url, lambda s: s.claim_external(types=None, limit=8, actor="w"))
    claimed = [job.id for batch in results for job in batch]
    assert len(claimed) == len(set(claimed)) == 12


def retried_dependency_and_cancelled_dependent(store: JobStore, owner: Any) -> tuple[Any, Any]:
    """A dependency that failed, was retried and is running again; its dependent, cancelled
    by the sweep when the dependency failed the first time. Returns (running dependency,
    cancelled dependent)."""
    dep = store.claim(create_job(store, owner).id)
    assert dep is not None
    assert dep.lease_token is not None
    child = create_job(store, owner, depends_on=[dep.id])
    store.fail(dep.id, dep.lease_token, "bad", RetryDecision(False, 0.0, "gave up"), resend=True)
    assert [j.id for j in store.cancel_waiting_on_failed(limit=10)] == [child.id]
    assert store.retry(dep.id, actor="owner") is not None
    again = store.claim(dep.id)
    assert again is not None
    return again, child


def retry_while_the_dependency_finishes(
    db: Database, database_url: str, dep: Any, child: Any, finish: Callable[[JobStore], Any]
) -> Any:
    """`finish` the running dependency on one connection and, before it commits, retry the
    dependent on another. Returns what the retry returned or raised."""
    finisher, retrier = Database(database_url), Database(database_url)
    pid = retrier.connection().info.backend_pid
    outcome: dict[str, Any] = {}

    def retry() -> None:
        try:
            outcome["job"] = JobStore(retrier).retry(child.id, actor="owner")
        except BaseException as exc:  # surfaced below
            outcome["error"] = exc

    thread = threading.Thread(target=retry)
    with finisher.transaction():
        finish(JobStore(finisher))
        thread.start()
        # The retry must wait for the dependency's row rather than decide on the state it
        # had before this transaction (no sleep: Postgres says when it waits).
        blocked = waits_for_a_lock(db, pid, thread)
    # Committed. The worker then releases the dependents of what it finished.
    JobStore(finisher).release_waiting(limit=10, job_ids=[dep.id])
    thread.join()
    finisher.close()
    retrier.close()
    assert blocked, "the retry did not wait for the dependency that was finishing"
    return outcome.get("error") or outcome.get("job")


def test_a_retry_racing_its_dependencys_success_is_queued_not_left_waiting(
    db: Database, database_url: str
) -> None:
    store = JobStore(db)
    dep, child = retried_dependency_and_cancelled_dependent(store, make_user(db))
    retried = retry_while_the_dependency_finishes(
        db, database_url, dep, child, lambda s: s.succeed(dep.id, dep.lease_token, None)
    )
    assert retried.status is JobStatus.QUEUED
    job = store.get(child.id)
    assert job.status is JobStatus.QUEUED
    assert job.send_pending  # on its way to its queue, not waiting for a release that ran


def test_a_retry_racing_its_dependencys_failure_is_refused(db: Database, database_url: str) -> None:
    store = JobStore(db)
    dep, child = retried_dependency_and_cancelled_dependent(store, make_user(db))
    refused = retry_while_the_dependency_finishes(
        db,
        database_url,
        dep,
        child,
        lambda s: s.fail(
            dep.id, dep.lease_token, "bad again", RetryDecision(False, 0.0, "gave up"), resend=True
        ),
    )
    assert isinstance(refused, DependencyFailed)
    assert refused.details == {"dependencies": [{"id": str(dep.id), "status": "failed"}]}
    assert store.get(child.id).status is JobStatus.CANCELLED


def test_two_keyed_batches_with_one_key_create_one_batch(db: Database, database_url: str) -> None:
    # Two different batches under one Idempotency-Key (job i keyed `<key>#i`): one is
    # created whole, the other is refused and leaves nothing behind, whichever comes first.
    owner = make_user(db)
    for round_no in range(10):
        key = f"batch-{round_no}"
        shapes = iter([(2, "first batch"), (3, "second batch")])

        def batch(
            database: Database, shapes: Any = shapes, key: str = key
        ) -> Callable[[], list[Any] | None]:
            size, request_hash = next(shapes)
            store = JobStore(database)
            specs = [
                new_job(idempotency_key=f"{key}#{i}", request_hash=request_hash)
                for i in range(size)
            ]

            def create() -> list[Any] | None:
                try:
                    return store.create_many(owner, specs, actor="t")
                except IdempotencyMismatch:
                    return None

            return create

        results = race(database_url, lambda create: create(), store=batch)
        [winner] = [r for r in results if r is not None]
        rows = db.execute("SELECT id FROM jobs WHERE idempotency_key LIKE %s", (f"{key}#%",))
        assert {row["id"] for row in rows} == {r.job.id for r in winner}, round_no


def test_a_keyed_repeat_racing_the_deletion_of_its_job_is_never_inserted_unchecked(
    db: Database, database_url: str
) -> None:
    """A repeat whose key is taken skips the dependency checks' errors (its answer is the
    original job). Its job deleted by another transaction between the repeat's snapshot and
    its ON CONFLICT, the row went in without any dependency check: here depending on another
    owner's job, whose result its body would then read."""
    store = JobStore(db)
    owner, other = make_user(db), make_user(db)
    victim = create_job(store, other)
    original = create_job(store, owner, idempotency_key="k")
    deleter = psycopg.connect(database_url)
    try:
        deleter.execute("DELETE FROM jobs WHERE id = %s", (original.id,))  # not committed yet
        outcome: list[Any] = []

        def repeat() -> None:
            try:
                outcome.append(
                    JobStore(Database(database_url)).create(
                        owner, new_job(idempotency_key="k", depends_on=[victim.id]), actor="t"
                    )
                )
            except InvalidInput as exc:
                outcome.append(exc)

        thread = threading.Thread(target=repeat)
        thread.start()
        # Before the fix the repeat's INSERT waited here on the deletion (a conflicting row
        # being deleted), then went in once it committed; now it is never tried.
        thread.join(timeout=1)
        deleter.commit()
        thread.join(timeout=30)
    finally:
        deleter.close()
    [result] = outcome
    # The original job as its snapshot saw it, or "try again": never a new job.
    if not isinstance(result, InvalidInput):
        assert (result.job.id, result.created) == (original.id, False)
    dependents = db.execute("SELECT id FROM jobs WHERE %s = ANY (depends_on)", (victim.id,))
    assert dependents == []
    assert store.get(victim.id).has_dependents is False


def test_an_external_workers_failure_racing_a_cancel_of_its_last_attempt_ends_cancelled(
    db: Database, database_url: str, job_queue: Any, job_registry: Any
) -> None:
    """The user's cancel commits while the worker's `/fail` of the job's last attempt waits
    for the row (the worker read the job before the cancel): the job ends `cancelled`, as
    it would had the cancel come first, never `failed`."""
    from taskmill.jobs.retry import JobFailure
    from taskmill.lifecycle.outcomes import Outcomes

    store = JobStore(db)
    job = create_job(store, make_user(db), type="render", external=True, max_attempts=1)
    [claimed] = store.claim_external(types=["render"], limit=1, actor="worker:w")
    canceller, reporter = Database(database_url), Database(database_url)
    pid = reporter.connection().info.backend_pid
    outcome: dict[str, Any] = {}

    def report() -> None:
        try:
            outcome["failure"] = Outcomes(JobStore(reporter), job_queue, job_registry).failed(
                claimed, JobFailure("stopped"), actor="worker:w"
            )
        except BaseException as exc:  # surfaced below
            outcome["error"] = exc

    thread = threading.Thread(target=report)
    try:
        with canceller.transaction():
            assert JobStore(canceller).cancel(job.id, actor="user:u") is not None
            thread.start()
            blocked = waits_for_a_lock(db, pid, thread)
        thread.join()
    finally:
        canceller.close()
        reporter.close()
    assert blocked, "the report did not wait for the cancel's lock"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["failure"].job.status is JobStatus.CANCELLED
    assert store.get(job.id).status is JobStatus.CANCELLED


def test_a_complete_and_its_repeat_at_once_both_answer_the_job_recorded_once(
    db: Database, database_url: str, job_queue: Any, job_registry: Any
) -> None:
    """A worker that retries its `/complete` while the first is still being recorded (its
    answer timed out on the worker's side): both answer the succeeded job, whichever
    connection wins, and the success is recorded once."""
    from taskmill.lifecycle.outcomes import Outcomes, Success, report_digest

    store = JobStore(db)
    owner = make_user(db)
    for _ in range(10):
        job = create_job(store, owner, type="render", external=True)
        [claimed] = store.claim_external(types=["render"], limit=1, actor="worker:w")
        assert claimed.lease_token is not None
        success = Success(job.id, claimed.lease_token, {"frames": 24})

        def complete(outcomes: Outcomes, success: Success = success) -> Any:
            report = report_digest("complete", success.lease_token, {"result": success.result})
            return outcomes.completed(success, report=report, actor="worker:w")

        results = race(
            database_url,
            complete,
            store=lambda d: Outcomes(JobStore(d), job_queue, job_registry),
        )
        assert [r.status if r else None for r in results] == [JobStatus.SUCCEEDED] * 2
        events = [e["to_status"] for e in store.events(job.id)]
        assert events == ["queued", "running", "succeeded"]


def test_a_workers_fail_racing_the_sweeps_recovery_of_its_lease_is_no_repeat(
    db: Database, database_url: str, job_queue: Any, job_registry: Any
) -> None:
    """The sweep ends an external attempt whose lease ran out while the worker's `/fail`
    waits for the row: the report finds the attempt ended by the sweep, not by itself, so it
    is not answered as a repeat (409), and the attempt is recorded once, as the sweep's."""
    from taskmill.jobs.retry import JobFailure
    from taskmill.lifecycle.outcomes import Outcomes, report_digest

    store = JobStore(db)
    job = create_job(store, make_user(db), type="render", external=True, max_attempts=1)
    [claimed] = store.claim_external(types=["render"], limit=1, actor="worker:w")
    assert claimed.lease_token is not None
    db.execute("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = %s", (job.id,))
    [expired] = store.expired_leases(limit=10)
    report = report_digest("fail", claimed.lease_token, {"error": "boom", "retryable": True})
    sweeper, reporter = Database(database_url), Database(database_url)
    pid = reporter.connection().info.backend_pid
    outcome: dict[str, Any] = {}

    def fail() -> None:
        try:
            outcome["failure"] = Outcomes(JobStore(reporter), job_queue, job_registry).failed(
                claimed,
                JobFailure("boom"),
                actor="worker:w",
                lease_token=claimed.lease_token,
                report=report,
            )
        except BaseException as exc:  # surfaced below
            outcome["error"] = exc

    thread = threading.Thread(target=fail)
    try:
        with sweeper.transaction():
            swept = Outcomes(JobStore(sweeper), job_queue, job_registry).lease_expired(expired)
            assert swept is not None
            thread.start()
            blocked = waits_for_a_lock(db, pid, thread)
        thread.join()
    finally:
        sweeper.close()
        reporter.close()
    assert blocked, "the report did not wait for the sweep's lock"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["failure"].job is None  # the route answers 409
    ended = store.get(job.id)
    assert ended.status is JobStatus.FAILED
    assert ended.last_error is not None
    assert ended.last_error.startswith("timed out")
    assert [e["to_status"] for e in store.events(job.id)] == ["queued", "running", "failed"]


def _worker_session(db: Database) -> tuple[UUID, AccountCheck]:
    """A worker account signed in once: the check its claims pass while it may claim."""
    worker = make_user(db, role="worker")
    session = uuid4()
    RefreshTokenStore(db).add(worker, uuid4().bytes, family_id=session, ttl_seconds=600)
    return worker, AccountCheck(session, ("worker", "admin"))


def _claiming(
    database: Database, worker: UUID, account: AccountCheck, outcome: dict[str, Any]
) -> threading.Thread:
    """A thread that claims a `render` job as `worker` on `database`: what it claimed goes
    into `outcome["claimed"]`, or what it raised into `outcome["error"]`."""

    def claim() -> None:
        try:
            outcome["claimed"] = JobStore(database).claim_external(
                types=["render"],
                limit=1,
                actor=f"worker:{worker}",
                claimant=worker,
                account=account,
            )
        except BaseException as exc:  # surfaced by the test
            outcome["error"] = exc

    return threading.Thread(target=claim)


def _disabling(
    admin: Database, worker: UUID, outcome: dict[str, Any], job_queue: Any, job_registry: Any
) -> threading.Thread:
    """A thread that does what an admin's disable of `worker` does, on `admin`: the disable,
    then the give-back of what the account holds (into `outcome["released"]`, or what it
    raised into `outcome["disable_error"]`)."""
    from taskmill.lifecycle.outcomes import Outcomes

    def disable() -> None:
        try:
            UserStore(admin).update(worker, disabled=True)
            outcome["released"] = Outcomes(
                JobStore(admin), job_queue, job_registry
            ).release_held_by(worker, "the account that claimed it was disabled", actor="admin:a")
        except BaseException as exc:  # surfaced by the test
            outcome["disable_error"] = exc

    return threading.Thread(target=disable)


def test_a_claim_waiting_for_an_account_an_admin_disables_claims_nothing(
    db: Database, database_url: str
) -> None:
    """The admin's disable commits while the worker's claim (its request already past the
    account check) waits for the account's row: the claim is refused as a request of a
    disabled account is, and the job stays queued for another worker."""
    store = JobStore(db)
    worker, account = _worker_session(db)
    job = create_job(store, make_user(db), type="render", external=True)
    admin, claimer = Database(database_url), Database(database_url)
    pid = claimer.connection().info.backend_pid
    outcome: dict[str, Any] = {}

    thread = _claiming(claimer, worker, account, outcome)
    try:
        with admin.transaction():
            UserStore(admin).update(worker, disabled=True)
            thread.start()
            blocked = waits_for_a_lock(db, pid, thread)
        thread.join()
    finally:
        admin.close()
        claimer.close()
    assert blocked, "the claim did not wait for the disable's lock on the account"
    assert isinstance(outcome.get("error"), Forbidden), outcome
    assert (store.get(job.id).status, store.get(job.id).attempts) == (JobStatus.QUEUED, 0)


def test_an_account_disabled_during_its_claim_gives_back_what_the_claim_took(
    db: Database, database_url: str, job_queue: Any, job_registry: Any
) -> None:
    """The worker's claim has read its account and waits (here for a limit's key) when an
    admin disables the account: the disable waits for the claim to commit, then gives back
    the job it took, instead of leaving it `running` under an account that can no longer
    report until the job's timeout runs out."""

    store = JobStore(db)
    worker, account = _worker_session(db)
    db.execute("INSERT INTO limits (key, concurrency) VALUES ('render-farm', 5)")
    job = create_job(store, make_user(db), type="render", external=True, limit_keys=["render-farm"])
    holder, claimer, admin = (Database(database_url) for _ in range(3))
    claimer_pid = claimer.connection().info.backend_pid
    admin_pid = admin.connection().info.backend_pid
    outcome: dict[str, Any] = {}

    claiming = _claiming(claimer, worker, account, outcome)
    disabling = _disabling(admin, worker, outcome, job_queue, job_registry)
    try:
        with holder.transaction():
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('render-farm', 0))")
            claiming.start()
            claim_waits = waits_for_a_lock(db, claimer_pid, claiming)
            disabling.start()
            disable_waits = waits_for_a_lock(db, admin_pid, disabling)
        claiming.join()
        disabling.join()
    finally:
        for database in (holder, claimer, admin):
            database.close()
    assert claim_waits, "the claim did not wait for the key's lock"
    assert disable_waits, "the disable did not wait for the claim holding the account"
    assert "error" not in outcome, outcome
    assert "disable_error" not in outcome, outcome
    assert [j.id for j in outcome["claimed"]] == [job.id]
    assert [j.id for j in outcome["released"]] == [job.id]
    after = store.get(job.id)
    assert (after.status, after.attempts) == (JobStatus.QUEUED, 0)
    assert [e["to_status"] for e in store.events(job.id)] == ["queued", "running", "queued"]


def test_a_claim_that_comes_while_a_disable_waits_does_not_overtake_it(
    db: Database, database_url: str, job_queue: Any, job_registry: Any
) -> None:
    """A fleet of workers sharing one account: the admin's disable waits for the claim under
    way, and a claim that comes after the disable began waiting must wait behind it and be
    refused, not slip in ahead. Were each later claim let ahead, a busy fleet, whose claims
    overlap one another, would keep the disable of a compromised worker waiting until its
    statement timeout (a 503, the account still enabled)."""

    store = JobStore(db)
    worker, account = _worker_session(db)
    db.execute("INSERT INTO limits (key, concurrency) VALUES ('render-farm', 5)")
    owner = make_user(db)
    # Five: the first claim's pick locks four (four times its limit, while limits exist).
    first, *_ = (
        create_job(store, owner, type="render", external=True, limit_keys=["render-farm"])
        for _ in range(5)
    )
    holder, claimer, later, admin = (Database(database_url) for _ in range(4))
    pids = [d.connection().info.backend_pid for d in (claimer, later, admin)]
    outcome: dict[str, Any] = {}
    second: dict[str, Any] = {}

    claiming = _claiming(claimer, worker, account, outcome)
    disabling = _disabling(admin, worker, outcome, job_queue, job_registry)
    claiming_later = _claiming(later, worker, account, second)
    try:
        with holder.transaction():
            # The first claim holds the account and waits for a limit's key.
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('render-farm', 0))")
            claiming.start()
            waits = [waits_for_a_lock(db, pids[0], claiming)]
            disabling.start()
            waits.append(waits_for_a_lock(db, pids[2], disabling))
            claiming_later.start()
            waits.append(waits_for_a_lock(db, pids[1], claiming_later))
        for thread in (claiming, disabling, claiming_later):
            thread.join()
    finally:
        for database in (holder, claimer, later, admin):
            database.close()
    assert waits == [True, True, True], (outcome, second)
    assert "disable_error" not in outcome, outcome
    assert [j.id for j in outcome["claimed"]] == [first.id]
    assert [j.id for j in outcome["released"]] == [first.id]
    assert isinstance(second.get("error"), Forbidden), second
    assert [r["status"] for r in db.execute("SELECT DISTINCT status FROM jobs")] == ["queued"]
