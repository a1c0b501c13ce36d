"""API Gateway: which routes the authorizer guards, stage settings, error shapes, WAF,
compression."""

from __future__ import annotations

import json
from typing import Any

import pytest
from taskmill.api.gateway_responses import GATEWAY_RESPONSES, MIN_COMPRESSION_BYTES
from taskmill.api.public import PUBLIC_ROUTES

from tests.infrastructure.conftest import Synthesized


class Routes:
    """API Gateway's REST routing over the synthesized resources: an exact path part wins,
    then `{proxy+}`; a method wins over ANY; no backtracking to a sibling branch."""

    def __init__(self, synthesized: Synthesized) -> None:
        [(api_id, _)] = synthesized.of_type("AWS::ApiGateway::RestApi").items()
        self.root = {"Fn::GetAtt": [api_id, "RootResourceId"]}
        self.children: dict[str, dict[str, str]] = {}
        for logical, resource in synthesized.of_type("AWS::ApiGateway::Resource").items():
            parent = json.dumps(resource["Properties"]["ParentId"], sort_keys=True)
            self.children.setdefault(parent, {})[resource["Properties"]["PathPart"]] = logical
        self.methods: dict[tuple[str, str], dict[str, Any]] = {}
        for method in synthesized.of_type("AWS::ApiGateway::Method").values():
            props = method["Properties"]
            self.methods[(json.dumps(props["ResourceId"], sort_keys=True), props["HttpMethod"])] = (
                props
            )

    def resolve(self, verb: str, path: str) -> dict[str, Any] | None:
        node = json.dumps(self.root, sort_keys=True)
        parts = [p for p in path.split("/") if p]
        for index, part in enumerate(parts):
            children = self.children.get(node, {})
            if part in children:
                node = json.dumps({"Ref": children[part]}, sort_keys=True)
            elif "{proxy+}" in children:
                node = json.dumps({"Ref": children["{proxy+}"]}, sort_keys=True)
                break
            else:
                return None
            if index == len(parts) - 1:
                break
        return self.methods.get((node, verb)) or self.methods.get((node, "ANY"))


