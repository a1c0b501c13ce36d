"""Internal job types and per-user webhook keys (issue 12, item 3).

Before: any user could submit `webhook.deliver` jobs, so the platform signed any event to any
URL the user chose with the one webhook secret every receiver trusts. Now internal types are
refused by the API (jobs, batches, schedule templates) and hidden from `GET /v1/job-types`,
and each owner's webhooks are signed with a key derived for that owner, which only that
owner can read.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr
from taskmill.jobs.model import JobStatus
from taskmill.jobs.store import JobFilter, JobStore
from taskmill.jobtypes.webhook_deliver import (
    SIGNATURE_HEADER,
    WEBHOOK_TYPE,
    owner_webhook_secret,
    verify_webhook_signature,
)
from taskmill.lifecycle.schedules import fire_due
from taskmill.schedules.cron import CronExpression
from taskmill.schedules.store import ScheduleStore

# The API fixtures (services, app, client, as_user, as_other, as_admin), used by name.
from tests.integration.api.conftest import *  # noqa: F403

# The worker fixtures (enqueue, deliver, store, owner, http_receiver), used by name.
from tests.integration.worker.conftest import *  # noqa: F403
from tests.integration.worker.conftest import failures
from tests.support.apigw import ApiClient

PLATFORM_SECRET = "p" * 48
HOOK = "https://receiver.example.com/hook"
FORGED = {"url": HOOK, "event": {"type": "job.succeeded", "job": {"id": "not-yours"}}}


@pytest.fixture
def webhook_api(services: Any) -> Any:
    """The API configured with the platform's webhook key (the deployed API reads its ARN)."""
    key = SecretStr(PLATFORM_SECRET)
    services.settings = services.settings.model_copy(update={"webhook_secret": key})
    services.webhook_key = None
    return services


@pytest.fixture
def with_internal_type(services: Any) -> str:
    """A deployment's own internal type, besides the built-in one."""

    @services.registry.register("acme.audit", internal=True)
    def audit(context: Any, payload: Any) -> None:
        return None

    return "acme.audit"


def _refused(response: Any) -> None:
    assert response.status == 400, (response.status, response.body)
    assert response.error_code == "invalid_input"
    assert "internal" in response.body["error"]["message"]


@pytest.mark.parametrize("job_type", [WEBHOOK_TYPE, "acme.audit"])
def test_internal_types_cannot_be_submitted(
    as_user: ApiClient, with_internal_type: str, db: Any, job_type: str
) -> None:
    payload = FORGED if job_type == WEBHOOK_TYPE else {}
    _refused(as_user.post("/v1/jobs", {"type": job_type, "payload": payload}))
    _refused(
        as_user.post(
            "/v1/jobs/batch",
            {"jobs": [{"type": "noop"}, {"type": job_type, "payload": payload}]},
        )
    )
    _refused(
        as_user.post(
            "/v1/schedules",
            {"name": "n", "cron": "* * * * *", "job": {"type": job_type, "payload": payload}},
        )
    )
    # The batch is all or nothing: its noop was not created either.
    assert JobStore(db).list_jobs(JobFilter(), limit=10).items == []


def test_admins_cannot_submit_internal_types_either(as_admin: ApiClient) -> None:
    _refused(as_admin.post("/v1/jobs", {"type": WEBHOOK_TYPE, "payload": FORGED}))


def test_job_types_does_not_offer_internal_types(
    as_user: ApiClient, with_internal_type: str
) -> None:
    names = {t["name"] for t in as_user.get("/v1/job-types").body}
    assert "noop" in names
    assert WEBHOOK_TYPE not in names
    assert "acme.audit" not in names


def test_a_stored_internal_template_does_not_fire(
    db: Any, services: Any, as_user: ApiClient
) -> None:
    """A schedule stored before internal types were refused creates nothing."""
    owner = UUID(as_user.get("/v1/auth/me").body["id"])
    schedules = ScheduleStore(db)
    schedules.create(
        owner,
        "old",
        CronExpression.parse("* * * * *"),
        {"type": WEBHOOK_TYPE, "payload": FORGED},
        enabled=True,
    )
    db.execute("UPDATE schedules SET next_fire_at = now() - interval '1 minute'")
    fired = fire_due(schedules, JobStore(db), services.queue, services.registry, limit=10)
    assert fired.created == 0
    assert JobStore(db).list_jobs(JobFilter(), limit=10).items == []


def test_each_user_reads_their_own_webhook_key(
    webhook_api: Any, as_user: ApiClient, as_other: ApiClient
) -> None:
    mine = as_user.get("/v1/auth/me/webhook-secret")
    theirs = as_other.get("/v1/auth/me/webhook-secret")
    assert mine.status == 200, mine.body
    assert theirs.status == 200, theirs.body
    me = as_user.get("/v1/auth/me").body["id"]
    assert mine.body["webhook_secret"] == owner_webhook_secret(PLATFORM_SECRET, me)
    assert mine.body["webhook_secret"] != theirs.body["webhook_secret"]
    assert PLATFORM_SECRET not in json.dumps(mine.body)
    assert mine.body["signature_header"] == SIGNATURE_HEADER


def test_the_webhook_key_needs_a_token(webhook_api: Any, client: ApiClient) -> None:
    assert client.get("/v1/auth/me/webhook-secret", token=None).status == 401


def test_without_a_platform_key_the_webhook_key_is_503(as_user: ApiClient) -> None:
    response = as_user.get("/v1/auth/me/webhook-secret")
    assert response.status == 503, response.body
    assert "webhook" in response.body["error"]["message"]


def test_derived_keys_differ_per_owner_and_platform_key() -> None:
    a = owner_webhook_secret(PLATFORM_SECRET, "11111111-1111-1111-1111-111111111111")
    b = owner_webhook_secret(PLATFORM_SECRET, "22222222-2222-2222-2222-222222222222")
    rotated = owner_webhook_secret("q" * 48, "11111111-1111-1111-1111-111111111111")
    assert len({a, b, rotated, PLATFORM_SECRET}) == 4


def test_webhooks_are_signed_with_the_owners_key(
    enqueue: Any, deliver: Any, store: Any, http_receiver: Any, owner: UUID
) -> None:
    """The worker's signature verifies with the key the owner reads from the API, and with
    neither the platform key nor another owner's key."""
    url, received = http_receiver
    job = enqueue("noop", webhook_url=url)
    assert failures(deliver()) == []
    assert failures(deliver()) == []  # the webhook job
    [request] = received
    header, body = request["headers"][SIGNATURE_HEADER], request["body"]
    platform = "w" * 40  # the worker fixtures' TASKMILL_WEBHOOK_SECRET
    assert verify_webhook_signature(owner_webhook_secret(platform, owner), header, body)
    assert not verify_webhook_signature(platform, header, body)
    assert not verify_webhook_signature(owner_webhook_secret(platform, uuid4()), header, body)
    assert json.loads(body)["job"]["id"] == str(job.id)
    assert store.get(job.id).status is JobStatus.SUCCEEDED
