"""The CDK app: `python app.py` (what `make synth` runs) and `cdk synth` produce the same
template, because both read cdk.json and write to cdk.out.

A thin user of the construct library, like any user's app (examples/my-app): one
`TaskmillStack` per environment named in cdk.json, holding the `Taskmill` construct. `layers/`
goes on the path so job-type packages placed there import (and so ship)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "layers"))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from taskmill_cdk.config import load_environment  # noqa: E402
from taskmill_cdk.stack import TaskmillStack  # noqa: E402


def build_app(
    context_overrides: dict[str, Any] | None = None, outdir: str | None = None
) -> cdk.App:
    settings = json.loads((ROOT / "cdk.json").read_text())
    # The CDK CLI adds these to the context it passes; set here too, `python app.py` and
    # `cdk synth` write the same template (path metadata, asset metadata, version reporting).
    cli_defaults = {
        "aws:cdk:enable-path-metadata": True,
        "aws:cdk:enable-asset-metadata": True,
        "aws:cdk:version-reporting": True,
    }
    context = {**cli_defaults, **settings["context"], **(context_overrides or {})}
    app = cdk.App(context=context, outdir=outdir or str(ROOT / settings.get("output", "cdk.out")))
    name = str(app.node.try_get_context("env") or "dev")
    config = load_environment(context, name)
    env = cdk.Environment(account=config.account, region=config.region)
    TaskmillStack(app, f"taskmill-{config.name}", config=config, env=env)
    # cdk-nag 3 plugs into CDK's validations: unacknowledged errors fail the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


def main(argv: list[str] | None = None) -> None:
    """`python app.py [--env NAME]`: `make synth ENV=...` without the CDK CLI. Under the CLI
    (`cdk synth -c env=NAME`) the context it passes wins over this default."""
    parser = argparse.ArgumentParser(description="Synthesize the Taskmill CDK app")
    parser.add_argument("--env", help="an environment declared in cdk.json (default: dev)")
    args = parser.parse_args(argv)
    build_app({"env": args.env} if args.env else None).synth()


if __name__ == "__main__":
    main()
