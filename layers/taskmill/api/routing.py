"""What the resolver's own routes take, read from them so nothing is declared twice: the
methods a path is served with (a 405's `Allow`) and the query parameters a route declares
(any other is refused, not ignored)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Route

# The `type` of a field error for a query parameter given more than once.
REPEATED = "repeated_parameter"


class RouteTable:
    """Powertools keeps the routes in two lists and matches a request against the static
    ones first, then the templated ones, for its method only: `PATCH /v1/jobs/batch` went to
    `PATCH /v1/jobs/<job_id>` as if `batch` were a job id. Here a path a static route serves
    is that route's path, whatever the method (tests/integration/api/test_routing.py fails if
    Powertools' lists change)."""

    def __init__(self, app: APIGatewayRestResolver) -> None:
        self._app = app
        self._query: dict[Route, frozenset[str]] = {}

    @cached_property
    def _static(self) -> frozenset[Route]:
        # Read at the first request: every route is registered by then.
        return frozenset(self._app._static_routes)

    @cached_property
    def _templated(self) -> dict[Route, tuple[Route, ...]]:
        """Each templated route, with the static routes whose path it also matches (for most,
        none: checking a request costs nothing then)."""
        return {
            route: tuple(s for s in self._app._static_routes if route.rule.match(s.path))
            for route in self._app._dynamic_routes
        }

    def methods(self, path: str) -> list[str]:
        """The methods some route takes at `path` (none: no route serves it)."""
        for routes in (self._static, self._templated):  # a static path is its own
            found = {route.method.upper() for route in routes if route.rule.match(path)}
            if found:
                return sorted(found)
        return []

    def misrouted(self) -> list[str]:
        """When the current request went to a templated route at a path static routes serve
        (`PATCH /v1/jobs/batch`), the methods those take (a 405); else none."""
        route: Route | None = self._app.context.get("_route")
        shadowing = self._templated.get(route, ()) if route is not None else ()
        if not shadowing:
            return []
        path = self._app.current_event.path
        return sorted({s.method.upper() for s in shadowing if s.rule.match(path)})

    def _declared_query(self, route: Route) -> frozenset[str]:
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
        if not given or not (route in self._static or route in self._templated):
            return []
        takes = self._declared_query(route)
        unknown = sorted(set(given) - takes)
        if not unknown:
            return []
        message = (
            f"not a query parameter of this route, which takes {', '.join(sorted(takes))}"
            if takes
            else "not a query parameter of this route, which takes none"
        )
        return [
            {"loc": ["query", name], "msg": message, "type": "extra_forbidden"} for name in unknown
        ]

    def repeated_parameters(self, details: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`details` (the field errors of a request that failed validation) with the error of
        each query parameter or header the request gives more than once replaced by one saying
        so: each takes one value, and the resolver validates the list of them as that value:
        without this, `?limit=1&limit=2` read "Input should be a valid integer",
        `?status=queued&status=failed` that `queued` is not a status, and two
        `Idempotency-Key` headers (API Gateway hands over both) "Input should be a valid
        string"."""
        event = self._app.current_event
        counts: dict[tuple[str, str], int] = {}
        for name, values in (event.multi_value_query_string_parameters or {}).items():
            counts[("query", name)] = len(values)
        for name, values in (event.multi_value_headers or {}).items():
            # Header names are case-insensitive; the resolver reports them in lower case.
            key = ("header", name.lower())
            counts[key] = counts.get(key, 0) + len(values)
        counts = {key: n for key, n in counts.items() if n > 1}
        if not counts:
            return details
        out: list[dict[str, Any]] = []
        said: set[tuple[str, str]] = set()
        for detail in details:
            loc = detail.get("loc") or []
            place = (str(loc[0]), str(loc[1])) if len(loc) == 2 else None
            if place is not None and place in counts:
                if place in said:
                    continue
                said.add(place)
                detail = {
                    "loc": list(place),
                    "msg": f"given {counts[place]} times; this parameter takes one value",
                    "type": REPEATED,
                }
            out.append(detail)
        return out


def unknown_query_message(details: list[dict[str, Any]]) -> str:
    names = ", ".join(f"'{detail['loc'][-1]}'" for detail in details)
    return f"unknown query parameter{'s' if len(details) > 1 else ''} {names}"


def repeated_message(details: list[dict[str, Any]]) -> str | None:
    """`query parameter 'status' given more than once; header 'idempotency-key' given more
    than once`, for the repeated ones among `details`."""
    parts = []
    for location, label in (("query", "query parameter"), ("header", "header")):
        names = [
            f"'{d['loc'][-1]}'"
            for d in details
            if d.get("type") == REPEATED and d["loc"][0] == location
        ]
        if names:
            parts.append(
                f"{label}{'s' if len(names) > 1 else ''} {', '.join(names)} given more than once"
            )
    return "; ".join(parts) or None
