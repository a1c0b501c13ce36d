"""The API application: routers, error envelope, body limits, OpenAPI and Swagger UI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from taskmill.api import errors, openapi
from taskmill.api.routes import (
    admin,
    auth,
    flow,
    jobs,
    operations,
    schedules,
    users,
    workers,
)
from taskmill.api.routing import RouteTable, repeated_message, unknown_query_message
from taskmill.api.services import ApiServices
from taskmill.errors import InvalidInput, MethodNotAllowed, TaskmillError

# Each module contributes one Router; a new concern is one more entry here.
ROUTERS: tuple[Callable[[ApiServices], Any], ...] = (
    auth.router,
    users.router,
    jobs.router,
    flow.router,
    workers.router,
    admin.router,
    operations.router,
    schedules.router,
)


def create_app(services: ApiServices) -> APIGatewayRestResolver:
    origins = services.settings.cors_origin_list
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

    routes = RouteTable(app)

    def wrong_method() -> MethodNotAllowed | None:
        """A 405 for a request the resolver took to a templated route at a path that static
        routes serve with other methods (`PATCH /v1/jobs/batch`)."""
        allowed = routes.misrouted()
        return MethodNotAllowed(app.current_event.http_method, allowed) if allowed else None

    def route_checks(
        app: APIGatewayRestResolver, next_middleware: Callable[..., Response[Any]]
    ) -> Response[Any]:
        # Runs for every route, after Powertools validated the parameters it declares (a
        # request failing that is answered by `invalid_request`, which checks the same).
        error = wrong_method()
        if error:
            raise error
        unknown = routes.unknown_query_parameters()
        if unknown:
            raise InvalidInput(unknown_query_message(unknown), details=unknown)
        return next_middleware(app)

    app.use(middlewares=[with_correlation_id, route_checks])

    @app.exception_handler(TaskmillError)
    def domain_error(error: TaskmillError) -> Response[str]:
        return errors.from_domain(error, correlation_id=correlation_id())

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[str]:
        # Validation runs before the middlewares: `GET /v1/jobs/batch` fails it (no job id).
        misrouted = wrong_method()
        if misrouted:
            return domain_error(misrouted)
        unknown = routes.unknown_query_parameters()
        details = routes.repeated_parameters(errors.validation_details(list(error.errors())))
        repeated = repeated_message(details)
        return errors.envelope(
            400,
            "invalid_input",
            "; ".join(
                ["the request is not valid"]
                + ([repeated] if repeated else [])
                + ([unknown_query_message(unknown)] if unknown else [])
            ),
            details + unknown,
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

    # Powertools calls this when no route takes the request's method and path, after it has
    # answered a CORS preflight (an OPTIONS with CORS configured) itself. A path some route
    # serves, asked with another method, is a 405 naming the methods it takes: only requests
    # that passed the authorizer get here, as for any route.
    @app.not_found
    def not_found(error: Exception) -> Response[str]:
        event = app.current_event
        allowed = routes.methods(event.path)
        if allowed:
            return domain_error(MethodNotAllowed(event.http_method, allowed))
        return errors.envelope(404, "not_found", "no such route", correlation_id=correlation_id())

    for build in ROUTERS:
        app.include_router(build(services))

    served: dict[str, str] = {}

    def served_document() -> str:
        # Built on the first request for it (every route is registered by then), once per
        # container: the routes do not change while it lives.
        if "document" not in served:
            served["document"] = json.dumps(openapi.document(app), separators=(",", ":"))
        return served["document"]

    @app.get("/v1/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[str]:
        return Response(200, "application/json", served_document())

    @app.get("/v1/docs", include_in_schema=False)
    def swagger_ui() -> Response[str]:
        return Response(200, "text/html; charset=utf-8", openapi.swagger_page())

    return app
