"""The job state machine in Postgres: every transition is one conditional statement.

Each statement checks the state it expects in its WHERE clause and writes its job events
in the same statement (a data-modifying CTE), so a transition and its history are never
apart and two callers racing on the same job cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from taskmill.db import Database
from taskmill.errors import (
    AttemptTimedOut,
    Conflict,
    DependencyFailed,
    IdempotencyMismatch,
    InvalidInput,
    NotFound,
    QuotaExceeded,
)
from taskmill.flow.holds import PAUSE_HOLD_SECONDS
from taskmill.flow.keys import owner_of_key
from taskmill.jobs.model import LAST_ERROR_MAX, Finished, Job, JobStatus, NewJob
from taskmill.jobs.retry import RetryDecision
from taskmill.paging import decode_cursor, encode_cursor
from taskmill.topology import SQS_MAX_DELAY_SECONDS
from taskmill.users.store import SESSION_ACCOUNT_SQL, SHARE_ACCOUNT_SQL, SessionAccount

# Seconds a lease outlives the job's timeout, so a worker finishing right at its timeout
# still reports before the recovery sweep steps in.
LEASE_SLACK_SECONDS = 30


def _unfinished_count(owner: LiteralString) -> LiteralString:
    """An owner's unfinished jobs (`owner`: an SQL expression): those waiting to run
    (jobs_owner_unfinished_idx) plus those running (few at any time: found through
    jobs_running_lease_idx). Counted in two parts so a claim, which only moves a job between
    them, writes no entry in the quota's index."""
    return (
        """(
    (SELECT count(*) FROM jobs
     WHERE owner_id = """
        + owner
        + """ AND status IN ('scheduled', 'waiting', 'queued'))
  + (SELECT count(*) FROM jobs WHERE status = 'running' AND owner_id = """
        + owner
        + "))"
    )


_UNFINISHED_COUNT_SQL = _unfinished_count("%(owner)s")


def _over_quota(unfinished: int, limit: int) -> QuotaExceeded:
    """What a create or a retry past the owner's unfinished-jobs quota raises (429)."""
    return QuotaExceeded(
        f"at most {limit} unfinished jobs are allowed per user",
        details={"unfinished": unfinished, "limit": limit},
    )


# Writes one compact job_events row per changed job: its new status, the actor, the attempt,
# and a detail only when there is one (the caller's, bound as `%(event_detail)s`, and the
# error of a transition that records one; a claim or a success repeats no earlier error).
# `%(actor)s` is bound by the caller.
_EVENTS = """
, events AS (
    INSERT INTO job_events (job_id, to_status, actor, attempt, detail)
    SELECT c.id, c.status, %(actor)s, c.attempts,
           NULLIF(%(event_detail)s::jsonb || CASE
               WHEN c.status IN ('running', 'succeeded') THEN '{}'::jsonb
               ELSE jsonb_strip_nulls(jsonb_build_object('error', c.last_error)) END,
               '{}'::jsonb)
    FROM changed c
)
"""
_WITH_EVENTS = _EVENTS + "SELECT * FROM changed\n"

# Whether a row being created (`p`) repeats a request that was taken: its idempotency key is
# already used. Its answer is the original job (or a mismatch), whatever happened since to
# the dependencies it names (failed, cancelled, deleted): their checks raise no error for
# it. They still keep it from being inserted: the key's job can be deleted between this
# statement's snapshot and its ON CONFLICT, and the row must not go in unchecked then. Only
# asked of rows whose checks failed (a keyed batch pays no lookup per row for it).
_KEY_TAKEN = """(p.idempotency_key IS NOT NULL
              AND EXISTS (SELECT 1 FROM jobs k WHERE k.owner_id = %(owner)s
                                                 AND k.idempotency_key = p.idempotency_key))"""

# Whether a running job's attempt has used its whole `timeout_seconds` (since its claim).
_TIME_UP = "now() >= started_at + make_interval(secs => timeout_seconds)"

# A claim: queued to running with a fresh lease (the job's timeout plus slack, or
# `%(lease)s` if shorter: a worker that renews it while the body runs). The attempt starts
# with no `external_ref`: an earlier attempt's ECS task (its handle stays on the row after a
# failure) must not find the new one, or a late or repeated stop event of that task would
# end this attempt before its own task is started.
_CLAIM_SET = """status = 'running', attempts = attempts + 1, lease_token = gen_random_uuid(),
           lease_until = now() + make_interval(secs => least(
               timeout_seconds + %(slack)s, coalesce(%(lease)s, timeout_seconds + %(slack)s))),
           started_at = now(), updated_at = now(), send_pending = false, progress = 0,
           progress_message = NULL, external_ref = NULL"""

# Whether a job's queue or type is paused (SPEC §6), for a job row `j`.
_PAUSED = """EXISTS (SELECT 1 FROM pauses p
                   WHERE (p.kind = 'queue' AND p.name = j.priority)
                      OR (p.kind = 'type' AND p.name = j.type))"""

# The keys a job row `j` holds: its own and its owner's.
_KEYS = "j.limit_keys || ('owner:' || j.owner_id::text)"

# A job held by a limit has its row say it was seen lately, so the sweep's stale-message
# check (`requeue_stale`) does not send it another message while its held one is on its
# way back (holds are shorter than `requeue_after_seconds`: see taskmill.flow.holds).
# Written at most every 30 s per job: a non-HOT update is not free. The fast claim needs
# none: it holds only paused jobs, which `requeue_stale` leaves alone.
_TOUCH_HELD = """
    UPDATE jobs SET updated_at = now() FROM held h
    WHERE jobs.id = h.id AND jobs.status = 'queued'
      AND jobs.updated_at < now() - interval '30 seconds'"""

# The claim rows of the SQS worker's claims: claimed jobs, then (as whole rows, for their
# messages) the jobs held back, each with why and by how much.
_CLAIM_TAIL = """
SELECT c.*, 'claimed' AS claim_state, NULL::text AS hold_key, NULL::float8 AS hold_ahead,
       NULL::float8 AS hold_period
FROM changed c
UNION ALL
SELECT j.*, NULL::text, h.state, h.key, h.ahead, h.period
FROM held h JOIN jobs j ON j.id = h.id
"""

# A job row `j` whose `run_at` is still ahead: a message of it came early, because
# `PATCH /v1/jobs/{id}` moved `run_at` later after it was sent (SQS cannot take a message
# back). Held until `run_at` (`not_due`, with the seconds left as its `ahead`).
_NOT_DUE = "j.run_at > now()"
_SECONDS_TO_RUN_AT = "extract(epoch FROM j.run_at - now())::float8"

# A job row `j` delivered from the queue of its priority (`%(queues)s`: the priority of
# the queue each of `%(ids)s` came from, in the same order; NULL: no queue, an external
# claim or a caller that does not say). `PATCH /v1/jobs/{id}` may change the priority after
# the message was sent; it sends one on the new queue, and SQS cannot take back the old one,
# which is then acknowledged as a duplicate. Checked in each claim's UPDATE too, against the
# row it locks, so a change committed while the claim waited for that lock is seen.
_ON_ITS_QUEUE = """(%(queues)s::text[] IS NULL
       OR j.priority = (%(queues)s::text[])[array_position(%(ids)s::uuid[], j.id)])"""
_ON_ITS_QUEUE_UPDATED = """(%(queues)s::text[] IS NULL
       OR jobs.priority = (%(queues)s::text[])[array_position(%(ids)s::uuid[], jobs.id)])"""

# Paused jobs `cand` holds (`paused`) that get a new, delayed message: those whose held
# message (if any) is due back by now or within half a hold. The others were delivered
# another of their messages while that one is on its way back (a resume re-sent them, then
# a pause came back): they are neither claimed nor held, so the worker acknowledges the
# delivery as a duplicate and the job keeps one held message, not one more per cycle. No job
# is left without a message so: `held_until` ahead means the held one is still in SQS's delay
# (or, if the worker could not send it, the delivery it did not delete comes back after the
# visibility timeout, past `held_until`, and is held again).
_REHOLD = """
, rehold AS (
    UPDATE jobs SET held_until = now() + make_interval(secs => %(pause_hold)s)
    FROM cand
    WHERE jobs.id = cand.id AND cand.paused AND jobs.status = 'queued'
      AND (jobs.held_until IS NULL
           OR jobs.held_until < now() + make_interval(secs => %(pause_hold)s / 2))
    RETURNING jobs.id
)"""

# The claim when no limit applies (the common case): one statement. Jobs of a paused
# queue or type, or not due yet, are held back; jobs under a limit are left queued as
# `unadmitted`, for the admission claim (`_ADMISSION_LOCKS` then `_ADMISSION_CLAIM`).
_FAST_CLAIM = (
    """
WITH cand AS MATERIALIZED (
    SELECT j.id, """
    + _PAUSED
    + """ AS paused, """
    + _NOT_DUE
    + """ AS early, """
    + _SECONDS_TO_RUN_AT
    + """ AS due_in,
           %(owner_default)s::int IS NOT NULL
           OR EXISTS (SELECT 1 FROM limits l WHERE l.key = ANY ("""
    + _KEYS
    + """)) AS limited
    FROM jobs j
    WHERE j.id = ANY (%(ids)s) AND j.status = 'queued' AND NOT j.cancel_requested
      AND NOT j.external AND """
    + _ON_ITS_QUEUE
    + """
), changed AS (
    UPDATE jobs SET """
    + _CLAIM_SET
    + """
    FROM cand
    WHERE jobs.id = cand.id AND NOT cand.paused AND NOT cand.early AND NOT cand.limited
      AND jobs.status = 'queued' AND """
    + _ON_ITS_QUEUE_UPDATED
    + """
    RETURNING jobs.*, 'queued'::text AS from_status
)"""
    + _REHOLD
    + """
, held AS (
    SELECT id, CASE WHEN paused THEN 'paused' WHEN early THEN 'not_due'
                    ELSE 'unadmitted' END AS state,
           NULL::text AS key, CASE WHEN early AND NOT paused THEN due_in END AS ahead,
           NULL::float8 AS period
    FROM cand
    WHERE (paused AND id IN (SELECT id FROM rehold)) OR (NOT paused AND (early OR limited))
)"""
    + _EVENTS
    + _CLAIM_TAIL
)

# Admission, first statement: lock every limited key of the batch (transaction-scoped
# advisory locks, taken in one order so two claimers cannot deadlock). Whoever claims jobs
# holding a key holds its lock until commit, so the next statement of this transaction,
# which starts after the locks are granted, sees every earlier claim of those keys.
_ADMISSION_LOCKS = (
    """
SELECT count(pg_advisory_xact_lock(h)) AS locked FROM (
    SELECT DISTINCT hashtextextended(k.key, 0) AS h
    FROM jobs j CROSS JOIN LATERAL unnest("""
    + _KEYS
    + """) AS k(key)
    WHERE j.id = ANY (%(ids)s) AND j.status = 'queued'
      AND ((%(owner_default)s::int IS NOT NULL AND k.key = 'owner:' || j.owner_id::text)
           OR EXISTS (SELECT 1 FROM limits l WHERE l.key = k.key))
    ORDER BY h OFFSET 0
) AS keys"""
)

