from __future__ import annotations

import os
from typing import Any

import pytest

# jsii prints an end-of-life banner for Node 20 on every run; this silences it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def synthesize(tmp_path_factory: pytest.TempPathFactory, env: str) -> Any:
    from aws_cdk.assertions import Template

    from app import build_app

    outdir = tmp_path_factory.mktemp(f"cdk-{env}")
    app = build_app({"env": env}, outdir=str(outdir))
    assembly = app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    [stack] = assembly.stacks
    return Template.from_json(stack.template), outdir


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synthesize(tmp_path_factory, "dev")


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synthesize(tmp_path_factory, "prod")