PROTECTED_REQUESTS = [
    ("GET", "/v1/auth/me"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/2f1e/status"),
    ("POST", "/v1/jobs/2f1e/cancel"),
    ("GET", "/v1/users"),
    ("POST", "/v1/workers/claim"),
    ("GET", "/v1/admin/dlq"),
    ("POST", "/v1/health"),  # a public path with another verb
    ("GET", "/v1/auth/login"),
    ("GET", "/v1/docs/extra"),
    ("GET", "/elsewhere"),
]


def test_authorizer_guards_every_route_but_the_public_ones(dev: Synthesized) -> None:
    routes = Routes(dev)
    [(authorizer_id, authorizer)] = dev.of_type("AWS::ApiGateway::Authorizer").items()
    assert authorizer["Properties"]["Type"] == "TOKEN"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    function = dev.logical_id(dev.stack.taskmill.api.authorizer_function)
    assert function in json.dumps(authorizer["Properties"]["AuthorizerUri"])
    for verb, path in sorted(PUBLIC_ROUTES):
        method = routes.resolve(verb, path)
        assert method is not None, (verb, path)
        assert method["AuthorizationType"] == "NONE", (verb, path)
    for verb, path in PROTECTED_REQUESTS:
        method = routes.resolve(verb, path)
        assert method is not None, (verb, path)
        assert method["AuthorizationType"] == "CUSTOM", (verb, path)
        assert method["AuthorizerId"] == {"Ref": authorizer_id}
        assert method["RequestParameters"] == {"method.request.header.Authorization": True}


def test_no_method_is_open_by_accident(dev: Synthesized) -> None:
    open_methods = [
        m["Properties"]
        for m in dev.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["AuthorizationType"] == "NONE"
    ]
    verbs = sorted(m["HttpMethod"] for m in open_methods if m["HttpMethod"] != "OPTIONS")
    assert verbs == sorted(verb for verb, _ in PUBLIC_ROUTES)
    # OPTIONS (CORS preflight) is answered by API Gateway itself, never by a function.
    for method in open_methods:
        if method["HttpMethod"] == "OPTIONS":
            assert method["Integration"]["Type"] == "MOCK"


def test_stage_throttles_logs_and_traces(dev: Synthesized, prod: Synthesized) -> None:
    for synthesized in (dev, prod):
        [stage] = synthesized.of_type("AWS::ApiGateway::Stage").values()
        props = stage["Properties"]
        assert props["StageName"] == synthesized.config.name
        assert props["TracingEnabled"] is True
        assert "DestinationArn" in props["AccessLogSetting"]
        access_format = json.loads(props["AccessLogSetting"]["Format"])
        assert {"requestId", "status", "ip"} <= set(access_format)
        [settings] = props["MethodSettings"]
        assert settings["ThrottlingRateLimit"] == synthesized.config.api.throttle_rate_limit
        assert settings["ThrottlingBurstLimit"] == synthesized.config.api.throttle_burst_limit
        assert settings["DataTraceEnabled"] is False


def test_large_answers_are_compressed_by_api_gateway(dev: Synthesized) -> None:
    # The function answers plain text; API Gateway gzips for clients that accept it (the
    # local gateway does the same with the same threshold).
    [api] = dev.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["MinimumCompressionSize"] == MIN_COMPRESSION_BYTES
    assert "BinaryMediaTypes" not in api["Properties"]


@pytest.mark.parametrize("response_type", sorted(GATEWAY_RESPONSES))
def test_gateway_errors_use_the_error_envelope(dev: Synthesized, response_type: str) -> None:
    [response] = [
        r["Properties"]
        for r in dev.of_type("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == response_type
    ]
    body = json.loads(response["ResponseTemplates"]["application/json"])
    assert set(body) == {"error"}
    assert body["error"] == {
        "code": GATEWAY_RESPONSES[response_type].code,
        "message": GATEWAY_RESPONSES[response_type].message,
        "details": None,
    }
    assert response["StatusCode"] == str(GATEWAY_RESPONSES[response_type].status)


def test_cors_allows_the_configured_origins_besides_the_consoles(prod: Synthesized) -> None:
    """prod lists another front end in api.cors_origins; the console's own origin comes first
    (tests/infrastructure/test_console.py)."""
    api = prod.resources[prod.logical_id(prod.stack.taskmill.api.function)]
    origins = api["Properties"]["Environment"]["Variables"]["TASKMILL_CORS_ORIGINS"]
    assert origins["Fn::Join"][1][-1] == ",https://app.example.com"
    preflight = [
        m["Properties"]
        for m in prod.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert preflight
    # Two origins: API Gateway answers the one the request came from (a mapping template).
    response = preflight[0]["Integration"]["IntegrationResponses"][0]
    assert "https://app.example.com" in json.dumps(response)


def test_api_gateways_own_errors_are_readable_from_every_allowed_origin(
    dev: Synthesized, prod: Synthesized
) -> None:
    """A 401 for an expired token is answered by API Gateway, not the function: a browser app
    reads its envelope (and signs in again) only if it carries CORS headers for the app's
    origin. prod allows two (the console's and app.example.com): a gateway response cannot
    pick one of a list, so it names the request's own; dev's console is its one origin."""

    def cors(synthesized: Synthesized) -> list[dict[str, str]]:
        return [
            {
                name.removeprefix("gatewayresponse.header."): value
                for name, value in r["Properties"]["ResponseParameters"].items()
                if "Origin" in name or name.endswith("Vary")
            }
            for r in synthesized.of_type("AWS::ApiGateway::GatewayResponse").values()
        ]

    reflected = {"Access-Control-Allow-Origin": "method.request.header.Origin", "Vary": "'Origin'"}
    assert cors(prod) == [reflected] * len(GATEWAY_RESPONSES)
    [dev_cors] = [json.loads(c) for c in {json.dumps(c) for c in cors(dev)}]
    assert set(dev_cors) == {"Access-Control-Allow-Origin"}  # one origin: no Vary
    assert "'https://" in json.dumps(dev_cors["Access-Control-Allow-Origin"])


def test_prod_has_a_rate_limiting_waf_on_the_stage_and_dev_none(
    dev: Synthesized, prod: Synthesized
) -> None:
    assert dev.of_type("AWS::WAFv2::WebACL") == {}
    [(acl_id, acl)] = prod.of_type("AWS::WAFv2::WebACL").items()
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    rate = rules["RatePerIp"]["Statement"]["RateBasedStatement"]
    assert rate == {"AggregateKeyType": "IP", "Limit": prod.config.api.waf_rate_limit}
    assert rules["RatePerIp"]["Action"] == {"Block": {}}
    [association] = prod.of_type("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    [stage_id] = prod.of_type("AWS::ApiGateway::Stage")
    assert stage_id in json.dumps(association["Properties"]["ResourceArn"])
