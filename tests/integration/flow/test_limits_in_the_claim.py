"""Limits and pauses enforced by the claim, on real Postgres (SPEC §6).

Races run on two real connections at once; rates run on a clock the test sets."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from taskmill.db import Database
from taskmill.flow.limits import LimitSpec, LimitStore
from taskmill.flow.pauses import PauseKind, PauseStore
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import Claim, JobStore

from tests.integration.test_job_races import race
from tests.support.factories import create_job, make_user

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db: Database) -> JobStore:
    return JobStore(db)


@pytest.fixture
def limits(db: Database) -> LimitStore:
    return LimitStore(db)


def set_limit(limits: LimitStore, key: str, **spec: object) -> None:
    limits.put(key, LimitSpec.model_validate(spec), actor="test")


def test_a_job_without_limits_is_claimed_in_one_statement(store: JobStore, db: Database) -> None:
    owner = make_user(db)
    job = create_job(store, owner)
    before = db.round_trips
    claim = store.claim_batch([job.id])
    assert [j.id for j in claim.claimed] == [job.id]
    assert claim.held == []
    assert not claim.limited
    assert db.round_trips - before == 1


def test_a_limited_batch_is_claimed_in_one_round_trip_of_two_statements(
    store: JobStore, limits: LimitStore, db: Database
) -> None:
    owner = make_user(db)
    set_limit(limits, "api:partner", concurrency=5)
    jobs = [create_job(store, owner, limit_keys=["api:partner"]) for _ in range(3)]
    before = db.round_trips
    claim = store.claim_batch([j.id for j in jobs], expect_limits=True)
    assert {j.id for j in claim.claimed} == {j.id for j in jobs}
    assert claim.limited
    assert db.round_trips - before == 1


def test_concurrency_holds_back_what_is_over_the_limit(
    store: JobStore, limits: LimitStore, db: Database
) -> None:
    owner = make_user(db)
    set_limit(limits, "api:partner", concurrency=2)
    jobs = [create_job(store, owner, limit_keys=["api:partner"]) for _ in range(5)]
    free = create_job(store, owner)  # holds no limited key: not held back by the others

    claim = store.claim_batch([j.id for j in [*jobs, free]])

    assert {j.id for j in claim.claimed} == {jobs[0].id, jobs[1].id, free.id}  # oldest first
    assert claim.limited
    assert {h.job.id for h in claim.held} == {j.id for j in jobs[2:]}
    assert {h.reason for h in claim.held} == {"concurrency"}
    assert {h.key for h in claim.held} == {"api:partner"}
    for held in jobs[2:]:
        after = store.get(held.id)
        assert after.status is JobStatus.QUEUED
        assert after.attempts == 0
    # A later batch while both still run: nothing more starts.
    assert store.claim_batch([j.id for j in jobs[2:]]).claimed == []
    # One finishes: one slot.
    first = store.get(jobs[0].id)
    assert first.lease_token is not None
    store.succeed(first.id, first.lease_token, None)
    again = store.claim_batch([j.id for j in jobs[2:]])
    assert [j.id for j in again.claimed] == [jobs[2].id]


def test_two_workers_never_run_more_than_the_concurrency(
    store: JobStore, limits: LimitStore, db: Database, database_url: str
) -> None:
    owner = make_user(db)
    set_limit(limits, "tenant:a", concurrency=1)
    for _ in range(15):  # many rounds: a lucky interleaving must not hide a race
        mine, theirs = (create_job(store, owner, limit_keys=["tenant:a"]) for _ in range(2))
        claims = race(database_url, _claimer([[mine.id], [theirs.id]]))
        claimed = [j.id for c in claims for j in c.claimed]
        assert len(claimed) == 1, claimed
        # Finish the winner so the next round starts from no running job.
        winner = store.get(claimed[0])
        assert winner.lease_token is not None
        store.succeed(winner.id, winner.lease_token, None)
        loser = theirs.id if claimed[0] == mine.id else mine.id
        store.delete(loser)


def _claimer(
    batches: list[list[UUID]], *, now: datetime | None = None
) -> Callable[[JobStore], Claim]:
    """Each racer claims its own batch (the racers are told apart by a counter)."""
    counter = itertools.count()
    lock = threading.Lock()

    def claim(s: JobStore) -> Claim:
        with lock:
            index = next(counter)
        return s.claim_batch(batches[index], now=now)

    return claim


def test_the_owner_default_shares_capacity_between_tenants(
    store: JobStore, db: Database, database_url: str
) -> None:
    alice, bob = make_user(db), make_user(db)
    alices = [create_job(store, alice) for _ in range(4)]
    bobs = [create_job(store, bob) for _ in range(2)]
    claim = store.claim_batch([j.id for j in [*alices, *bobs]], owner_concurrency=1)
    assert {j.id for j in claim.claimed} == {alices[0].id, bobs[0].id}
    assert {h.key for h in claim.held} == {f"owner:{alice}", f"owner:{bob}"}
    # A limit set on one owner's key replaces the default for that owner.
    LimitStore(db).put(f"owner:{alice}", LimitSpec(concurrency=3), actor="test")
    more = store.claim_batch([j.id for j in alices[1:]], owner_concurrency=1)
    assert {j.id for j in more.claimed} == {alices[1].id, alices[2].id}


def test_a_rate_is_a_token_bucket(store: JobStore, limits: LimitStore, db: Database) -> None:
    owner = make_user(db)
    set_limit(limits, "sms", rate={"limit": 2, "period_seconds": 10})
    db.execute("UPDATE limits SET refilled_at = %s WHERE key = 'sms'", (T0,))
    jobs = [create_job(store, owner, limit_keys=["sms"]) for _ in range(5)]
    ids = [j.id for j in jobs]

    first = store.claim_batch(ids, now=T0)
    assert [j.id for j in first.claimed] == ids[:2]  # the burst: a full bucket
    held = {h.job.id: h for h in first.held}
    assert held[ids[2]].reason == "rate"
    assert held[ids[2]].ahead == pytest.approx(1.0)  # one token short
    assert held[ids[2]].period == pytest.approx(5.0)  # seconds per token
    assert held[ids[3]].ahead == pytest.approx(2.0)

    rest = ids[2:]
    assert store.claim_batch(rest, now=T0 + timedelta(seconds=4.9)).claimed == []
    at_5 = store.claim_batch(rest, now=T0 + timedelta(seconds=5))
    assert [j.id for j in at_5.claimed] == [ids[2]]
    # Long idle: the bucket fills to its capacity, no further.
    later = store.claim_batch(ids[3:], now=T0 + timedelta(hours=1))
    assert [j.id for j in later.claimed] == ids[3:]
    extra = create_job(store, owner, limit_keys=["sms"])
    assert store.claim_batch([extra.id], now=T0 + timedelta(hours=1)).claimed == []


def test_two_workers_cannot_both_take_the_last_token(
    store: JobStore, limits: LimitStore, db: Database, database_url: str
) -> None:
    owner = make_user(db)
    set_limit(limits, "mail", rate={"limit": 1, "period_seconds": 3600})
    for round_ in range(10):
        db.execute(
            "UPDATE limits SET tokens = 1, refilled_at = %s WHERE key = 'mail'",
            (T0 + timedelta(hours=round_),),
        )
        a, b = (create_job(store, owner, limit_keys=["mail"]) for _ in range(2))
        now = T0 + timedelta(hours=round_, seconds=1)

        claims = race(database_url, _claimer([[a.id], [b.id]], now=now))
        claimed = [j.id for c in claims for j in c.claimed]
        assert len(claimed) == 1, f"round {round_}: {claimed}"
        for job in (a, b):
            current = store.get(job.id)
            if current.lease_token is not None:
                store.succeed(job.id, current.lease_token, None)
            else:
                store.delete(job.id)


def test_every_key_of_a_job_must_allow_it(
    store: JobStore, limits: LimitStore, db: Database
) -> None:
    owner = make_user(db)
    set_limit(limits, "a", concurrency=5)
    set_limit(limits, "b", concurrency=0)
    job = create_job(store, owner, limit_keys=["a", "b"])
    claim = store.claim_batch([job.id])
    assert claim.claimed == []
    assert [(h.reason, h.key) for h in claim.held] == [("concurrency", "b")]
    limits.delete("b")
    assert [j.id for j in store.claim_batch([job.id]).claimed] == [job.id]


def test_paused_queues_and_types_start_nothing(store: JobStore, db: Database) -> None:
    owner = make_user(db)
    pauses = PauseStore(db)
    normal = create_job(store, owner, priority="normal")
    high = create_job(store, owner, priority="high")
    sleeper = create_job(store, owner, priority="high", type="sleep", payload={"seconds": 0})
    pauses.pause(PauseKind.QUEUE, "normal", actor="test")
    pauses.pause(PauseKind.TYPE, "sleep", actor="test")

    claim = store.claim_batch([normal.id, high.id, sleeper.id])
    assert [j.id for j in claim.claimed] == [high.id]
    assert {(h.job.id, h.reason) for h in claim.held} == {
        (normal.id, "paused"),
        (sleeper.id, "paused"),
    }
    assert store.get(normal.id).attempts == 0

    assert pauses.resume(PauseKind.QUEUE, "normal")
    assert not pauses.resume(PauseKind.QUEUE, "normal")  # resuming twice changes nothing
    assert [j.id for j in store.claim_batch([normal.id, sleeper.id]).claimed] == [normal.id]


def test_external_claims_obey_limits(store: JobStore, limits: LimitStore, db: Database) -> None:
    owner = make_user(db)
    set_limit(limits, "gpu", concurrency=1)
    jobs = [
        create_job(store, owner, type="ext", external=True, limit_keys=["gpu"]) for _ in range(3)
    ]
    other = create_job(store, owner, type="ext", external=True)
    claimed = store.claim_external(types=None, limit=3, actor="w")
    # The first gpu job, and the job behind the held ones (not hidden by them).
    assert {j.id for j in claimed} == {jobs[0].id, other.id}
    assert store.claim_external(types=None, limit=3, actor="w") == []


@pytest.mark.parametrize("spec", [{"concurrency": 1}, {"rate": {"limit": 1, "period_seconds": 60}}])
def test_an_external_claim_under_a_limit_takes_the_highest_priority_first(
    store: JobStore, limits: LimitStore, db: Database, spec: dict[str, object]
) -> None:
    """The claim hands out the highest priority first; a limit that lets one job of its key
    start must not make it the oldest one instead (a `low` job ahead of a `high` one)."""
    owner = make_user(db)
    set_limit(limits, "gpu", **spec)
    low = create_job(store, owner, type="ext", external=True, limit_keys=["gpu"], priority="low")
    high = create_job(store, owner, type="ext", external=True, limit_keys=["gpu"], priority="high")
    claimed = store.claim_external(types=None, limit=1, actor="w")
    assert [j.id for j in claimed] == [high.id]
    assert store.get(low.id).status is JobStatus.QUEUED


@pytest.mark.parametrize("waiting", [4, 12])
def test_an_external_claim_is_not_blocked_by_older_jobs_at_their_limit(
    store: JobStore, limits: LimitStore, db: Database, waiting: int
) -> None:
    """A claim picked the oldest `4 * limit` jobs and admitted among those only: when that
    many older jobs were held back by a limit (one tenant's backlog at its owner
    concurrency), every other tenant's job behind them was never claimed, for as long as
    the backlog lasted: the starvation that limits are there to prevent."""
    busy, other = make_user(db), make_user(db)
    running = create_job(store, busy, type="ext", external=True)
    assert store.claim_external(types=None, limit=1, actor="w", owner_concurrency=1)
    backlog = [create_job(store, busy, type="ext", external=True) for _ in range(waiting)]
    theirs = create_job(store, other, type="ext", external=True)
    claimed = store.claim_external(types=None, limit=1, actor="w", owner_concurrency=1)
    assert [j.id for j in claimed] == [theirs.id]
    assert {store.get(j.id).status for j in backlog} == {JobStatus.QUEUED}
    assert store.get(running.id).status is JobStatus.RUNNING


def test_an_external_claim_is_not_blocked_by_older_jobs_out_of_tokens(
    store: JobStore, limits: LimitStore, db: Database
) -> None:
    owner = make_user(db)
    set_limit(limits, "api:slow", rate={"limit": 1, "period_seconds": 3600})
    first = create_job(store, owner, type="ext", external=True, limit_keys=["api:slow"])
    assert [j.id for j in store.claim_external(types=None, limit=1, actor="w")] == [first.id]
    for _ in range(4):
        create_job(store, owner, type="ext", external=True, limit_keys=["api:slow"])
    free = create_job(store, owner, type="ext", external=True)
    assert [j.id for j in store.claim_external(types=None, limit=1, actor="w")] == [free.id]


def test_held_jobs_are_not_taken_for_jobs_whose_message_is_lost(
    store: JobStore, limits: LimitStore, db: Database
) -> None:
    owner = make_user(db)
    set_limit(limits, "slow", concurrency=0)
    held = create_job(store, owner, limit_keys=["slow"])
    paused = create_job(store, owner, type="sleep", payload={"seconds": 0})
    lost = create_job(store, owner)
    PauseStore(db).pause(PauseKind.TYPE, "sleep", actor="test")
    store.mark_enqueued([held, paused, lost])
    # All three have waited longer than the sweep's threshold...
    db.execute(
        "UPDATE jobs SET queued_at = now() - interval '2 hours', "
        "updated_at = now() - interval '2 hours', run_at = now() - interval '2 hours'"
    )
    # ...but a worker just held two of them back: their messages are on their way back.
    claim = store.claim_batch([held.id, paused.id])
    assert {h.reason for h in claim.held} == {"concurrency", "paused"}

    requeued = store.requeue_stale(older_than_seconds=900, limit=10)
    assert [j.id for j in requeued] == [lost.id]
    # A paused job stays out of the check even when nothing held it lately.
    db.execute("UPDATE jobs SET updated_at = now() - interval '2 hours'")
    assert {j.id for j in store.requeue_stale(older_than_seconds=900, limit=10)} == {held.id}