# A candidate row `c`'s priority as a rank: high first.
_PRIORITY_RANK = "CASE c.priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END"

# Admission, second statement: claim what every limit allows. Per limited key, the batch's
# jobs are ranked highest priority, then oldest, first (`place`, the order jobs are admitted
# in: a limit that lets one job of a key start lets the first, never a `low` one ahead of a
# `high` one an external claim picked with it); a job is admitted if, for each of its keys,
# running + place <= concurrency and place <= the tokens in the key's bucket. A job refused
# by one key still takes its place under its other keys, so a batch may admit fewer than it
# could, never more. Tokens are taken in the same statement.
_ADMISSION_CLAIM = (
    """
WITH clock AS MATERIALIZED (
    SELECT coalesce(%(now)s::timestamptz, clock_timestamp()) AS now
), cand AS MATERIALIZED (
    SELECT j.id, j.created_at, j.owner_id, j.priority, """
    + _KEYS
    + """ AS keys, """
    + _PAUSED
    + """ AS paused, """
    + _NOT_DUE
    + """ AS early, """
    + _SECONDS_TO_RUN_AT
    + """ AS due_in
    FROM jobs j
    WHERE j.id = ANY (%(ids)s) AND j.status = 'queued' AND NOT j.cancel_requested
      AND j.external = %(external)s AND """
    + _ON_ITS_QUEUE
    + """
), limited AS MATERIALIZED (
    SELECT c.id, k.key,
           coalesce(l.concurrency,
                    CASE WHEN l.key IS NULL THEN %(owner_default)s::int END) AS concurrency,
           l.rate_limit, l.rate_period_seconds,
           least(l.rate_limit::float8, l.tokens + greatest(0, extract(epoch FROM
               (SELECT now FROM clock) - l.refilled_at)) * l.rate_limit / l.rate_period_seconds)
               AS tokens_now,
           row_number() OVER (PARTITION BY k.key ORDER BY """
    + _PRIORITY_RANK
    + """, c.created_at, c.id) AS place
    FROM cand c CROSS JOIN LATERAL unnest(c.keys) AS k(key)
    LEFT JOIN limits l ON l.key = k.key
    WHERE NOT c.paused AND NOT c.early
      AND (l.key IS NOT NULL
           OR (%(owner_default)s::int IS NOT NULL AND k.key = 'owner:' || c.owner_id::text))
), running AS (
    SELECT k.key, count(*) AS n
    FROM jobs j CROSS JOIN LATERAL unnest("""
    + _KEYS
    + """) AS k(key)
    WHERE j.status = 'running'
      AND k.key IN (SELECT key FROM limited WHERE concurrency IS NOT NULL)
    GROUP BY k.key
), over AS (
    SELECT x.* FROM (
        SELECT lk.id, lk.key,
               CASE WHEN lk.concurrency IS NOT NULL
                         AND coalesce(r.n, 0) + lk.place > lk.concurrency THEN 'concurrency'
                    WHEN lk.rate_limit IS NOT NULL
                         AND lk.place > floor(lk.tokens_now + 1e-9) THEN 'rate'
               END AS reason,
               lk.concurrency, coalesce(r.n, 0) AS running, lk.place, lk.tokens_now,
               lk.rate_period_seconds / lk.rate_limit AS period
        FROM limited lk LEFT JOIN running r ON r.key = lk.key
    ) x WHERE x.reason IS NOT NULL
)"""
    + _REHOLD
    + """
, held AS (
    SELECT id, 'paused' AS state, NULL::text AS key, NULL::float8 AS ahead,
           NULL::float8 AS period
    FROM cand WHERE paused AND id IN (SELECT id FROM rehold)
    UNION ALL
    SELECT id, 'not_due', NULL::text, due_in, NULL::float8
    FROM cand WHERE early AND NOT paused
    UNION ALL
    (SELECT DISTINCT ON (id) id, reason, key,
           CASE reason
               WHEN 'concurrency' THEN
                   (running + place - concurrency)::float8 / greatest(concurrency, 1)
               ELSE place - tokens_now END,
           period
    FROM over
    ORDER BY id, CASE WHEN reason = 'rate' THEN (place - tokens_now) * period
                      ELSE 1 + (running + place - concurrency)::float8 END DESC)
), changed AS (
    UPDATE jobs SET """
    + _CLAIM_SET
    + """
    FROM (SELECT c.id FROM cand c
          WHERE NOT c.paused AND NOT c.early
            AND NOT EXISTS (SELECT 1 FROM over o WHERE o.id = c.id)
          ORDER BY """
    + _PRIORITY_RANK
    + """, c.created_at
          LIMIT %(max_claims)s) AS admitted
    WHERE jobs.id = admitted.id AND jobs.status = 'queued' AND """
    + _ON_ITS_QUEUE_UPDATED
    + """
    RETURNING jobs.*, 'queued'::text AS from_status
), taken AS (
    UPDATE limits l SET tokens = t.tokens_now - t.n,
                        refilled_at = greatest(l.refilled_at, (SELECT now FROM clock))
    FROM (SELECT lk.key, min(lk.tokens_now) AS tokens_now, count(*) AS n
          FROM limited lk JOIN changed c ON c.id = lk.id
          WHERE lk.rate_limit IS NOT NULL GROUP BY lk.key) t
    WHERE l.key = t.key
), touched AS ("""
    + _TOUCH_HELD
    + """
)"""
    + _EVENTS
    + _CLAIM_TAIL
)


# Where a running job would go back to wait for another attempt (`queued`, or `scheduled`
# for a long retry delay), one whose cancellation was asked for is `cancelled` instead: claims
# skip such a job, so it would wait there for ever, unfinished. In SET, `cancel_requested` is
# the row as locked, so a cancel committed just before counts.
_AGAIN_STATUS: LiteralString = "(CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END)"
# The same for a failed attempt, whose `%(status)s` is `failed` when no attempt is left: a
# job asked to cancel ends `cancelled` if it had attempts left, and on its last attempt when
# it is `external` (see `Outcomes.failed`), else `failed`. Read from the row the statement
# updates, so a cancel committed just before the report is seen.
_RETRY_STATUS: LiteralString = (
    "(CASE WHEN cancel_requested AND (%(status)s <> 'failed' OR external) "
    "THEN 'cancelled' ELSE %(status)s END)"
)


def _transition(update: LiteralString, *, picked: LiteralString | None = None) -> LiteralString:
    """Wrap an UPDATE ... RETURNING with its job events. `picked` is an optional
    `SELECT id ... FOR UPDATE SKIP LOCKED` the update joins as `picked`; it is materialised
    once, because as an `IN (subquery)` Postgres may re-run it and update past its LIMIT."""
    head: LiteralString = "WITH "
    if picked is not None:
        head = "WITH picked AS MATERIALIZED (" + picked + "), "
    return head + "changed AS (" + update + ")" + _WITH_EVENTS


@dataclass(frozen=True)
class Hold:
    """A queued job a claim left queued: its queue or type is `paused`, its `run_at` is
    still ahead (`not_due`), or one of its keys is at its `concurrency` or `rate` limit.
    `ahead`: for a concurrency limit, the jobs ahead of it past the limit per slot; for a
    rate, the tokens it lacks; for `not_due`, the seconds until `run_at`. `period`: a
    rate's seconds per token."""

    job: Job
    reason: str
    key: str | None = None
    ahead: float | None = None
    period: float | None = None


@dataclass(frozen=True)
class Claim:
    claimed: list[Job]
    held: list[Hold]
    # Whether a limit applied to a job of the batch (the admission claim ran).
    limited: bool = False


@dataclass(frozen=True)
class CreateResult:
    job: Job
    created: bool


@dataclass(frozen=True)
class AccountCheck:
    """Create only while the owner may: its account enabled, with one of `roles`, and its
    session `session_id` not ended. Checked inside the creating statement, so the API's
    create keeps its two round trips; the job events then name the account's current role."""

    session_id: UUID
    roles: tuple[str, ...]


@dataclass(frozen=True)
class JobFilter:
    owner_id: UUID | None = None  # None: every owner (admin)
    status: JobStatus | None = None
    type: str | None = None
    priority: str | None = None
    tag: str | None = None
    parent_id: UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[Job]
    next_cursor: str | None


def _jobs(rows: Iterable[dict[str, Any]]) -> list[Job]:
    return [Job.model_validate(row) for row in rows]


def _claim_rows(rows: Iterable[dict[str, Any]]) -> tuple[list[Job], list[Hold]]:
    claimed: list[Job] = []
    held: list[Hold] = []
    for row in rows:
        job = Job.model_validate(row)
        if row["claim_state"] == "claimed":
            claimed.append(job)
        else:
            held.append(
                Hold(
                    job, row["claim_state"], row["hold_key"], row["hold_ahead"], row["hold_period"]
                )
            )
    return claimed, held


# The account id in an actor written as "role:id" (the API's callers); NULL for the platform's
# own actors ("worker", "schedule:<id>", ...). CASE, not AND, so the cast never sees another form.
_ACCOUNT_ACTOR_ID: LiteralString = (
    "CASE WHEN e.actor ~ '^(admin|user|worker):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
    "[0-9a-f]{4}-[0-9a-f]{12}$' THEN split_part(e.actor, ':', 2)::uuid END"
)


