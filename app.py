"""The CDK app: `python app.py` (what `make synth` runs) and `cdk synth` produce the same
template, because both read cdk.json and write to cdk.out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "layers"))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.config import load_environment  # noqa: E402
from infra.stack import TaskmillStack  # noqa: E402


def build_app(
    context_overrides: dict[str, Any] | None = None, outdir: str | None = None
) -> cdk.App:
    settings = json.loads((ROOT / "cdk.json").read_text())
    context = {**settings["context"], **(context_overrides or {})}
    app = cdk.App(context=context, outdir=outdir or str(ROOT / settings.get("output", "cdk.out")))
    name = str(app.node.try_get_context("env") or "dev")
    config = load_environment(context, name)
    env = cdk.Environment(account=config.account, region=config.region)
    TaskmillStack(app, f"taskmill-{config.name}", config=config, env=env)
    # cdk-nag 3 plugs into CDK's validations: unacknowledged errors fail the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
