"""The API application: routers, error envelope, body limits, OpenAPI and Swagger UI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from taskmill.api import errors
from taskmill.api.routes import admin, auth, jobs, operations, schedules, users, workers
from taskmill.api.services import ApiServices
from taskmill.errors import TaskmillError

TITLE = "Taskmill API"
VERSION = "1.0.0"
# Each module contributes one Router; a new concern is one more entry here.
ROUTERS: tuple[Callable[[ApiServices], Any], ...] = (
    auth.router,
    users.router,
    jobs.router,
    workers.router,
    admin.router,
    operations.router,
    schedules.router,
)
DOCS_PATH = "/v1/docs"


def security_schemes() -> dict[str, Any]:
    # Powertools' OpenAPI models (~40 pydantic models) are imported when a document is made,
    # not at every cold start: ~100 ms of the API's cold start without bytecode.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {"bearer": HTTPBearer(bearerFormat="JWT")}


def create_app(services: ApiServices) -> APIGatewayRestResolver:
    origins = [o.strip() for o in services.settings.cors_origins.split(",") if o.strip()]
    cors = (
        CORSConfig(
            allow_origin=origins[0],
            extra_origins=origins[1:],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=[errors.CORRELATION_HEADER],
        )
        if origins
        else None
    )
    app = APIGatewayRestResolver(enable_validation=True, cors=cors)

    def correlation_id() -> str | None:
        return app.current_event.request_context.request_id

    def with_correlation_id(
        app: APIGatewayRestResolver, next_middleware: Callable[..., Response[Any]]
    ) -> Response[Any]:
        response = next_middleware(app)
        response.headers[errors.CORRELATION_HEADER] = correlation_id() or ""
        return response

    app.use(middlewares=[with_correlation_id])

    @app.exception_handler(TaskmillError)
    def domain_error(error: TaskmillError) -> Response[str]:
        return errors.from_domain(error, correlation_id=correlation_id())

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[str]:
        return errors.envelope(
            400,
            "invalid_input",
            "the request is not valid",
            errors.validation_details(list(error.errors())),
            correlation_id=correlation_id(),
        )

    @app.exception_handler(json.JSONDecodeError)
    def bad_json(error: json.JSONDecodeError) -> Response[str]:
        return errors.envelope(
            400, "invalid_input", "the body is not valid JSON", correlation_id=correlation_id()
        )

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[str]:
        # The boundary of the API: log everything (with the id the client gets back) and
        # answer without any internal detail.
        services.logger.exception("unhandled error", extra={"correlation_id": correlation_id()})
        return errors.envelope(
            500,
            "internal_error",
            "something went wrong on our side; quote the correlation id when reporting it",
            correlation_id=correlation_id(),
        )

    @app.not_found
    def not_found(error: Exception) -> Response[str]:
        return errors.envelope(404, "not_found", "no such route", correlation_id=correlation_id())

    for build in ROUTERS:
        app.include_router(build(services))

    @app.get("/v1/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(200, "application/json", openapi_document(app))

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> Response[str]:
        return swagger_ui(app)

    return app


def swagger_ui(app: APIGatewayRestResolver) -> Response[str]:
    """Powertools' Swagger UI page (`enable_swagger`'s, with the bundled assets), made when
    asked for: `enable_swagger` imports the OpenAPI models as the app is built, that is at
    every cold start. `?format=json` answers the document itself."""
    from aws_lambda_powertools.event_handler import api_gateway
    from aws_lambda_powertools.event_handler.openapi.models import Server
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import (
        generate_oauth2_redirect_html,
        generate_swagger_html,
    )

    query = app.current_event.query_string_parameters or {}
    if query.get("format") == "oauth2-redirect":
        return Response(200, "text/html", generate_oauth2_redirect_html())
    # "Try it out" calls go under the stage, as enable_swagger's do (unless a custom domain
    # maps the API without it).
    context = app.current_event.request_context
    stage = context.stage
    under_stage = bool(stage) and stage != "$default" and context.path.startswith(f"/{stage}")
    servers = [Server(url=f"/{stage}" if under_stage else "/")]
    spec = openapi_document(app, servers).replace("</", "<\\/")  # no </script> in the page
    if query.get("format") == "json":
        return Response(200, "application/json", spec)
    assets = Path(api_gateway.__file__).parent / "openapi" / "swagger_ui"
    body = generate_swagger_html(
        spec,
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(200, "text/html", body)


def openapi_document(app: APIGatewayRestResolver, servers: list[Any] | None = None) -> str:
    return app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        servers=servers,
        security_schemes=security_schemes(),
        security=[{"bearer": []}],
        description="Submit, watch and operate jobs. Errors are "
        '`{"error": {"code", "message", "details"}}`.',
    )
