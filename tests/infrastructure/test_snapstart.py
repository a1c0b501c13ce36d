"""SnapStart per function from cdk.json (`api.snap_start`): the deployed environments leave
it off (docs/PERFORMANCE.md says why); turned on, the function snapshots its published
versions and API Gateway calls the `live` alias, never $LATEST (SnapStart skips it)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure.conftest import Synthesized

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def snap_started(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from aws_cdk.assertions import Template

    from app import build_app

    environments = copy.deepcopy(json.loads((ROOT / "cdk.json").read_text())["context"])[
        "environments"
    ]
    environments["dev"]["api"]["snap_start"] = ["api", "authorizer"]
    outdir = tmp_path_factory.mktemp("cdk-snapstart")
    app = build_app(
        {"env": "dev", "environments": environments, "aws:cdk:bundling-stacks": []},
        outdir=str(outdir),
    )
    [artifact] = app.synth().stacks
    stack: Any = app.node.find_child(artifact.stack_name)
    return Synthesized(Template.from_json(artifact.template), outdir, stack, stack.config)


def snap_start_of(synthesized: Synthesized, function: Any) -> Any:
    props = synthesized.resources[synthesized.logical_id(function)]["Properties"]
    return props.get("SnapStart")


def test_the_deployed_environments_leave_snap_start_off(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized in (dev, prod):
        assert synthesized.config.api.snap_start == ()
        for function in synthesized.of_type("AWS::Lambda::Function").values():
            assert "SnapStart" not in function["Properties"]
        assert synthesized.of_type("AWS::Lambda::Alias") == {}


def test_snap_started_functions_are_called_through_their_published_alias(
    snap_started: Synthesized,
) -> None:
    api = snap_started.stack.taskmill.api
    published = {"ApplyOn": "PublishedVersions"}
    assert snap_start_of(snap_started, api.function) == published
    assert snap_start_of(snap_started, api.authorizer_function) == published
    assert snap_start_of(snap_started, snap_started.stack.taskmill.workers.function) is None

    aliases = snap_started.of_type("AWS::Lambda::Alias")
    by_function = {
        alias["Properties"]["FunctionName"]["Ref"]: logical for logical, alias in aliases.items()
    }
    api_alias = by_function[snap_started.logical_id(api.function)]
    authorizer_alias = by_function[snap_started.logical_id(api.authorizer_function)]
    for logical in (api_alias, authorizer_alias):
        props = aliases[logical]["Properties"]
        assert props["Name"] == "live"
        version = props["FunctionVersion"]["Fn::GetAtt"][0]
        assert snap_started.resources[version]["Type"] == "AWS::Lambda::Version"

    # API Gateway invokes the aliases (integration and authorizer URIs, and permissions).
    template = json.dumps(snap_started.resources)
    methods = snap_started.of_type("AWS::ApiGateway::Method")
    uris = [
        json.dumps(m["Properties"]["Integration"]["Uri"])
        for m in methods.values()
        if m["Properties"].get("Integration", {}).get("Type") == "AWS_PROXY"
    ]
    assert uris
    assert all(api_alias in uri for uri in uris)
    [authorizer] = snap_started.of_type("AWS::ApiGateway::Authorizer").values()
    assert authorizer_alias in json.dumps(authorizer["Properties"]["AuthorizerUri"])
    permissions = [
        json.dumps(p["Properties"]["FunctionName"])
        for p in snap_started.of_type("AWS::Lambda::Permission").values()
        if p["Properties"].get("Principal") == "apigateway.amazonaws.com"
    ]
    assert any(api_alias in p for p in permissions)
    assert any(authorizer_alias in p for p in permissions)
    assert api_alias in template
