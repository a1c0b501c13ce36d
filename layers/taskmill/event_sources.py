"""The worker's SQS event source mappings: every Lambda API call about them goes here.

A paused queue (SPEC §6) is held back by the claim wherever the worker runs; in AWS its
event source mapping is also disabled, so no invocation is spent on it while it is paused.
Locally there are no mappings: the pollers read the pause itself (`local/pollers.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from taskmill.aws import aws_errors, new_client
from taskmill.errors import DependencyUnavailable
from taskmill.topology import Priority


def default_lambda_client() -> Any:
    return new_client("lambda")


class EventSources:
    def __init__(
        self,
        mapping_ids: Mapping[Priority, str],
        *,
        client_factory: Callable[[], Any] = default_lambda_client,
        logger: logging.Logger | Any = None,
    ) -> None:
        self._ids = dict(mapping_ids)
        self._client_factory = client_factory
        self._client: Any = None
        self.logger = logger or logging.getLogger("taskmill.event_sources")

    @property
    def configured(self) -> bool:
        return bool(self._ids)

    def _lambda(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def set_enabled(self, priority: Priority, *, enabled: bool) -> None:
        """Enable or disable the mapping of `priority`'s queue (nothing without mappings)."""
        mapping_id = self._ids.get(priority)
        if mapping_id is None:
            return
        try:
            self._lambda().update_event_source_mapping(UUID=mapping_id, Enabled=enabled)
        except aws_errors() as exc:
            raise DependencyUnavailable(
                f"the {priority.value} queue's event source mapping could not be "
                f"{'enabled' if enabled else 'disabled'}; the pause is recorded, try again"
            ) from exc

    def sync(self, paused: Iterable[Priority]) -> list[Priority]:
        """Make every mapping match the pauses (a pause or resume whose Lambda call failed);
        returns the priorities changed. A mapping being updated is left for the next run."""
        paused = set(paused)
        changed = []
        for priority, mapping_id in self._ids.items():
            want = priority not in paused
            try:
                state = self._lambda().get_event_source_mapping(UUID=mapping_id)["State"]
                enabled = state in ("Enabled", "Enabling", "Updating")
                if state in ("Enabling", "Disabling", "Updating", "Creating"):
                    continue
                if enabled != want:
                    self._lambda().update_event_source_mapping(UUID=mapping_id, Enabled=want)
                    changed.append(priority)
            except aws_errors():
                self.logger.warning(
                    "could not check an event source mapping",
                    extra={"priority": priority.value, "mapping": mapping_id},
                )
        return changed
