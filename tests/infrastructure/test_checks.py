"""cdk-nag and cfn-lint on both environments' templates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infrastructure.conftest import Synthesized


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cdk_nag_has_no_unacknowledged_findings(env: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(env)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    assert [plugin["pluginName"] for plugin in report["pluginReports"]] == ["AwsSolutions"]
    findings = [
        (violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
    ]
    assert findings == []


def test_cfn_lint_finds_nothing_in_either_template(dev: Synthesized, prod: Synthesized) -> None:
    # W3005 (DependsOn beside a GetAtt) is how CDK writes every Lambda's role dependency.
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--ignore-checks",
            "W3005",
            "--format",
            "parseable",
            "--",
            str(dev.template_path),
            str(prod.template_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout == "", result.stdout
    assert result.returncode == 0, result.stderr


def test_cdk_nag_blocks_a_non_compliant_resource(tmp_path: object) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path))
    sqs.Queue(cdk.Stack(app, "probe"), "PlainQueue")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    with pytest.raises(Exception, match="AwsSolutions-SQS4"):
        app.synth()
