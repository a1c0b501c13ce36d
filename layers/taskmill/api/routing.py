"""What the resolver's own routes take, read from them so nothing is declared twice: the
methods a path is served with (a 405's `Allow`) and the query parameters a route declares
(any other is refused, not ignored)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Route


class RouteTable:
    def __init__(self, app: APIGatewayRestResolver) -> None:
        self._app = app
        self._query: dict[Route, frozenset[str]] = {}

    def routes(self) -> list[Route]:
        # Powertools keeps the routes in these two lists and matches in this order (static
        # first); tests/integration/api/test_routing.py fails if that ever changes.
        return self._app._static_routes + self._app._dynamic_routes

    @cached_property
    def _registered(self) -> frozenset[Route]:
        # Read at the first request: every route is registered by then.
        return frozenset(self.routes())

    def methods(self, path: str) -> list[str]:
        """The methods some route takes at `path` (none: no route serves it)."""
        return sorted({route.method.upper() for route in self.routes() if route.rule.match(path)})

    def query_parameters(self, route: Route) -> frozenset[str]:
        """The query parameters `route` declares, as Powertools reads them from its signature
        (once per route and container)."""
        if route not in self._query:
            self._query[route] = frozenset(field.alias for field in route.dependant.query_params)
        return self._query[route]

    def unknown_query_parameters(self) -> list[dict[str, Any]]:
        """A field error for each query parameter the current request sends that its route
        does not take; none when no route took the request (a 404 or 405 says why)."""
        given = self._app.current_event.query_string_parameters
        route = self._app.context.get("_route")
        if not given or route not in self._registered:
            return []
        takes = self.query_parameters(route)
        unknown = sorted(set(given) - takes)
        message = (
            f"not a query parameter of this route, which takes {', '.join(sorted(takes))}"
            if takes
            else "not a query parameter of this route, which takes none"
        )
        return [
            {"loc": ["query", name], "msg": message, "type": "extra_forbidden"} for name in unknown
        ]


def unknown_query_message(details: list[dict[str, Any]]) -> str:
    names = ", ".join(f"'{detail['loc'][-1]}'" for detail in details)
    return f"unknown query parameter{'s' if len(details) > 1 else ''} {names}"
