"""Flow control in the stack (SPEC §6): the environment's default concurrency per owner
(`owner_concurrency` in cdk.json) reaches the functions that claim jobs and show limits,
and only when it is set: the deployed environments leave owners unlimited."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from taskmill.settings import FlowSettings, load_settings

from tests.infrastructure.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fair(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from aws_cdk.assertions import Template

    from app import build_app

    environments = copy.deepcopy(json.loads((ROOT / "cdk.json").read_text())["context"])[
        "environments"
    ]
    environments["dev"]["owner_concurrency"] = 3
    outdir = tmp_path_factory.mktemp("cdk-fair")
    app = build_app(
        {"env": "dev", "environments": environments, "aws:cdk:bundling-stacks": []},
        outdir=str(outdir),
    )
    [artifact] = app.synth().stacks
    stack: Any = app.node.find_child(artifact.stack_name)
    return Synthesized(Template.from_json(artifact.template), outdir, stack, stack.config)


def variables(synthesized: Synthesized, function: Any) -> dict[str, Any]:
    props = synthesized.resources[synthesized.logical_id(function)]["Properties"]
    return dict(props["Environment"]["Variables"])


def test_the_deployed_environments_limit_no_owner_by_default(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        assert synthesized.config.owner_concurrency is None
        for function in synthesized.of_type("AWS::Lambda::Function").values():
            names = function["Properties"].get("Environment", {}).get("Variables", {})
            assert "TASKMILL_OWNER_CONCURRENCY" not in names


def test_a_set_owner_concurrency_reaches_the_api_and_the_worker_only(
    fair: Synthesized,
) -> None:
    stack = fair.stack
    for function in (stack.api.function, stack.workers.function):
        found = variables(fair, function)
        # As the function's cold start reads it (its settings include FlowSettings).
        assert load_settings(FlowSettings, found).owner_concurrency == 3
    for function in (stack.recovery.sweep_function, stack.api.authorizer_function):
        assert "TASKMILL_OWNER_CONCURRENCY" not in variables(fair, function)
