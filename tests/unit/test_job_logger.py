"""A job body's logger in Lambda, where the platform's logger is Powertools': each line
points at the body's code, and a body's `extra` never fails it."""

from __future__ import annotations

import io
import json
from typing import Any
from uuid import uuid4

from aws_lambda_powertools import Logger
from taskmill.jobs.model import Job
from taskmill.worker.context import JobLogger


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_powertools_lines_name_the_bodys_location_and_keep_clashing_keys() -> None:
    stream = io.StringIO()
    # A service of its own: Powertools reuses the standard logger named after the service,
    # and one that another test already set up keeps its handler (and ignores `stream`).
    platform = Logger(service=f"job-logger-test-{uuid4()}", stream=stream)
    keys: dict[str, Any] = {"id": uuid4(), "type": "resize", "correlation_id": "c", "attempts": 1}
    job = Job.model_construct(**keys)  # only what a log line carries
    logger = JobLogger(platform, job)

    def body() -> None:
        logger.info("resized", extra={"message": "mine", "levelname": "x", "step": 2})
        try:
            raise ValueError("disk full")
        except ValueError:
            logger.exception("could not save")

    body()
    resized, failed = _lines(stream)
    # Powertools writes `location` as function:line; the wrapper's would be "_log:...".
    assert str(resized["location"]).startswith("body:")
    assert str(failed["location"]).startswith("body:")
    assert (resized["message"], resized["extra_message"], resized["extra_levelname"]) == (
        "resized",
        "mine",
        "x",
    )
    assert (resized["step"], resized["job_id"], resized["level"]) == (2, str(job.id), "INFO")
    assert "disk full" in str(failed["exception"])
