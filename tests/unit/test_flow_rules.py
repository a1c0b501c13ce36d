"""Pure flow-control rules: hold delays, limit keys and their templates (SPEC §6)."""

from __future__ import annotations

from uuid import UUID

import pytest
from taskmill.errors import InvalidInput
from taskmill.flow.holds import (
    MAX_CONCURRENCY_HOLD_SECONDS,
    MAX_NOT_DUE_HOLD_SECONDS,
    MAX_RATE_HOLD_SECONDS,
    PAUSE_HOLD_SECONDS,
    SECONDS_PER_ROUND,
    hold_seconds,
)
from taskmill.flow.keys import (
    check_template,
    key_family,
    owner_of_key,
    render_template,
    resolve_limit_keys,
)
from taskmill.flow.limits import Limit, LimitSpec, LimitUse, Rate, loosens, room_now

OWNER = UUID("00000000-0000-0000-0000-00000000000a")


def test_a_rate_hold_lasts_until_the_jobs_token() -> None:
    assert hold_seconds("rate", ahead=1.0, period=5.0) == 5
    assert hold_seconds("rate", ahead=2.5, period=5.0) == 13  # rounded up
    assert hold_seconds("rate", ahead=0.01, period=0.5) == 1  # never less than a second
    assert hold_seconds("rate", ahead=1.0, period=86_400) == MAX_RATE_HOLD_SECONDS


def test_a_concurrency_hold_grows_with_the_line_and_is_bounded() -> None:
    assert hold_seconds("concurrency", ahead=1.0) == SECONDS_PER_ROUND
    assert hold_seconds("concurrency", ahead=3.0) > hold_seconds("concurrency", ahead=1.0)
    assert hold_seconds("concurrency", ahead=10_000.0) == MAX_CONCURRENCY_HOLD_SECONDS


def test_a_job_not_due_is_held_until_its_run_at() -> None:
    assert hold_seconds("not_due", ahead=299.2) == 300  # rounded up: never before run_at
    assert hold_seconds("not_due", ahead=0.004) == 1
    assert hold_seconds("not_due", ahead=5_000.0) == MAX_NOT_DUE_HOLD_SECONDS


def test_a_pause_hold_and_unknown_reasons() -> None:
    assert hold_seconds("paused") == PAUSE_HOLD_SECONDS
    with pytest.raises(ValueError, match="no hold rule"):
        hold_seconds("sunspots")


def test_templates_render_type_owner_and_payload_fields() -> None:
    payload = {"customer_id": 42, "region": "eu-1"}
    assert (
        render_template("c:{payload.customer_id}", job_type="t", owner_id=OWNER, payload=payload)
        == "c:42"
    )
    assert (
        render_template("{type}.{payload.region}", job_type="t", owner_id=OWNER, payload=payload)
        == "t.eu-1"
    )
    assert render_template("o:{owner_id}", job_type="t", owner_id=OWNER, payload={}) == f"o:{OWNER}"


@pytest.mark.parametrize(
    "payload", [{}, {"customer_id": None}, {"customer_id": {"a": 1}}, {"customer_id": True}]
)
def test_a_template_needs_a_scalar_field(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="customer_id"):
        render_template("c:{payload.customer_id}", job_type="t", owner_id=OWNER, payload=payload)


@pytest.mark.parametrize("template", ["{secret}", "{payload.a.b}", "{payload}"])
def test_a_template_that_can_never_render_is_refused_when_declared(template: str) -> None:
    with pytest.raises(ValueError, match="unknown field"):
        check_template(template)


def test_keys_are_deduplicated_templates_first() -> None:
    keys = resolve_limit_keys(
        ["b", "a:1"], ["a:{payload.x}"], job_type="t", owner_id=OWNER, payload={"x": 1}
    )
    assert keys == ["a:1", "b"]


@pytest.mark.parametrize("name", ["two words", "42\n"])
def test_a_rendered_key_must_be_valid(name: str) -> None:
    # "42\n": a trailing newline is not a character a key may end with (a `$` in the
    # pattern would have let it through).
    with pytest.raises(InvalidInput, match="limit_keys"):
        resolve_limit_keys(
            [], ["c:{payload.name}"], job_type="t", owner_id=OWNER, payload={"name": name}
        )


def test_key_families_bound_metric_dimensions() -> None:
    assert key_family("customer:42") == "customer"
    assert key_family(f"owner:{OWNER}") == "owner"
    assert key_family("plain") == "other"
    assert key_family(None) == "none"


def _limit(concurrency: int | None = None, rate: tuple[int, float] | None = None) -> Limit:
    return Limit(
        key="k",
        concurrency=concurrency,
        rate=Rate(limit=rate[0], period_seconds=rate[1]) if rate else None,
    )


def _spec(concurrency: int | None = None, rate: tuple[int, float] | None = None) -> LimitSpec:
    return LimitSpec(
        concurrency=concurrency,
        rate=Rate(limit=rate[0], period_seconds=rate[1]) if rate else None,
    )


@pytest.mark.parametrize(
    ("before", "after", "looser"),
    [
        (None, _spec(concurrency=5), False),  # a new limit only holds more back
        (_limit(concurrency=1), _spec(concurrency=2), True),
        (_limit(concurrency=1), _spec(rate=(5, 1)), True),  # concurrency removed
        (_limit(concurrency=2), _spec(concurrency=2), False),
        (_limit(concurrency=2), _spec(concurrency=1), False),
        (_limit(concurrency=2), _spec(concurrency=2, rate=(1, 60)), False),  # a rate added
        (_limit(rate=(1, 3600)), _spec(concurrency=5), True),  # rate removed
        (_limit(rate=(1, 3600)), _spec(rate=(2, 3600)), True),  # changed: a full bucket
        (_limit(rate=(1, 3600)), _spec(rate=(1, 3600)), False),  # the same: its level kept
        (_limit(concurrency=0, rate=(1, 60)), _spec(concurrency=0, rate=(1, 60)), False),
    ],
)
def test_which_limit_changes_let_held_jobs_start_sooner(
    before: Limit | None, after: LimitSpec, looser: bool
) -> None:
    assert loosens(before, after) is looser


def test_an_owner_key_names_its_owner_and_no_other_key_does() -> None:
    assert owner_of_key(f"owner:{OWNER}") == OWNER
    for key in ["customer:7", f"owner:{str(OWNER).upper()}", "owner:", f"owner:{OWNER}x"]:
        assert owner_of_key(key) is None


@pytest.mark.parametrize(
    ("limit", "running", "tokens", "room"),
    [
        (_limit(concurrency=5), 3, None, 2),
        (_limit(concurrency=2), 3, None, 0),  # over it already (lowered meanwhile)
        (_limit(rate=(10, 60)), 0, 3.7, 3),
        (_limit(concurrency=5, rate=(10, 60)), 1, 2.0, 2),
        (_limit(concurrency=1, rate=(10, 60)), 0, 10.0, 1),
    ],
)
def test_the_room_a_limit_leaves_now(
    limit: Limit, running: int, tokens: float | None, room: int
) -> None:
    used = limit.model_copy(update={"use": LimitUse(running=running, tokens_available=tokens)})
    assert room_now(used) == room
