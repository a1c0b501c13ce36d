"""What the recovery sweep says while a dependency it needs is down: one warning line per
failed run and one line when a run succeeds again, instead of a traceback every run.

Only `DependencyUnavailable` (Postgres, SQS or Secrets Manager unreachable: the run did
nothing, the next one retries) is reported so; any other error is a bug and keeps its
traceback wherever the caller lets it go."""

from __future__ import annotations

import logging
from typing import Any

from taskmill.errors import DependencyUnavailable


class SweepOutage:
    """Counts consecutive failed runs of one sweeper process (a Lambda container, the local
    stack): a new container does not know the runs of the one before it."""

    def __init__(self, logger: logging.Logger | Any) -> None:
        self.logger = logger
        self.failed_runs = 0

    def failed(self, error: DependencyUnavailable) -> None:
        self.failed_runs += 1
        self.logger.warning(
            f"recovery sweep did not run: {error.message} "
            f"({self.failed_runs} failed run{'s' if self.failed_runs > 1 else ''} in a row); "
            "the next scheduled run retries",
            extra={"error_code": error.code, "failed_runs": self.failed_runs},
        )

    def succeeded(self) -> None:
        if not self.failed_runs:
            return
        # A warning too, so whoever saw the failures (the local stack shows warnings only)
        # also sees them end.
        self.logger.warning(
            f"recovery sweep ran again after {self.failed_runs} failed "
            f"run{'s' if self.failed_runs > 1 else ''}",
            extra={"failed_runs": self.failed_runs},
        )
        self.failed_runs = 0
