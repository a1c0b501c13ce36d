"""What the resolver's own routes take, read from them so nothing is declared twice: the
methods a path is served with (a 405's `Allow`)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Route


class RouteTable:
    def __init__(self, app: APIGatewayRestResolver) -> None:
        self._app = app

    def routes(self) -> list[Route]:
        # Powertools keeps the routes in these two lists and matches in this order (static
        # first); tests/integration/api/test_routing.py fails if that ever changes.
        return self._app._static_routes + self._app._dynamic_routes

    def methods(self, path: str) -> list[str]:
        """The methods some route takes at `path` (none: no route serves it)."""
        return sorted({route.method.upper() for route in self.routes() if route.rule.match(path)})
