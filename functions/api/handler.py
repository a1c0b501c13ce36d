"""The HTTP API Lambda (behind API Gateway's REST API and the JWT authorizer).

Traced by Lambda's active tracing rather than the Powertools Tracer: the X-Ray SDK the Tracer
imports costs ~300 ms of every cold start, which a user waits for on this function.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.api.app import create_app
from taskmill.api.request_checks import check_request
from taskmill.api.services import ApiServices, build_services
from taskmill.lambda_support import PowertoolsMetrics
from taskmill.settings import ApiSettings, load_settings
from taskmill.snapstart import after_restore, initializing_for_snapshot, restore_uniqueness

logger = Logger(service="taskmill-api")
_app: tuple[APIGatewayRestResolver, ApiServices] | None = None


def container_app() -> tuple[APIGatewayRestResolver, ApiServices]:
    """Built on the first request of a container: settings validated, key read, routes set."""
    global _app
    if _app is None:
        services = build_services(load_settings(ApiSettings), logger=logger)
        _app = (create_app(services), services)
    return _app


def handle(
    event: dict[str, Any], context: Any, app: APIGatewayRestResolver, services: ApiServices
) -> dict[str, Any]:
    response = check_request(event, max_body_bytes=services.settings.max_body_bytes)
    response = response or app.resolve(event, context)
    services.metrics.flush(PowertoolsMetrics(service="taskmill-api"))
    return response


def restored() -> None:
    """After a SnapStart restore: unique state made again, no connection from the snapshot."""
    restore_uniqueness()
    if _app is not None:
        _app[1].db.close()


if initializing_for_snapshot():
    # SnapStart: built once at publication and restored everywhere (taskmill.snapstart).
    container_app()
    after_restore(restored)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app, services = container_app()
    return handle(event, context, app, services)
