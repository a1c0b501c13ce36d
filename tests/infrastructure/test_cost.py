"""The cost model (bench/cost_model.py) on the synthesized templates: every resource priced or
known to be free when idle, dev within its idle budget, and the per-million arithmetic.

The durations here are fixed stand-ins, not measurements (bench/bench_cost.py measures them);
what these tests hold is what the template decides: which resources exist, in how many AZs,
with which memory, architecture and batch size."""

from __future__ import annotations

import pytest

from bench.cost_model import (
    API_GATEWAY_REST_REQUEST,
    HOURS_PER_MONTH,
    INTERFACE_ENDPOINT_AZ_HOUR,
    LAMBDA_GB_SECOND,
    SQS_REQUEST,
    Invocation,
    Measured,
    Template,
    idle_monthly,
    per_million,
)
from tests.infrastructure.conftest import Synthesized

DEV_IDLE_BUDGET = 50.0
# An idle sweep: a few ms and nine statements (bench_cost.py measures ~4 ms here); no metric
# (tests/integration/recovery/test_sweep.py::test_an_idle_sweep_publishes_no_metric).
SWEEP = Invocation(
    wall_ms=20, cpu_ms=15, sql_round_trips=9, sqs_calls=0, log_bytes=2000, log_events=1
)
SWEEP_METRICS = 0


def template(synthesized: Synthesized) -> Template:
    return Template(synthesized.config.name, synthesized.template.to_json())


def measured() -> Measured:
    api = Invocation(
        wall_ms=3, cpu_ms=2, sql_round_trips=2, sqs_calls=1, log_bytes=300, log_events=1
    )
    batch = Invocation(
        wall_ms=70, cpu_ms=20, sql_round_trips=2, sqs_calls=10, log_bytes=300, log_events=1
    )
    worker = Invocation(
        wall_ms=5, cpu_ms=3, sql_round_trips=2, sqs_calls=0, log_bytes=400, log_events=1
    )
    return Measured(api, batch, 100, worker, 10, SWEEP, SWEEP_METRICS)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_resource_is_priced_or_known_to_be_free_when_idle(
    env: str, request: pytest.FixtureRequest
) -> None:
    cost = idle_monthly(template(request.getfixturevalue(env)), SWEEP, SWEEP_METRICS)
    assert cost.unpriced == []  # add the new resource type to bench/cost_model.py


def test_dev_idles_within_its_budget(dev: Synthesized, prod: Synthesized) -> None:
    cost = idle_monthly(template(dev), SWEEP, SWEEP_METRICS)
    assert cost.total <= DEV_IDLE_BUDGET, cost.items
    components = cost.by_component()
    # Three endpoints in one AZ; no proxy, no NAT.
    assert components["interface endpoints"] == pytest.approx(
        3 * HOURS_PER_MONTH * INTERFACE_ENDPOINT_AZ_HOUR
    )
    assert "RDS Proxy" not in components
    assert "NAT gateways" not in components
    # prod keeps what makes it prod: eight endpoints in two AZs, the proxy, NAT, WAF.
    prod_components = idle_monthly(template(prod), SWEEP, SWEEP_METRICS).by_component()
    assert prod_components["interface endpoints"] == pytest.approx(
        8 * 2 * HOURS_PER_MONTH * INTERFACE_ENDPOINT_AZ_HOUR
    )
    for component in ("RDS Proxy", "NAT gateways", "WAF"):
        assert prod_components[component] > 0


def test_per_million_follows_the_template(prod: Synthesized) -> None:
    rows = {row.component: row for row in per_million(template(prod), measured())}
    # One API Gateway request per job, or per 100.
    gateway = rows["API Gateway REST requests"]
    assert gateway.single == pytest.approx(1e6 * API_GATEWAY_REST_REQUEST)
    assert gateway.batch == pytest.approx(1e6 / 100 * API_GATEWAY_REST_REQUEST)
    # SQS: one send per job (or per ten in a batch), one receive and one delete per batch of 10.
    sqs = rows["SQS requests"]
    assert sqs.single == pytest.approx((1e6 + 2e5) * SQS_REQUEST)
    assert sqs.batch == pytest.approx((1e5 + 2e5) * SQS_REQUEST)
    # The API function's duration at its configured memory and architecture.
    config = template(prod).lambda_config("taskmill-api")
    billed = measured().api_single.billed_ms(config.memory_mb)
    assert rows["API Lambda duration"].single == pytest.approx(
        1e6 * config.gb * billed / 1000 * LAMBDA_GB_SECOND[config.architecture]
    )
    assert "WAF requests inspected" in rows  # prod has WAF
    single = sum(row.single for row in rows.values())
    batch = sum(row.batch for row in rows.values())
    assert batch < single / 4


def test_billed_duration_stretches_cpu_below_a_full_vcpu() -> None:
    call = Invocation(
        wall_ms=10, cpu_ms=8, sql_round_trips=2, sqs_calls=1, log_bytes=0, log_events=0
    )
    # 8 ms of CPU at 1769/512 of a vCPU, 2 ms of waiting, 2 SQL and 1 SQS round trips.
    assert call.modelled_ms(512) == pytest.approx(8 * 1769 / 512 + 2 + 2 * 1.0 + 10.0)
    assert call.modelled_ms(3008) == pytest.approx(8 + 2 + 2 * 1.0 + 10.0)
    assert call.billed_ms(512) == 42