def _params(actor: str, detail: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
    return {"actor": actor, "event_detail": Jsonb(detail or {}), **values}


def _succeed(returning: LiteralString, *, reported: bool = False) -> LiteralString:
    """Successful attempts (`%(data)s`: id, lease token and result each) to `succeeded`, with
    their events; `returning` names the columns wanted back (the events need id, status,
    attempts and last_error). `reported`: an external worker's `/complete`, whose digest
    (`report` in `%(data)s`) is kept for a repeat (`JobStore.complete_reported`); the
    statement of every other success is the same without it."""
    report_set: LiteralString = ", report_digest = o.report" if reported else ""
    report_column: LiteralString = ", report uuid" if reported else ""
    return _transition(
        """
    UPDATE jobs j SET status = 'succeeded', result = o.result, progress = 100,
           finished_at = now(), updated_at = now(), lease_until = NULL, lease_token = NULL,
           last_error = NULL, webhook_pending = j.webhook_url IS NOT NULL"""
        + report_set
        + """
    FROM jsonb_to_recordset(%(data)s::jsonb) AS o(id uuid, token uuid, result jsonb"""
        + report_column
        + """)
    WHERE j.id = o.id AND j.lease_token = o.token AND j.status = 'running'
    RETURNING """
        + returning
    )


_REPORTED_SUCCESS = _succeed("j.*", reported=True)


# The worker's batch success: `Finished` rows, whole ones only where a webhook is due.
_BATCH_SUCCESS = _succeed(
    "j.id, j.status, j.attempts, j.last_error, j.has_dependents, j.webhook_pending, "
    "CASE WHEN j.webhook_pending THEN to_jsonb(j) END AS whole"
)


def _succeed_params(outcomes: Sequence[tuple[UUID, UUID, Any]], actor: str) -> dict[str, Any]:
    data = [
        {"id": str(job_id), "token": str(token), "result": result}
        for job_id, token, result in outcomes
    ]
    return _params(actor, data=Jsonb(data))


def _within_time(rows: list[dict[str, Any]]) -> Job | None:
    """The job an external worker's report (heartbeat, progress) returned with `time_up`:
    None if the lease was not held, `AttemptTimedOut` once the attempt's time is up."""
    if not rows:
        return None
    row = rows[0]
    if row["time_up"]:
        raise AttemptTimedOut(
            f"the attempt's time is up: the job's timeout is {row['timeout_seconds']} s "
            "from its claim; stop, and complete or fail it now if it is done",
            details={
                "started_at": row["started_at"].isoformat(),
                "timeout_seconds": row["timeout_seconds"],
            },
        )
    return Job.model_validate(row)


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- create ---------------------------------------------------------------------

    def create_many(
        self,
        owner_id: UUID,
        specs: Sequence[NewJob],
        *,
        actor: str,
        unfinished_limit: int | None = None,
        account: AccountCheck | None = None,
        idempotency_ttl_seconds: float | None = None,
    ) -> list[CreateResult]:
        """Create jobs in one statement: the owner's account (given `account`), quota,
        dependency ownership, idempotency and the job events are all checked and written
        together.

        A job may depend on one created before it in the same call (`depends_on` naming an
        earlier spec's preset `id`: children submitted by one body); it is then `waiting`.
        A job is `waiting` while a dependency is unfinished, `scheduled` while its `run_at`
        is further away than SQS can delay a message, else `queued` with its "to be sent"
        mark set (external jobs are claimed over the API and are never sent).

        An `idempotency_key` already used by the owner returns that job, unless the stored
        request fingerprint differs (`IdempotencyMismatch`) or the key is older than
        `idempotency_ttl_seconds` (then it is forgotten and the job created anew).

        A client's keyed batch is all or nothing: a mismatch found once the statement has
        created the batch's new keys (a longer batch, or another batch racing for the key)
        must take them back, so it runs in a transaction. Single creates and the platform's
        own keyed submissions (no fingerprint) cannot mismatch after creating and keep to
        single statements.
        """
        keyed_batch = len(specs) > 1 and any(spec.request_hash for spec in specs)
        with self._db.transaction() if keyed_batch else nullcontext():
            return self._create_many(
                owner_id,
                specs,
                actor=actor,
                unfinished_limit=unfinished_limit,
                account=account,
                idempotency_ttl_seconds=idempotency_ttl_seconds,
            )

    def _create_many(
        self,
        owner_id: UUID,
        specs: Sequence[NewJob],
        *,
        actor: str,
        unfinished_limit: int | None,
        account: AccountCheck | None,
        idempotency_ttl_seconds: float | None,
    ) -> list[CreateResult]:
        if not specs:
            return []
        ids = [spec.id or uuid4() for spec in specs]
        rows = [
            {
                "ord": index,
                "id": str(job_id),
                **spec.model_dump(
                    mode="json",
                    exclude={"id", "depends_on", "tags", "request_hash", "earlier_request_hashes"},
                ),
                "idempotency_hash": spec.request_hash,
                "depends_on": [str(dep) for dep in spec.depends_on],
                "tags": spec.tags,
            }
            for index, (job_id, spec) in enumerate(zip(ids, specs, strict=True))
        ]
        summary = self._db.execute(
            f"""
WITH account AS ({SESSION_ACCOUNT_SQL}
), allowed AS (
    SELECT %(session)s::uuid IS NULL
           OR EXISTS (SELECT 1 FROM account
                      WHERE session_live AND NOT disabled
                        AND (cardinality(%(roles)s::text[]) = 0
                             OR role = ANY (%(roles)s::text[])))
               AS ok,
           coalesce((SELECT role || ':' || id FROM account WHERE %(session)s::uuid IS NOT NULL),
                    %(actor)s) AS actor
), input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
        ord int, id uuid, type text, payload jsonb, priority text, external boolean,
        max_attempts int, timeout_seconds int, backoff_base_seconds float8,
        backoff_max_seconds float8, run_at timestamptz, idempotency_key text,
        idempotency_hash text, depends_on jsonb, webhook_url text, name text,
        description text, tags jsonb, correlation_id text, limit_keys jsonb, parent_id uuid)
), prepared AS (
    SELECT i.*,
           ARRAY(SELECT jsonb_array_elements_text(i.depends_on))::uuid[] AS deps,
           ARRAY(SELECT jsonb_array_elements_text(i.tags)) AS tag_list,
           ARRAY(SELECT jsonb_array_elements_text(coalesce(i.limit_keys, '[]'::jsonb)))
               AS key_list,
           coalesce(i.run_at, now()) AS due
    FROM input i
), checked AS (
    SELECT p.*,
           EXISTS (SELECT 1 FROM unnest(p.deps) AS dep(id)
                   WHERE NOT EXISTS (SELECT 1 FROM jobs d
                                     WHERE d.id = dep.id AND d.owner_id = %(owner)s)
                     AND NOT EXISTS (SELECT 1 FROM prepared e
                                     WHERE e.id = dep.id AND e.ord < p.ord))
               AS bad_deps,
           -- Depended on by a job of this same call (which cannot mark it afterwards); an
           -- uncorrelated IN is hashed once, so a large call stays linear.
           p.id IN (SELECT unnest(e.deps) FROM prepared e) AS sibling_dependents,
           CASE
               WHEN EXISTS (SELECT 1 FROM jobs d
                            WHERE d.id = ANY (p.deps) AND d.status <> 'succeeded')
                   THEN 'waiting'
               WHEN EXISTS (SELECT 1 FROM unnest(p.deps) AS dep(id)
                            JOIN prepared e ON e.id = dep.id)
                   THEN 'waiting'
               WHEN p.due > now() + make_interval(secs => %(max_delay)s) THEN 'scheduled'
               ELSE 'queued'
           END AS initial_status
    FROM prepared p
), dead AS (
    -- Dependencies that failed or were cancelled: the job could never run.
    SELECT DISTINCT p.ord, {_KEY_TAKEN} AS key_taken, d.id, d.status
    FROM prepared p JOIN jobs d ON d.id = ANY (p.deps)
    WHERE d.owner_id = %(owner)s AND d.status IN ('failed', 'cancelled')
), quota AS (
    SELECT {_UNFINISHED_COUNT_SQL} AS unfinished
), changed AS (
    INSERT INTO jobs (id, owner_id, type, payload, priority, status, external, max_attempts,
                      timeout_seconds, backoff_base_seconds, backoff_max_seconds, run_at,
                      idempotency_key, idempotency_hash, depends_on, webhook_url, name,
                      description, tags, correlation_id, send_pending, queued_at, limit_keys,
                      parent_id, has_dependents)
    SELECT c.id, %(owner)s, c.type, c.payload, c.priority, c.initial_status, c.external,
           c.max_attempts, c.timeout_seconds, c.backoff_base_seconds, c.backoff_max_seconds,
           c.due, c.idempotency_key, c.idempotency_hash, c.deps, c.webhook_url, c.name,
           c.description,
           c.tag_list, c.correlation_id,
           c.initial_status = 'queued' AND NOT c.external,
           CASE WHEN c.initial_status = 'queued' THEN now() END,
           c.key_list, c.parent_id, c.sibling_dependents
    FROM checked c
    WHERE (SELECT ok FROM allowed)
      AND NOT EXISTS (SELECT 1 FROM checked p WHERE p.bad_deps AND NOT {_KEY_TAKEN})
      AND NOT EXISTS (SELECT 1 FROM dead WHERE NOT key_taken)
      AND NOT c.bad_deps AND NOT EXISTS (SELECT 1 FROM dead x WHERE x.ord = c.ord)
      AND (%(limit)s::int IS NULL
           OR (SELECT unfinished FROM quota) + (SELECT count(*) FROM checked) <= %(limit)s)
    ORDER BY c.ord
    ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING jobs.*, NULL::text AS from_status
), parents AS (
    UPDATE jobs SET has_dependents = true
    WHERE id IN (SELECT unnest(c.depends_on) FROM changed c) AND NOT has_dependents
      AND owner_id = %(owner)s
), events AS (
    INSERT INTO job_events (job_id, to_status, actor)
    SELECT c.id, c.status, (SELECT actor FROM allowed) FROM changed c
)
SELECT (SELECT to_jsonb(a) FROM account a) AS account,
       (SELECT unfinished FROM quota) AS unfinished,
       ARRAY(SELECT ord FROM checked p WHERE p.bad_deps AND NOT {_KEY_TAKEN} ORDER BY ord)
           AS bad_dep_rows,
       ARRAY(SELECT DISTINCT ord FROM dead WHERE NOT key_taken ORDER BY ord) AS dead_dep_rows,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'status', status) ORDER BY id),
                        '[]'::jsonb)
        FROM (SELECT DISTINCT id, status FROM dead WHERE NOT key_taken) named) AS dead_deps,
       (SELECT coalesce(jsonb_agg(to_jsonb(c) - 'from_status'), '[]'::jsonb) FROM changed c)
           AS created
""",
            {
                "rows": Jsonb(rows),
                "owner": owner_id,
                "limit": unfinished_limit,
                "actor": actor,
                "max_delay": SQS_MAX_DELAY_SECONDS,
                "caller": owner_id,
                "session": account.session_id if account else None,
                "roles": list(account.roles) if account else [],
            },
        )[0]
        if account is not None:
            # The statement created nothing unless the account passed the same test.
            found = summary["account"]
            SessionAccount.require(
                SessionAccount.model_validate(found) if found else None, *account.roles
            )
        if summary["bad_dep_rows"]:
            raise InvalidInput(
                "depends_on names a job that does not exist or is not yours",
                details={"rows": summary["bad_dep_rows"]},
            )
        if summary["dead_deps"]:
            named = ", ".join(f"{dep['id']} ({dep['status']})" for dep in summary["dead_deps"])
            raise DependencyFailed(
                f"depends_on names a job that has failed or was cancelled, so this one could "
                f"never run: {named}; retry the dependency first",
                details={"dependencies": summary["dead_deps"], "rows": summary["dead_dep_rows"]},
            )
        created = {job.id: job for job in _jobs(summary["created"])}
        results: list[CreateResult | None] = [
            CreateResult(created[job_id], True) if job_id in created else None for job_id in ids
        ]
        missing_keys = [
            spec.idempotency_key
            for spec, result in zip(specs, results, strict=True)
            if result is None and spec.idempotency_key is not None
        ]
        existing: dict[str, tuple[Job, bool]] = {}
        if missing_keys:
            existing = {
                str(row["idempotency_key"]): (Job.model_validate(row), bool(row["expired"]))
                for row in self._db.execute(
                    "SELECT *, %s::float8 IS NOT NULL "
                    "AND created_at < now() - make_interval(secs => %s) AS expired "
                    "FROM jobs WHERE owner_id = %s AND idempotency_key = ANY (%s)",
                    (idempotency_ttl_seconds, idempotency_ttl_seconds, owner_id, missing_keys),
                )
            }
        final: list[CreateResult | None] = []
        expired: list[int] = []
        for index, (spec, result) in enumerate(zip(specs, results, strict=True)):
            if result is None and spec.idempotency_key in existing:
                job, stale = existing[spec.idempotency_key]
                if stale:
                    expired.append(index)
                elif spec.request_hash and job.idempotency_hash not in (
                    None,
                    spec.request_hash,
                    *spec.earlier_request_hashes,
                ):
                    raise IdempotencyMismatch(
                        "this Idempotency-Key was used with a different request",
                        details={"idempotency_key": spec.idempotency_key, "job_id": str(job.id)},
                    )
                else:
                    result = CreateResult(job, False)
            elif result is None:
                if unfinished_limit is not None and (
                    summary["unfinished"] + len(specs) > unfinished_limit
                ):
                    raise _over_quota(summary["unfinished"], unfinished_limit)
                # The conflicting row was deleted between the two statements.
                raise InvalidInput("the job could not be created; try again")
            final.append(result)
        if expired:
            # Past the retention window the key is forgotten: the old job keeps running or
            # stays in the history, without the key, and the request is a new one.
            self._db.execute(
                "UPDATE jobs SET idempotency_key = NULL WHERE owner_id = %s "
                "AND idempotency_key = ANY (%s) AND created_at < now() - make_interval(secs => %s)",
                (owner_id, [specs[i].idempotency_key for i in expired], idempotency_ttl_seconds),
            )
            again = self._create_many(
                owner_id,
                [specs[i] for i in expired],
                actor=actor,
                unfinished_limit=unfinished_limit,
                account=account,
                idempotency_ttl_seconds=idempotency_ttl_seconds,
            )
            for index, result in zip(expired, again, strict=True):
                final[index] = result
        return [result for result in final if result is not None]

    def create(
        self, owner_id: UUID, spec: NewJob, *, actor: str, unfinished_limit: int | None = None
    ) -> CreateResult:
        return self.create_many(owner_id, [spec], actor=actor, unfinished_limit=unfinished_limit)[0]

    def mark_enqueued(self, sent: Sequence[Job]) -> int:
        """Clear the "to be sent" mark after SQS accepted the messages of `sent` (as they
        were sent: each on its priority's queue). A job whose priority changed meanwhile
        keeps its mark: the claim refuses a message from its old queue, so it is still owed
        one on its new queue (the change's own send, or the sweep's)."""
        if not sent:
            return 0
        rows = self._db.execute(
            """
UPDATE jobs j SET send_pending = false
FROM unnest(%s::uuid[], %s::text[]) AS s(id, priority)
WHERE j.id = s.id AND j.priority = s.priority AND j.send_pending
RETURNING j.id""",
            ([job.id for job in sent], [job.priority.value for job in sent]),
        )
        return len(rows)

    # ---- read -----------------------------------------------------------------------

    def get(self, job_id: UUID) -> Job:
        rows = self._db.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
        if not rows:
            raise NotFound("job not found")
        return Job.model_validate(rows[0])

    def get_many(self, job_ids: Sequence[UUID]) -> list[Job]:
        return _jobs(self._db.execute("SELECT * FROM jobs WHERE id = ANY (%s)", (list(job_ids),)))

    def results_of(self, job_ids: Sequence[UUID], *, owner_id: UUID) -> dict[str, Any]:
        """The results of those of `job_ids` that succeeded, keyed by job id (a string)."""
        if not job_ids:
            return {}
        rows = self._db.execute(
            "SELECT id, result FROM jobs WHERE id = ANY (%s) AND owner_id = %s "
            "AND status = 'succeeded'",
            (list(job_ids), owner_id),
        )
        return {str(row["id"]): row["result"] for row in rows}

    def list_jobs(self, filters: JobFilter, *, limit: int = 50, cursor: str | None = None) -> Page:
        clauses: list[LiteralString] = []
        params: dict[str, Any] = {"limit": limit + 1}
        conditions: list[tuple[LiteralString, str, Any]] = [
            ("owner_id = %(owner_id)s", "owner_id", filters.owner_id),
            ("status = %(status)s", "status", filters.status),
            ("type = %(type)s", "type", filters.type),
            ("priority = %(priority)s", "priority", filters.priority),
            # `tags <> '{}'` lets the planner use the partial index over tagged jobs.
            ("tags @> ARRAY[%(tag)s]::text[] AND tags <> '{}'", "tag", filters.tag),
            ("parent_id = %(parent_id)s", "parent_id", filters.parent_id),
            ("created_at >= %(created_after)s", "created_after", filters.created_after),
            ("created_at < %(created_before)s", "created_before", filters.created_before),
        ]
        for clause, name, value in conditions:
            if value is not None:
                clauses.append(clause)
                params[name] = value
        if cursor:
            params["cursor_at"], params["cursor_id"] = decode_cursor(cursor)
            clauses.append("(created_at, id) < (%(cursor_at)s, %(cursor_id)s)")
        where: LiteralString = " AND ".join(clauses) if clauses else "true"
        # The newest-first indexes leave running jobs out (a claim then writes no entry in
        # them): those few come from the lease index, and the two parts are merged.
        order: LiteralString = " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        parts: list[LiteralString] = []
        if filters.status is None or filters.status is not JobStatus.RUNNING:
            parts.append("SELECT * FROM jobs WHERE " + where + " AND status <> 'running'" + order)
        if filters.status is None or filters.status is JobStatus.RUNNING:
            parts.append("SELECT * FROM jobs WHERE " + where + " AND status = 'running'" + order)
        query: LiteralString = parts[0]
        if len(parts) == 2:
            query = "SELECT * FROM ((" + parts[0] + ") UNION ALL (" + parts[1] + ")) page" + order
        rows = self._db.execute(query, params)
        items = _jobs(rows[:limit])
        next_cursor = (
            encode_cursor(items[-1].created_at, items[-1].id)
            if len(rows) > limit and items
            else None
        )
        return Page(items, next_cursor)

    def events(
        self, job_id: UUID, *, skip: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """A job's transitions, oldest first: those after the first `skip` (a page's cursor;
        0, the whole history), at most `limit`. Each has its acting account's current e-mail
        (`actor_email`) when the actor is an account (`role:id`) that still exists.
        `from_status` is the status of the event before it, also for the first of a page.

        A job's transitions are written under its row lock, each in the statement that
        changes the row, so its event ids grow in the order they commit and an event's
        position never moves (events are deleted only with their job): a page read after
        another transition neither skips nor repeats one. Skipping walks the
        `(job_id, id)` index, a few milliseconds at tens of thousands of events."""
        return self._db.execute(
            "SELECT e.at, lag(e.to_status, 1, CASE WHEN %(skip)s::bigint > 0 THEN "
            "(SELECT b.to_status FROM job_events b WHERE b.job_id = %(job)s "
            "ORDER BY b.id OFFSET %(skip)s::bigint - 1 LIMIT 1) END) "
            "OVER (ORDER BY e.id) AS from_status, e.to_status, "
            "e.actor, u.email AS actor_email, "
            "coalesce(e.detail, '{}'::jsonb) || CASE WHEN e.attempt IS NULL THEN '{}'::jsonb "
            "ELSE jsonb_build_object('attempt', e.attempt) END AS detail "
            "FROM (SELECT * FROM job_events WHERE job_id = %(job)s "
            "ORDER BY id OFFSET %(skip)s::bigint LIMIT %(limit)s) e "
            "LEFT JOIN users u ON u.id = " + _ACCOUNT_ACTOR_ID + " ORDER BY e.id",
            {"job": job_id, "skip": skip, "limit": limit},
        )

    def count_unfinished(self, owner_id: UUID) -> int:
        rows = self._db.execute(
            "SELECT " + _UNFINISHED_COUNT_SQL + " AS n",
            {"owner": owner_id},
        )
        return int(rows[0]["n"])

    # ---- run ------------------------------------------------------------------------

    def claim_many(
        self, job_ids: Sequence[UUID], *, actor: str = "worker", lease_seconds: float | None = None
    ) -> list[Job]:
        """Move `queued` jobs to `running` with a fresh lease, as `claim_batch` does; only the
        claimed jobs are returned."""
        return self.claim_batch(job_ids, actor=actor, lease_seconds=lease_seconds).claimed

    def claim_batch(
        self,
        job_ids: Sequence[UUID],
        *,
        actor: str = "worker",
        lease_seconds: float | None = None,
        owner_concurrency: int | None = None,
        expect_limits: bool = False,
        now: datetime | None = None,
        queues: Sequence[str] | None = None,
    ) -> Claim:
        """Claim the `queued` jobs among `job_ids` that no pause or limit holds back.

        Jobs that are running, finished or cancelled (a duplicate or late delivery) are
        neither claimed nor held. `queues`: the priority of the queue each id's message came
        from; a job whose priority is no longer that one (changed after the message was
        sent: a message on its new queue was sent too) is neither claimed nor held either.
        `owner_concurrency`: the environment's default limit for every `owner:` key.
        Without limits on the batch's keys this is one statement; with them, one transaction
        of two (`_ADMISSION_LOCKS`, `_ADMISSION_CLAIM`) sent in one round trip.
        `expect_limits` goes straight to the admission claim (the last batch had limits).
        `now` is the time the rate buckets are read at (tests); default the database's."""
        if not job_ids:
            return Claim([], [])
        params = _params(
            actor,
            ids=list(job_ids),
            slack=LEASE_SLACK_SECONDS,
            lease=lease_seconds,
            owner_default=owner_concurrency,
            now=now,
            external=False,
            max_claims=None,
            queues=list(queues) if queues is not None else None,
            pause_hold=PAUSE_HOLD_SECONDS,
        )
        if queues is not None and len(params["queues"]) != len(params["ids"]):
            raise ValueError("queues must name the queue of each job id")
        if not expect_limits and owner_concurrency is None:
            claimed, held = _claim_rows(self._db.execute(_FAST_CLAIM, params))
            unadmitted = [hold.job.id for hold in held if hold.reason == "unadmitted"]
            if not unadmitted:
                return Claim(claimed, held)
            held = [hold for hold in held if hold.reason != "unadmitted"]
            if queues is not None:  # each id's queue stays at the id's position
                queue_of = dict(zip(params["ids"], params["queues"], strict=True))
                params["queues"] = [queue_of[job_id] for job_id in unadmitted]
            params["ids"] = unadmitted
            more = self._admit(params)
            return Claim(claimed + more.claimed, held + more.held, limited=more.limited)
        return self._admit(params)

    def _admit(self, params: dict[str, Any]) -> Claim:
        # One transaction and one round trip: the claim runs once the locks are granted and
        # they are held until both statements commit together.
        locks, rows = self._db.pipelined([(_ADMISSION_LOCKS, params), (_ADMISSION_CLAIM, params)])
        claimed, held = _claim_rows(rows)
        return Claim(claimed, held, limited=bool(locks[0]["locked"]))

    def claim(self, job_id: UUID, *, actor: str = "worker") -> Job | None:
        claimed = self.claim_many([job_id], actor=actor)
        return claimed[0] if claimed else None

    def claim_external(
        self,
        *,
        types: Sequence[str] | None,
        limit: int,
        actor: str,
        claimant: UUID | None = None,
        account: AccountCheck | None = None,
        owner_concurrency: int | None = None,
        now: datetime | None = None,
    ) -> list[Job]:
        """Claim up to `limit` queued external jobs that no pause or limit holds back,
        highest priority and oldest first; concurrent claimers skip each other's rows
        instead of waiting. Candidates are picked, then admitted as the SQS worker's are.
        While limits exist, the pick leaves out jobs holding a key that is full already (at
        its concurrency, or its rate out of tokens: none of them could start), and takes
        four times `limit`, so jobs held back by a limit do not hide the ones behind them
        (one tenant's backlog at its owner concurrency would otherwise fill every pick and
        starve the others). Which keys are full is read without their locks: the admission
        counts again under them, so a stale read costs a claim that admits less, never one
        over a limit.

        `claimant`, with `account`: the account claiming, checked again under the account's
        lock (a fresh request's `Unauthorized` or `Forbidden` if it may no longer claim). An
        admin who disables, deletes or demotes it meanwhile waits for this claim to commit,
        then finds the jobs it took to give back; or commits first, and nothing is claimed."""
        if (claimant is None) != (account is None):
            raise ValueError("claimant and account are given together")
        with self._db.transaction() as tx:
            if claimant is not None and account is not None:
                tx.execute(SHARE_ACCOUNT_SQL, {"caller": claimant})
                rows = tx.execute(
                    SESSION_ACCOUNT_SQL, {"caller": claimant, "session": account.session_id}
                )
                now_as = SessionAccount.model_validate(rows[0]) if rows else None
                SessionAccount.require(now_as, *account.roles)
            picked = tx.execute(
                """
WITH limited AS MATERIALIZED (
    SELECT %(owner_default)s::int IS NOT NULL OR EXISTS (SELECT 1 FROM limits) AS applies
), keys_running AS MATERIALIZED (
    SELECT k.key, count(*) AS n
    FROM jobs j CROSS JOIN LATERAL unnest("""
                + _KEYS
                + """) AS k(key)
    WHERE j.status = 'running' AND (SELECT applies FROM limited)
    GROUP BY k.key
), full_keys AS MATERIALIZED (
    SELECT l.key FROM limits l LEFT JOIN keys_running r ON r.key = l.key
    WHERE (l.concurrency IS NOT NULL AND coalesce(r.n, 0) >= l.concurrency)
       OR (l.rate_limit IS NOT NULL
           AND l.tokens + greatest(0, extract(epoch FROM
                   coalesce(%(now)s::timestamptz, clock_timestamp()) - l.refilled_at))
               * l.rate_limit / l.rate_period_seconds < 1 - 1e-9)
    UNION ALL
    SELECT r.key FROM keys_running r
    WHERE %(owner_default)s::int IS NOT NULL AND starts_with(r.key, 'owner:')
      AND r.n >= %(owner_default)s::int
      AND NOT EXISTS (SELECT 1 FROM limits l WHERE l.key = r.key)
)
SELECT j.id FROM jobs j
WHERE j.external AND j.status = 'queued' AND j.run_at <= now() AND NOT j.cancel_requested
  AND (%(types)s::text[] IS NULL OR j.type = ANY (%(types)s::text[]))
  AND NOT """
                + _PAUSED
                + """
  AND NOT ("""
                + _KEYS
                + """) && ARRAY(SELECT key FROM full_keys)
ORDER BY CASE j.priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, j.created_at
LIMIT CASE WHEN (SELECT applies FROM limited) THEN %(limit)s * 4 ELSE %(limit)s END
FOR UPDATE OF j SKIP LOCKED""",
                {
                    "types": list(types) if types else None,
                    "limit": limit,
                    "owner_default": owner_concurrency,
                    "now": now,
                },
            )
            if not picked:
                return []
            params = _params(
                actor,
                ids=[row["id"] for row in picked],
                slack=LEASE_SLACK_SECONDS,
                lease=None,
                owner_default=owner_concurrency,
                now=now,
                external=True,
                max_claims=limit,
                queues=None,
                pause_hold=PAUSE_HOLD_SECONDS,
            )
            tx.execute(_ADMISSION_LOCKS, params)
            claimed, _held = _claim_rows(tx.execute(_ADMISSION_CLAIM, params))
        return claimed

    def extend_leases(self, leases: Sequence[tuple[UUID, UUID]], *, seconds: float) -> int:
        """Renew the leases a worker still holds (job id, lease token) to now + `seconds`,
        in one statement; leases it lost meanwhile are left alone, and so are those of jobs
        that continue elsewhere (`external_ref`): their lease is the job's timeout, set when
        their task started, which a worker's short renewal must not cut."""
        if not leases:
            return 0
        data = [{"id": str(job_id), "token": str(token)} for job_id, token in leases]
        rows = self._db.execute(
            """
UPDATE jobs j SET lease_until = now() + make_interval(secs => %(seconds)s)
FROM jsonb_to_recordset(%(data)s::jsonb) AS l(id uuid, token uuid)
WHERE j.id = l.id AND j.lease_token = l.token AND j.status = 'running'
  AND j.external_ref IS NULL
RETURNING j.id""",
            {"data": Jsonb(data), "seconds": seconds},
        )
        return len(rows)

    def heartbeat(self, job_id: UUID, lease_token: UUID) -> Job | None:
        """An external worker's sign of life: the lease runs to the end of the attempt's
        time (`started_at` + `timeout_seconds` + slack), never past it: the job's timeout
        bounds an attempt however long its worker keeps beating. None if the caller no
        longer holds the lease; `AttemptTimedOut` (nothing changes) once the timeout has
        passed: the worker should stop; the sweep ends the attempt as a timeout when the
        lease runs out, unless the worker reports first."""
        rows = self._db.execute(
            """
UPDATE jobs SET lease_until = started_at + make_interval(secs => timeout_seconds + %(slack)s),
       updated_at = CASE WHEN """
            + _TIME_UP
            + """ THEN updated_at ELSE now() END
WHERE id = %(id)s AND lease_token = %(token)s AND status = 'running'
RETURNING *, """
            + _TIME_UP
            + " AS time_up",
            {"slack": LEASE_SLACK_SECONDS, "id": job_id, "token": lease_token},
        )
        return _within_time(rows)

    def set_progress(
        self, job_id: UUID, lease_token: UUID, percent: int, message: str | None
    ) -> Job | None:
        """A running body's progress (the worker's `JobContext.progress`). None if the lease
        is no longer held."""
        rows = self._db.execute(
            "UPDATE jobs SET progress = %s, progress_message = %s, updated_at = now() "
            "WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING *",
            (percent, message, job_id, lease_token),
        )
        return Job.model_validate(rows[0]) if rows else None

    def report_progress(
        self, job_id: UUID, lease_token: UUID, percent: int, message: str | None
    ) -> Job | None:
        """An external worker's progress report (`POST /v1/jobs/{id}/progress`). None if
        the caller no longer holds the lease; `AttemptTimedOut`, with nothing recorded,
        once the attempt's timeout has passed, as for a heartbeat: a worker that reports
        progress as its sign of life learns to stop the same way."""
        rows = self._db.execute(
            """
UPDATE jobs SET progress = CASE WHEN """
            + _TIME_UP
            + """ THEN progress ELSE %(percent)s END,
       progress_message = CASE WHEN """
            + _TIME_UP
            + """ THEN progress_message ELSE %(message)s END,
       updated_at = CASE WHEN """
            + _TIME_UP
            + """ THEN updated_at ELSE now() END
WHERE id = %(id)s AND lease_token = %(token)s AND status = 'running'
RETURNING *, """
            + _TIME_UP
            + " AS time_up",
            {"percent": percent, "message": message, "id": job_id, "token": lease_token},
        )
        return _within_time(rows)

    def succeed_many(
        self, outcomes: Sequence[tuple[UUID, UUID, Any]], *, actor: str = "worker"
    ) -> list[Job]:
        """Record successful attempts: (job id, lease token, result) each, in one statement.
        An outcome whose lease is no longer held (recovered meanwhile) is not applied."""
        if not outcomes:
            return []
        return _jobs(self._db.execute(_succeed("j.*"), _succeed_params(outcomes, actor)))

    def complete_reported(
        self, job_id: UUID, lease_token: UUID, result: Any, report: UUID, *, actor: str
    ) -> Job | None:
        """An external worker's `/complete`: `succeed` that also keeps the report's digest,
        so a repeat of it finds the job (`reported`). None if the lease is not held."""
        data = [
            {"id": str(job_id), "token": str(lease_token), "result": result, "report": str(report)}
        ]
        rows = self._db.execute(_REPORTED_SUCCESS, _params(actor, data=Jsonb(data)))
        return Job.model_validate(rows[0]) if rows else None

    def reported(self, job_id: UUID, report: UUID) -> Job | None:
        """The job whose attempt ended with the report `report` digests (see
        `Outcomes.report_digest`), as it is now; None if another report or the sweep ended
        it, or the job was set going again since (claimed, retried, redriven)."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE id = %s AND report_digest = %s AND status <> 'running'",
            (job_id, report),
        )
        return Job.model_validate(rows[0]) if rows else None

    def succeed_batch(
        self, outcomes: Sequence[tuple[UUID, UUID, Any]], *, actor: str = "worker"
    ) -> list[Job | Finished]:
        """`succeed_many` for the worker's batches: the same statement, returning only what
        follow-ups need (`Finished`) instead of whole rows, except for the jobs whose
        completion webhook is due: their whole row (the webhook describes it) comes back from
        the statement itself, because a read afterwards would miss a job its owner deleted
        meanwhile (it is finished, so it may be) and its webhook would never be sent."""
        if not outcomes:
            return []
        rows = self._db.execute(_BATCH_SUCCESS, _succeed_params(outcomes, actor))
        return [
            Job.model_validate(row["whole"])
            if row["whole"] is not None
            else Finished(
                row["id"], JobStatus(row["status"]), row["has_dependents"], row["webhook_pending"]
            )
            for row in rows
        ]

    def succeed_with_children(
        self,
        job_id: UUID,
        lease_token: UUID,
        result: Any,
        children: Sequence[NewJob],
        *,
        owner_id: UUID,
        actor: str = "worker",
        unfinished_limit: int | None = None,
    ) -> tuple[Job, list[Job]] | None:
        """Record one successful attempt and create the child jobs its body submitted, in
        one transaction: both or neither. None, with nothing written, when the lease is no
        longer held (the attempt's children die with it). A child that cannot be created
        (over the owner's quota, a dependency that is gone or not the owner's) raises, and
        the success is rolled back with it."""
        # The container has one connection: between this BEGIN and COMMIT, every statement
        # of the store runs inside the transaction, and an error rolls all of them back.
        with self._db.transaction():
            done = self.succeed_many([(job_id, lease_token, result)], actor=actor)
            if not done:
                return None
            created = self.create_many(
                owner_id, children, actor=actor, unfinished_limit=unfinished_limit
            )
        return done[0], [c.job for c in created]

    def succeed(
        self, job_id: UUID, lease_token: UUID, result: Any, *, actor: str = "worker"
    ) -> Job | None:
        done = self.succeed_many([(job_id, lease_token, result)], actor=actor)
        return done[0] if done else None

    def fail(
        self,
        job_id: UUID,
        lease_token: UUID,
        error: str,
        decision: RetryDecision,
        *,
        resend: bool,
        actor: str = "worker",
        report: UUID | None = None,
    ) -> Job | None:
        """Record a failed attempt as the retry decision says.

        - retry within SQS's delay range: back to `queued`; `resend` says whether a new
          message must be sent (else the caller lets the current message reappear after
          the delay, e.g. through its visibility timeout); external jobs never get one;
        - retry further away: `scheduled` at now + delay, released by the recovery sweep;
        - no retry: `failed`, with `last_error` kept.

        A job asked to cancel ends `cancelled` instead of being retried; an external one
        also instead of `failed`. `report`: the digest of the external worker's `/fail` that
        ends the attempt, kept for a repeat of it (`reported`); None for every other end,
        which so forgets the last attempt's.
        """
        if not decision.retry:
            status, pending = JobStatus.FAILED, False
        elif decision.held_in_database:
            status, pending = JobStatus.SCHEDULED, False
        else:
            status, pending = JobStatus.QUEUED, resend
        rows = _jobs(
            self._db.execute(
                _transition(
                    """
    UPDATE jobs SET status = """
                    + _RETRY_STATUS
                    + """, last_error = %(error)s, lease_until = NULL,
           lease_token = NULL, report_digest = %(report)s, updated_at = now(),
           run_at = now() + make_interval(secs => %(delay)s),
           send_pending = %(pending)s AND NOT external AND NOT cancel_requested,
           queued_at = CASE WHEN %(status)s = 'queued' THEN now() ELSE queued_at END,
           finished_at = CASE WHEN """
                    + _RETRY_STATUS
                    + """ IN ('failed', 'cancelled') THEN now() END,
           webhook_pending = """
                    + _RETRY_STATUS
                    + """ = 'failed' AND webhook_url IS NOT NULL
    WHERE id = %(id)s AND lease_token = %(token)s AND status = 'running'
    RETURNING jobs.*, 'running'::text AS from_status"""
                ),
                _params(
                    actor,
                    {"reason": decision.reason, "delay_seconds": round(decision.delay_seconds, 3)},
                    status=status.value,
                    error=error[:LAST_ERROR_MAX],
                    delay=decision.delay_seconds,
                    pending=pending,
                    id=job_id,
                    token=lease_token,
                    report=report,
                ),
            )
        )
        return rows[0] if rows else None

    def held_by(self, actors: Sequence[str]) -> list[Job]:
        """Running external jobs whose current attempt was claimed by one of `actors` (an
        account's `role:id`): a claim's event names who took the lease."""
        rows = self._db.execute(
            """
SELECT j.* FROM jobs j
WHERE j.status = 'running' AND j.external AND j.lease_token IS NOT NULL
  AND (SELECT e.actor FROM job_events e
       WHERE e.job_id = j.id AND e.to_status = 'running'
       ORDER BY e.id DESC LIMIT 1) = ANY (%(actors)s)""",
            {"actors": list(actors)},
        )
        return [Job.model_validate(row) for row in rows]

    def release(
        self,
        job_id: UUID,
        lease_token: UUID,
        reason: str,
        *,
        actor: str = "worker",
        counted: bool = True,
    ) -> Job | None:
        """Give a claimed job back without counting the attempt (the worker ran out of time
        before the job could finish, through no fault of the job). The refund is counted in
        `lost_leases`, as a lost lease's is: past a few, the worker counts the attempt. A job
        whose body never started (`counted=False`) used none of its time and is not counted."""
        rows = self._db.execute(
            _transition(
                """
    UPDATE jobs SET status = """
                + _AGAIN_STATUS
                + """, attempts = greatest(attempts - 1, 0),
           lost_leases = lost_leases + %(counted)s::int,
           lease_until = NULL, lease_token = NULL, updated_at = now(), queued_at = now(),
           send_pending = false, external_ref = NULL,
           finished_at = CASE WHEN cancel_requested THEN now() END
    WHERE id = %(id)s AND lease_token = %(token)s AND status = 'running'
    RETURNING jobs.*, 'running'::text AS from_status"""
            ),
            _params(actor, {"released": reason}, id=job_id, token=lease_token, counted=counted),
        )
        return Job.model_validate(rows[0]) if rows else None

    def set_external_ref(self, job_id: UUID, lease_token: UUID, ref: str) -> Job | None:
        """Record the handle of work running elsewhere (an ECS task ARN)."""
        # The work now runs outside the worker, which no longer renews the lease: it lasts
        # the job's whole timeout.
        rows = self._db.execute(
            "UPDATE jobs SET external_ref = %s, updated_at = now(), "
            "lease_until = now() + make_interval(secs => timeout_seconds + %s) "
            "WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING *",
            (ref, LEASE_SLACK_SECONDS, job_id, lease_token),
        )
        return Job.model_validate(rows[0]) if rows else None

    def cancelled_elsewhere(self, *, limit: int) -> list[str]:
        """The `external_ref` (an ECS task) of each running job that continues elsewhere and
        was asked to cancel: its task is to be stopped, since its body will not poll
        `cancelled()` any more."""
        rows = self._db.execute(
            "SELECT external_ref FROM jobs WHERE status = 'running' AND cancel_requested "
            "AND external_ref IS NOT NULL ORDER BY updated_at LIMIT %s",
            (limit,),
        )
        return [row["external_ref"] for row in rows]

    def running_by_external_ref(self, ref: str) -> Job | None:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE external_ref = %s AND status = 'running'", (ref,)
        )
        return Job.model_validate(rows[0]) if rows else None

    # ---- operator and owner actions -------------------------------------------------

    def cancel(self, job_id: UUID, *, actor: str, reason: str | None = None) -> Job | None:
        """Cancel a job that has not started; ask a running one to stop (it sees
        `cancelled()` become true). None if the job is already finished."""
        rows = self._db.execute(
            _transition("""
    UPDATE jobs j SET
        status = CASE WHEN old.status = 'running' THEN 'running' ELSE 'cancelled' END,
        cancel_requested = true, send_pending = false, updated_at = now(),
        finished_at = CASE WHEN old.status = 'running' THEN NULL ELSE now() END,
        last_error = CASE WHEN old.status = 'running' THEN j.last_error
                          ELSE coalesce(%(reason)s, j.last_error) END
    FROM (SELECT id, status FROM jobs WHERE id = %(id)s FOR UPDATE) old
    WHERE j.id = old.id AND j.status IN ('scheduled', 'waiting', 'queued', 'running')
      AND NOT (j.status = 'running' AND j.cancel_requested)
    RETURNING j.*, old.status AS from_status"""),
            _params(actor, {"reason": reason} if reason else None, id=job_id, reason=reason),
        )
        return Job.model_validate(rows[0]) if rows else None

    def acknowledge_cancel(
        self, job_id: UUID, lease_token: UUID, *, actor: str = "worker"
    ) -> Job | None:
        """A running job stopped because it was asked to: it ends `cancelled`."""
        rows = self._db.execute(
            _transition("""
    UPDATE jobs SET status = 'cancelled', lease_until = NULL, lease_token = NULL,
           finished_at = now(), updated_at = now()
    WHERE id = %(id)s AND lease_token = %(token)s AND status = 'running' AND cancel_requested
    RETURNING jobs.*, 'running'::text AS from_status"""),
            _params(actor, id=job_id, token=lease_token),
        )
        return Job.model_validate(rows[0]) if rows else None

    def retry(self, job_id: UUID, *, actor: str, unfinished_limit: int | None = None) -> Job | None:
        """Re-run a `failed` or `cancelled` job with a fresh attempt budget. None if it is in
        another state, or while its completion webhook is still to be created (its event is
        the finished state): create it first (`Outcomes.retry` does).

        The job re-enters where a create would put it: `queued` when all its dependencies
        succeeded, `waiting` while one is unfinished (it is released when they succeed).
        While a dependency is failed, cancelled or deleted the job could never run:
        `DependencyFailed` names them, and nothing changes. Like a create, it counts against
        its owner's unfinished jobs: past `unfinished_limit` it raises `QuotaExceeded` and
        nothing changes.

        One statement, the quota checked inside it as a create checks it. The dependencies
        are share-locked, so one finishing at this very moment is read as it ends: a success
        that commits meanwhile makes the job `queued` (its release, which looks for `waiting`
        jobs, may already have run), a failure refuses the retry."""
        rows = self._db.execute(
            """
WITH target AS MATERIALIZED (
    SELECT id, owner_id, status, depends_on, webhook_pending FROM jobs
    WHERE id = %(id)s FOR UPDATE
), quota AS (
    SELECT """
            + _unfinished_count("(SELECT owner_id FROM target)")
            + """ AS unfinished
), deps AS MATERIALIZED (
    SELECT d.id, d.status FROM jobs d
    WHERE d.id = ANY ((SELECT depends_on FROM target)::uuid[])
    ORDER BY d.id FOR SHARE
), blocking AS (
    SELECT dep.id, coalesce(d.status, 'deleted') AS status
    FROM target t CROSS JOIN LATERAL unnest(t.depends_on) AS dep(id)
    LEFT JOIN deps d ON d.id = dep.id
    WHERE d.id IS NULL OR d.status IN ('failed', 'cancelled')
), next AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM deps WHERE status <> 'succeeded')
                THEN 'waiting' ELSE 'queued' END AS status
), changed AS (
    UPDATE jobs j SET status = n.status, attempts = 0, lost_leases = 0,
           cancel_requested = false, send_pending = n.status = 'queued' AND NOT j.external,
           run_at = now(), queued_at = CASE WHEN n.status = 'queued' THEN now() END,
           updated_at = now(), finished_at = NULL, result = NULL, progress = 0,
           progress_message = NULL, report_digest = NULL
    FROM target old, next n
    WHERE j.id = old.id AND j.status IN ('failed', 'cancelled') AND NOT j.webhook_pending
      AND NOT EXISTS (SELECT 1 FROM blocking)
      AND (%(limit)s::int IS NULL OR (SELECT unfinished FROM quota) + 1 <= %(limit)s::int)
    RETURNING j.*, old.status AS from_status
)"""
            + _EVENTS
            + """
SELECT (SELECT to_jsonb(c) - 'from_status' FROM changed c) AS job,
       (SELECT status FROM target) AS status,
       (SELECT webhook_pending FROM target) AS webhook_pending,
       (SELECT unfinished FROM quota) AS unfinished,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', b.id, 'status', b.status)
                                  ORDER BY b.id), '[]'::jsonb)
        FROM blocking b) AS blocking""",
            _params(actor, id=job_id, limit=unfinished_limit),
        )
        if not rows or rows[0]["status"] is None:
            return None
        row = rows[0]
        if row["job"] is not None:
            return Job.model_validate(row["job"])
        if row["status"] not in ("failed", "cancelled") or row["webhook_pending"]:
            return None
        if row["blocking"]:
            named = ", ".join(f"{dep['id']} ({dep['status']})" for dep in row["blocking"])
            raise DependencyFailed(
                f"the job cannot run again while a dependency has not succeeded: {named}; "
                "retry the dependency first",
                details={"dependencies": row["blocking"]},
            )
        if unfinished_limit is not None and row["unfinished"] + 1 > unfinished_limit:
            raise _over_quota(row["unfinished"], unfinished_limit)
        return None

    def redrive_many(
        self,
        job_ids: Sequence[UUID],
        *,
        actor: str,
        resend: bool,
        expected_redrive_count: int | None = None,
    ) -> list[Job]:
        """Give `failed` jobs a fresh attempt budget and `redrive_count + 1`.

        `resend=False` is for a message that is already back on its queue (the console's
        DLQ redrive); `expected_redrive_count` makes a duplicate of that message a no-op.
        Jobs whose completion webhook is still to be created are left alone (as `retry`).
        """
        if not job_ids:
            return []
        return _jobs(
            self._db.execute(
                _transition("""
    UPDATE jobs j SET status = 'queued', attempts = 0, lost_leases = 0,
           redrive_count = j.redrive_count + 1,
           send_pending = %(resend)s AND NOT j.external, run_at = now(), queued_at = now(),
           updated_at = now(), finished_at = NULL, cancel_requested = false, progress = 0,
           progress_message = NULL, report_digest = NULL
    WHERE j.id = ANY (%(ids)s) AND j.status = 'failed' AND NOT j.webhook_pending
      AND (%(expected)s::int IS NULL OR j.redrive_count = %(expected)s::int)
    RETURNING j.*, 'failed'::text AS from_status"""),
                _params(
                    actor,
                    {"redrive": True},
                    ids=list(job_ids),
                    resend=resend,
                    expected=expected_redrive_count,
                ),
            )
        )

    def update_details(
        self,
        job_id: UUID,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        priority: str | None = None,
        run_at: datetime | None = None,
        actor: str = "api",
    ) -> Job:
        """Edit descriptive fields any time; `priority` and `run_at` only before it runs. A
        `run_at` past SQS's longest delay makes a queued job `scheduled`: that transition is
        in its history (by `actor`), as every other is."""
        if priority is not None or run_at is not None:
            rows = self._db.execute(
                """
