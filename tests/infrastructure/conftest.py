"""One synth per environment per test session (jsii start-up dominates: ~10 s).

`dev` is synthesized with bundling, so its assembly holds the real layer and function
assets; `prod` skips bundling (its assets are the same code)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

# jsii prints an end-of-life banner for Node 20 on every run; this silences it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass
class Synthesized:
    template: Any  # aws_cdk.assertions.Template
    outdir: Path
    stack: Any  # taskmill_cdk.stack.TaskmillStack
    config: Any  # taskmill_cdk.config.TaskmillConfig

    @cached_property
    def resources(self) -> dict[str, dict[str, Any]]:
        # One jsii round trip per session rather than one per question.
        return dict(self.template.to_json()["Resources"])

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"


def synthesize(tmp_path_factory: pytest.TempPathFactory, env: str, *, bundle: bool) -> Synthesized:
    from aws_cdk.assertions import Template

    from app import build_app
    from taskmill_cdk.stack import TaskmillStack

    outdir = tmp_path_factory.mktemp(f"cdk-{env}")
    overrides: dict[str, Any] = {"env": env}
    if not bundle:
        overrides["aws:cdk:bundling-stacks"] = []
    app = build_app(overrides, outdir=str(outdir))
    assembly = app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    [artifact] = assembly.stacks
    stack = app.node.find_child(artifact.stack_name)
    assert isinstance(stack, TaskmillStack)
    return Synthesized(Template.from_json(artifact.template), outdir, stack, stack.config)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory, "dev", bundle=True)


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory, "prod", bundle=False)
