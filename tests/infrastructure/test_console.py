"""The web console in AWS (taskmill_cdk/console.py): a private bucket behind CloudFront with origin
access control, security headers whose CSP allows this environment's API and nothing else,
config.json written at deploy time with the API's URL, and the API's CORS set to the
console's origin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskmill_cdk.console import CONSOLE_DIR, content_security_policy
from taskmill_local.console import CONTENT_SECURITY_POLICY
from tests.infrastructure.conftest import Synthesized


def one(synthesized: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = synthesized.of_type(resource_type).items()
    return logical_id, resource["Properties"]


def rest_api_id(synthesized: Synthesized) -> str:
    [logical_id] = synthesized.of_type("AWS::ApiGateway::RestApi")
    return logical_id


def test_the_bucket_is_private_and_read_by_cloudfront_through_origin_access_control(
    dev: Synthesized,
) -> None:
    bucket_id, bucket = one(dev, "AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket
    _, oac = one(dev, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert dev.of_type("AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}
    distribution_id, distribution = one(dev, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    [origin] = config["Origins"]
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    _, policy = one(dev, "AWS::S3::BucketPolicy")
    reads = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    [read] = reads
    assert read["Action"] == "s3:GetObject"
    assert read["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Join"][1][-1] == {
        "Ref": distribution_id
    }
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert config["DefaultRootObject"] == "index.html"
    assert bucket_id in json.dumps(origin)


def test_security_headers_and_a_csp_that_allows_only_this_environments_api(
    dev: Synthesized,
) -> None:
    policy_id, policy = one(dev, "AWS::CloudFront::ResponseHeadersPolicy")
    _, distribution = one(dev, "AWS::CloudFront::Distribution")
    behavior = distribution["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    security = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert security["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    csp = security["ContentSecurityPolicy"]
    assert csp["Override"] is True
    parts = csp["ContentSecurityPolicy"]["Fn::Join"][1]
    # connect-src is the API's own origin, built from its id: https://<id>.execute-api....
    assert parts[0].endswith("connect-src https://")
    assert parts[1] == {"Ref": rest_api_id(dev)}
    assert parts[2] == f".execute-api.{dev.stack.region}."
    assert parts[3] == {"Ref": "AWS::URLSuffix"}
    text = "".join(p if isinstance(p, str) else "X" for p in parts)
    directives = dict(d.strip().split(" ", 1) for d in text.split(";"))
    assert directives["connect-src"] == "https://X.execute-api.us-east-1.X"
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "unsafe" not in text
    assert "*" not in text


def test_the_local_console_is_served_with_the_same_policy() -> None:
    assert content_security_policy("'self'") == CONTENT_SECURITY_POLICY


def test_the_files_and_a_config_json_with_the_api_url_are_deployed(dev: Synthesized) -> None:
    _, deployment = one(dev, "Custom::CDKBucketDeployment")
    files_key, config_key = deployment["SourceObjectKeys"]
    files = dev.outdir / f"asset.{files_key.removesuffix('.zip')}"
    shipped = {p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file()}
    expected = {
        p.relative_to(CONSOLE_DIR).as_posix() for p in CONSOLE_DIR.rglob("*") if p.is_file()
    }
    assert shipped == expected
    assert "index.html" in shipped
    assert "js/main.js" in shipped
    config = (dev.outdir / f"asset.{config_key.removesuffix('.zip')}" / "config.json").read_text()
    # The API URL is a deploy-time value: a marker the deployment replaces with the stage's
    # URL (a JSON string), so config.json is {"apiUrl": "https://<id>.execute-api.../<stage>/"}.
    [(marker, value)] = deployment["SourceMarkers"][1].items()
    assert config == f'{{"apiUrl":{marker}}}'
    parts = value["Fn::Join"][1]
    assert parts[0] == '"https://'
    assert parts[1] == {"Ref": rest_api_id(dev)}
    assert parts[-1] == '/"'
    assert any("ApiRestApiDeploymentStage" in json.dumps(p) for p in parts)
    assert deployment["SystemMetadata"] == {"cache-control": "no-cache"}
    assert deployment["Prune"] is True
    assert deployment["DistributionPaths"] == ["/*"]


def test_the_deployment_function_needs_no_docker(dev: Synthesized) -> None:
    """BucketDeployment's handler is the CDK's own zip asset: synth (this session's, with
    bundling) ran without a Docker engine."""
    function = dev.stack.taskmill.console.deployment.handler_role.node.scope
    handler = dev.resources[dev.logical_id(function)]["Properties"]
    assert handler["Code"]["S3Key"].endswith(".zip")
    assert "ImageUri" not in handler["Code"]
    assert handler["Runtime"].startswith("python")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_api_allows_the_consoles_origin_and_no_wildcard(
    env: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(env)
    distribution_id, _ = one(synthesized, "AWS::CloudFront::Distribution")
    console_origin = {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]
    }
    api = synthesized.resources[synthesized.logical_id(synthesized.stack.taskmill.api.function)]
    origins = api["Properties"]["Environment"]["Variables"]["TASKMILL_CORS_ORIGINS"]
    extra = ",".join(synthesized.config.api.cors_origins)
    assert json.dumps(origins).count(distribution_id) == 1
    assert "*" not in json.dumps(origins)
    if extra:
        assert origins["Fn::Join"][1][-1] == f",{extra}"
    else:
        assert origins == console_origin
    preflight = [
        m["Properties"]
        for m in synthesized.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert preflight
    for method in preflight:
        response = method["Integration"]["IntegrationResponses"][0]
        allowed = json.dumps(response)
        assert distribution_id in allowed
        assert "'*'" not in allowed


def test_the_stack_outputs_the_console_url(dev: Synthesized) -> None:
    outputs = dev.template.to_json()["Outputs"]
    assert "ConsoleUrl" in outputs
    assert "DomainName" in json.dumps(outputs["ConsoleUrl"]["Value"])


def test_a_wildcard_cors_origin_is_refused_while_the_console_is_on() -> None:
    from taskmill_cdk.config import load_environment

    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    dev = context["environments"]["dev"]
    wildcard = {"environments": {"dev": {**dev, "api": {**dev["api"], "cors_origins": ["*"]}}}}
    with pytest.raises(SystemExit, match="console is on"):
        load_environment(wildcard, "dev")
    off = {**dev, "api": {**dev["api"], "cors_origins": ["*"]}, "console": {"enabled": False}}
    assert load_environment({"environments": {"dev": off}}, "dev").api.cors_origins == ("*",)