WITH old AS (SELECT id, status FROM jobs WHERE id = %(id)s FOR UPDATE
), changed AS (
    UPDATE jobs j SET name = coalesce(%(name)s, j.name),
           description = coalesce(%(description)s, j.description),
           tags = coalesce(%(tags)s, j.tags), priority = coalesce(%(priority)s, j.priority),
           run_at = coalesce(%(run_at)s, j.run_at), updated_at = now(),
           send_pending = CASE WHEN j.status = 'queued' AND NOT j.external THEN true
                               ELSE j.send_pending END,
           -- A message a pause held is on the old priority's queue, where the claim drops
           -- it: the one sent now is the job's only message, to be held in its turn if paused.
           held_until = CASE WHEN %(priority)s::text IS DISTINCT FROM j.priority
                                  AND %(priority)s::text IS NOT NULL
                             THEN NULL ELSE j.held_until END,
           status = CASE WHEN j.status = 'queued' AND coalesce(%(run_at)s, j.run_at)
                              > now() + make_interval(secs => %(max_delay)s)
                         THEN 'scheduled' ELSE j.status END
    FROM old
    WHERE j.id = old.id AND j.status IN ('scheduled', 'waiting', 'queued')
    RETURNING j.*, old.status AS from_status
), events AS (
    INSERT INTO job_events (job_id, to_status, actor, attempt)
    SELECT c.id, c.status, %(actor)s, c.attempts FROM changed c WHERE c.status <> c.from_status
)
SELECT * FROM changed""",
                {
                    "id": job_id,
                    "name": name,
                    "description": description,
                    "tags": tags,
                    "priority": priority,
                    "run_at": run_at,
                    "max_delay": SQS_MAX_DELAY_SECONDS,
                    "actor": actor,
                },
            )
            if not rows:
                self.get(job_id)  # raises NotFound
                raise Conflict("priority and run_at can only change before the job runs")
            return Job.model_validate(rows[0])
        rows = self._db.execute(
            "UPDATE jobs SET name = coalesce(%(name)s, name), "
            "description = coalesce(%(description)s, description), "
            "tags = coalesce(%(tags)s, tags), updated_at = now() WHERE id = %(id)s RETURNING *",
            {"id": job_id, "name": name, "description": description, "tags": tags},
        )
        if not rows:
            raise NotFound("job not found")
        return Job.model_validate(rows[0])

    def delete(self, job_id: UUID) -> bool:
        """Delete a job that is not running. False if it is running."""
        rows = self._db.execute(
            "DELETE FROM jobs WHERE id = %s AND status <> 'running' RETURNING id", (job_id,)
        )
        return bool(rows)

    # ---- recovery -------------------------------------------------------------------

    def expired_leases(self, *, limit: int) -> list[Job]:
        """Running jobs whose lease has expired (their worker crashed or timed out)."""
        return _jobs(
            self._db.execute(
                "SELECT * FROM jobs WHERE status = 'running' AND lease_until < now() "
                "ORDER BY lease_until LIMIT %s",
                (limit,),
            )
        )

    def recover_expired(
        self, job: Job, error: str, decision: RetryDecision, *, actor: str = "recovery"
    ) -> Job | None:
        """Apply a retry decision to a job whose lease expired; conditional on the lease
        still being the expired one, so a late report or a second sweep cannot clash."""
        if job.lease_token is None:
            return None
        rows = self._db.execute(
            "SELECT id FROM jobs WHERE id = %s AND lease_token = %s AND status = 'running' "
            "AND lease_until < now()",
            (job.id, job.lease_token),
        )
        if not rows:
            return None
        return self.fail(job.id, job.lease_token, error, decision, resend=True, actor=actor)

    def refund_lost_lease(
        self, job: Job, error: str, *, cap: int, actor: str = "recovery"
    ) -> Job | None:
        """A job whose lease expired goes back to `queued` without counting the attempt, as
        long as it has lost fewer than `cap` leases (conditional on the lease still being
        the expired one). None when the cap is reached or someone got there first."""
        if job.lease_token is None:
            return None
        rows = self._db.execute(
            _transition(
                """
    UPDATE jobs SET status = """
                + _AGAIN_STATUS
                + """, attempts = greatest(attempts - 1, 0),
           lost_leases = lost_leases + 1, last_error = %(error)s, lease_until = NULL,
           lease_token = NULL, external_ref = NULL,
           send_pending = NOT external AND NOT cancel_requested,
           finished_at = CASE WHEN cancel_requested THEN now() END,
           run_at = now(), queued_at = now(), updated_at = now()
    WHERE id = %(id)s AND lease_token = %(token)s AND status = 'running'
      AND lease_until < now() AND lost_leases < %(cap)s
    RETURNING jobs.*, 'running'::text AS from_status"""
            ),
            _params(
                actor,
                {"lease_lost": True},
                id=job.id,
                token=job.lease_token,
                error=error[:LAST_ERROR_MAX],
                cap=cap,
            ),
        )
        return Job.model_validate(rows[0]) if rows else None

    def release_due_scheduled(
        self, *, limit: int, window_seconds: int = SQS_MAX_DELAY_SECONDS
    ) -> list[Job]:
        """Move `scheduled` jobs due within SQS's delay window to `queued` (to be sent with
        the remaining delay)."""
        return _jobs(
            self._db.execute(
                _transition(
                    """
    UPDATE jobs SET status = 'queued', send_pending = NOT external, queued_at = now(),
           updated_at = now()
    FROM picked WHERE jobs.id = picked.id AND jobs.status = 'scheduled'
    RETURNING jobs.*, 'scheduled'::text AS from_status""",
                    picked="""
    SELECT id FROM jobs
    WHERE status = 'scheduled' AND run_at <= now() + make_interval(secs => %(window)s)
    ORDER BY run_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED""",
                ),
                _params("scheduler", window=window_seconds, limit=limit),
            )
        )

    def release_waiting(self, *, limit: int, job_ids: Sequence[UUID] | None = None) -> list[Job]:
        """Release `waiting` jobs whose dependencies all exist and succeeded (optionally only
        those depending on `job_ids`, which is what a worker does after finishing them)."""
        return _jobs(
            self._db.execute(
                _transition(
                    """
    UPDATE jobs j SET
        status = CASE WHEN j.run_at > now() + make_interval(secs => %(max_delay)s)
                      THEN 'scheduled' ELSE 'queued' END,
        send_pending = NOT j.external AND j.run_at <= now() + make_interval(secs => %(max_delay)s),
        queued_at = now(), updated_at = now()
    FROM picked WHERE j.id = picked.id AND j.status = 'waiting'
    RETURNING j.*, 'waiting'::text AS from_status""",
                    picked="""
    SELECT w.id FROM jobs w
    WHERE w.status = 'waiting'
      AND (%(deps)s::uuid[] IS NULL OR w.depends_on && %(deps)s::uuid[])
      -- Every dependency there and succeeded: one deleted unfinished (or before the job
      -- was released) is the sweep's to cancel, as a failed one is.
      AND NOT EXISTS (SELECT 1 FROM unnest(w.depends_on) AS dep(id)
                      WHERE NOT EXISTS (SELECT 1 FROM jobs d
                                        WHERE d.id = dep.id AND d.status = 'succeeded'))
    ORDER BY w.created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED""",
                ),
                _params(
                    "scheduler",
                    deps=list(job_ids) if job_ids is not None else None,
                    limit=limit,
                    max_delay=SQS_MAX_DELAY_SECONDS,
                ),
            )
        )

    def cancel_waiting_on_failed(self, *, limit: int) -> list[Job]:
        """Cancel `waiting` jobs whose dependency failed, was cancelled or was deleted."""
        return _jobs(
            self._db.execute(
                _transition(
                    """
    UPDATE jobs j SET status = 'cancelled', finished_at = now(), updated_at = now(),
           last_error = 'a dependency failed, was cancelled or was deleted'
    FROM picked WHERE j.id = picked.id AND j.status = 'waiting'
    RETURNING j.*, 'waiting'::text AS from_status""",
                    picked="""
    SELECT w.id FROM jobs w
    WHERE w.status = 'waiting'
      AND (EXISTS (SELECT 1 FROM jobs d WHERE d.id = ANY (w.depends_on)
                   AND d.status IN ('failed', 'cancelled'))
           -- Each id looked up on its own: `depends_on` may name a job twice.
           OR EXISTS (SELECT 1 FROM unnest(w.depends_on) AS dep(id)
                      WHERE NOT EXISTS (SELECT 1 FROM jobs d WHERE d.id = dep.id)))
    ORDER BY w.created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED""",
                ),
                _params("scheduler", {"reason": "dependency"}, limit=limit),
            )
        )

    def pending_sends(self, *, older_than_seconds: float, limit: int) -> list[Job]:
        """Take queued jobs whose message was never confirmed sent (crash between commit and
        send), older than a grace period so in-flight API requests finish first. Taking them
        touches `updated_at`, so a second sweep running at the same time skips them."""
        return _jobs(
            self._db.execute(
                """
