"""API Gateway REST proxy events, with the authorizer step API Gateway performs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from taskmill.api.gateway_responses import UNAUTHORIZED
from taskmill.api.public import is_public
from taskmill.auth.authorizer import AuthorizerDenied

from functions.api.authorizer import check
from functions.api.handler import handle
from taskmill_local.gateway import rest_event as gateway_event
from tests.support.lambda_events import FakeLambdaContext

API_ID = "a1b2c3d4e5"
STAGE = "v1"
ACCOUNT = "123456789012"


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
    authorizer: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """A REST API Lambda proxy integration event, built by the local gateway's converter."""
    all_headers = {
        "Content-Type": "application/json",
        "Host": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
        **(headers or {}),
    }
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else "")
    return gateway_event(method, path, all_headers, text.encode(), authorizer, source_ip)


def token_event(method: str, path: str, token: str | None) -> dict[str, Any]:
    """What API Gateway sends a TOKEN authorizer."""
    return {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {token}" if token else "",
        "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
    }


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]
    # The whole answer as the function returns it (the proxy envelope, serialized): what
    # Lambda's 6 MB limit on a synchronous response applies to.
    envelope_bytes: int = 0

    @property
    def error_code(self) -> str | None:
        return (
            self.body["error"]["code"]
            # A schedule has an `error` field of its own (null unless the sweep disabled it).
            if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict)
            else None
        )


class ApiClient:
    """Calls the API handler the way API Gateway does: authorizer first, then the handler."""

    def __init__(self, app: Any, services: Any) -> None:
        self.app = app
        self.services = services
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
        raw_body: str | None = None,
        remaining_seconds: float = 29.0,
        source_ip: str = "127.0.0.1",
    ) -> ApiResponse:
        token = self.token if token == "default" else token
        authorizer = None
        route = urlsplit(path).path
        if not is_public(method, route):
            try:
                policy = check(token_event(method, route, token), self.services.tokens)
            except AuthorizerDenied:
                return ApiResponse(UNAUTHORIZED.status, json.loads(UNAUTHORIZED.body()), {})
            authorizer = {**policy["context"], "principalId": policy["principalId"]}
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        event = rest_event(
            method,
            path,
            body=body,
            headers=all_headers,
            raw_body=raw_body,
            authorizer=authorizer,
            source_ip=source_ip,
        )
        context = FakeLambdaContext(remaining_seconds=remaining_seconds)
        response = handle(event, context, self.app, self.services)
        text = response.get("body") or ""
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = values[-1]
        return ApiResponse(response["statusCode"], parsed, headers, len(json.dumps(response)))

    def authorizer_context(self, method: str, path: str) -> dict[str, Any]:
        """What API Gateway hands the function from the authorizer for this client's token."""
        policy = check(token_event(method, path, self.token), self.services.tokens)
        return {**policy["context"], "principalId": policy["principalId"]}

    def get(self, path: str, **kw: Any) -> ApiResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("PATCH", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> ApiResponse:
        return self.request("DELETE", path, body, **kw)

    def login(self, email: str, password: str) -> dict[str, Any]:
        response = self.post("/v1/auth/login", {"email": email, "password": password}, token=None)
        assert response.status == 200, response.body
        self.token = response.body["access_token"]
        return response.body