WITH picked AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE send_pending AND status = 'queued'
      AND updated_at < now() - make_interval(secs => %(grace)s)
    ORDER BY updated_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE jobs SET updated_at = now() FROM picked
WHERE jobs.id = picked.id AND jobs.send_pending AND jobs.status = 'queued'
RETURNING jobs.*""",
                {"grace": older_than_seconds, "limit": limit},
            )
        )

    def mark_queued_to_send(self) -> int:
        """Set the "to be sent" mark on every queued job: for a queue known to have started
        empty (the local stack's in-memory SQS after a restart). The sweep sends them. The
        messages pauses held are gone too: the new one is held in their place."""
        rows = self._db.execute(
            "UPDATE jobs SET send_pending = true, held_until = NULL "
            "WHERE status = 'queued' AND NOT external "
            "AND (NOT send_pending OR held_until IS NOT NULL) RETURNING id"
        )
        return len(rows)

    def end_leases_of_own_workers(self) -> int:
        """End now the lease of every running job our own workers ran (not external ones):
        for a local stack starting on its own database, whose previous process (the only
        worker there is) is gone with the bodies it ran. The sweep then recovers them at
        once instead of after their timeout, as after any lost lease."""
        rows = self._db.execute(
            "UPDATE jobs SET lease_until = now() - interval '1 second' "
            "WHERE status = 'running' AND NOT external AND lease_until >= now() RETURNING id"
        )
        return len(rows)

    def requeue_stale(self, *, older_than_seconds: float, limit: int) -> list[Job]:
        """Mark "to be sent" again the queued jobs nothing has touched for a while, whose
        due time is as old: their message may be gone (a purged queue, a message past its
        retention, a local SQS that restarted empty, a retry whose message had already been
        acknowledged as a duplicate). Resending is safe: claims are conditional, so a second
        message for a job that also has its first one is acknowledged and skipped.

        Jobs of a paused queue or type are left alone (their messages wait, or return with
        a hold); after the resume they are stale like any other, if their message is gone."""
        return _jobs(
            self._db.execute(
                """
WITH picked AS MATERIALIZED (
    SELECT j.id FROM jobs j
    WHERE j.status = 'queued' AND NOT j.external AND NOT j.send_pending
      AND j.queued_at < now() - make_interval(secs => %(age)s)
      AND j.updated_at < now() - make_interval(secs => %(age)s)
      AND j.run_at < now() - make_interval(secs => %(age)s)
      AND NOT """
                + _PAUSED
                + """
    ORDER BY j.queued_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE jobs SET send_pending = true, updated_at = now() FROM picked
WHERE jobs.id = picked.id AND jobs.status = 'queued' AND NOT jobs.send_pending
RETURNING jobs.*""",
                {"age": older_than_seconds, "limit": limit},
            )
        )

    def pending_webhooks(self, *, older_than_seconds: float, limit: int) -> list[Job]:
        """Take finished jobs whose completion webhook job was never created (crash right
        after the final statement), older than a grace period; taking them touches
        `updated_at`, so a second sweep running at the same time skips them."""
        return _jobs(
            self._db.execute(
                """
WITH picked AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE webhook_pending AND status IN ('succeeded', 'failed')
      AND updated_at < now() - make_interval(secs => %(grace)s)
    ORDER BY updated_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE jobs SET updated_at = now() FROM picked
WHERE jobs.id = picked.id AND jobs.webhook_pending
RETURNING jobs.*""",
                {"grace": older_than_seconds, "limit": limit},
            )
        )

    def clear_webhook_pending(self, job_ids: Sequence[UUID]) -> int:
        """Clear the "webhook to be created" mark once the webhook jobs exist."""
        if not job_ids:
            return 0
        rows = self._db.execute(
            "UPDATE jobs SET webhook_pending = false WHERE id = ANY (%s) AND webhook_pending "
            "RETURNING id",
            (list(job_ids),),
        )
        return len(rows)

    def failed_page(self, *, after: UUID | None, limit: int) -> list[Job]:
        """Failed jobs that had SQS messages, in id order from after `after` (all of them,
        page by page: the local stack's DLQs, which start empty, are filled again)."""
        return _jobs(
            self._db.execute(
                "SELECT * FROM jobs WHERE status = 'failed' AND NOT external "
                "AND (%(after)s::uuid IS NULL OR id > %(after)s) ORDER BY id LIMIT %(limit)s",
                {"after": after, "limit": limit},
            )
        )

    def failed_jobs(self, *, priority: str, limit: int) -> list[Job]:
        """Failed jobs of one priority that had SQS messages (for DLQ reconciliation)."""
        return _jobs(
            self._db.execute(
                "SELECT * FROM jobs WHERE status = 'failed' AND priority = %s AND NOT external "
                "ORDER BY created_at DESC, id DESC LIMIT %s",
                (priority, limit),
            )
        )

    def stale(self, *, status: JobStatus, older_than_seconds: float, limit: int) -> list[Job]:
        """Jobs in `status` not updated for a while (manual recovery)."""
        return _jobs(
            self._db.execute(
                "SELECT * FROM jobs WHERE status = %s "
                "AND updated_at < now() - make_interval(secs => %s) ORDER BY updated_at LIMIT %s",
                (status.value, older_than_seconds, limit),
            )
        )

    def mark_waiting_to_send(
        self, *, priority: str | None, job_type: str | None, limit: int
    ) -> list[Job]:
        """Mark the oldest `limit` queued jobs of a priority or a type "to be sent" whose
        message a pause held back and is not due back yet (a resumed queue or type). The
        others' messages are on the queue or due back already: re-sending them would only
        add a duplicate. `held_until` stays: the held message is still on its way, so if a
        pause comes back first, the claim drops the re-sent one rather than holding it."""
        return _jobs(
            self._db.execute(
                """
UPDATE jobs SET send_pending = true, updated_at = now()
WHERE id IN (SELECT id FROM jobs
             WHERE status = 'queued' AND NOT external AND held_until > now()
               AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
               AND (%(type)s::text IS NULL OR type = %(type)s::text)
             ORDER BY queued_at LIMIT %(limit)s)
  AND status = 'queued'
RETURNING *""",
                {"priority": priority, "type": job_type, "limit": limit},
            )
        )

    def mark_holding_key_to_send(self, key: str, *, limit: int) -> list[Job]:
        """Mark the oldest `limit` queued jobs holding limit key `key` "to be sent": its limit
        was removed or loosened, and those the limit held back have a delayed message that
        may be minutes away (a rate's hold lasts up to `MAX_RATE_HOLD_SECONDS`). Which of
        them hold such a message is not recorded, so a job whose message is on the queue gets
        a second one; the claim acknowledges whichever comes after the job started."""
        owner = owner_of_key(key)
        holding: LiteralString = (
            "owner_id = %(owner)s"
            if owner is not None
            else "limit_keys @> ARRAY[%(key)s::text] AND limit_keys <> '{}'"
        )
        return _jobs(
            self._db.execute(
                """
UPDATE jobs SET send_pending = true, updated_at = now()
WHERE id IN (SELECT id FROM jobs
             WHERE status = 'queued' AND NOT external AND NOT send_pending AND """
                + holding
                + """
             ORDER BY queued_at LIMIT %(limit)s)
  AND status = 'queued'
RETURNING *""",
                {"key": key, "owner": owner, "limit": limit},
            )
        )

    def mark_to_send(self, job_ids: Sequence[UUID]) -> list[Job]:
        """Set the "to be sent" mark again on queued jobs (their message is presumed lost)."""
        return _jobs(
            self._db.execute(
                "UPDATE jobs SET send_pending = true, updated_at = now() "
                "WHERE id = ANY (%s) AND status = 'queued' AND NOT external RETURNING *",
                (list(job_ids),),
            )
        )

    def delete_finished(self, *, older_than_days: float, limit: int) -> int:
        """Retention: delete finished jobs (and, by trigger, their events) in one bounded
        batch, except those a waiting job still depends on."""
        rows = self._db.execute(
            """
WITH picked AS MATERIALIZED (
    SELECT f.id FROM jobs f
    WHERE f.status IN ('succeeded', 'failed', 'cancelled')
      AND f.finished_at < now() - make_interval(days => 0, secs => %(age)s)
      -- Kept while a job still waits on it: a deleted dependency cancels that job.
      AND NOT (f.has_dependents
               AND EXISTS (SELECT 1 FROM jobs w
                           WHERE w.status = 'waiting' AND w.depends_on @> ARRAY[f.id]))
    ORDER BY f.created_at, f.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
DELETE FROM jobs USING picked WHERE jobs.id = picked.id RETURNING jobs.id""",
            {"age": older_than_days * 86400, "limit": limit},
        )
        return len(rows)
