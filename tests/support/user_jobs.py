"""A small job module used to test TASKMILL_JOB_MODULES loading."""

from __future__ import annotations

from pydantic import BaseModel
from taskmill.jobtypes.registry import JobTypeRegistry


class GreetPayload(BaseModel):
    name: str


def register(registry: JobTypeRegistry) -> None:
    @registry.register("greet", payload=GreetPayload, priority="high", max_attempts=7)
    def greet(context: object, payload: GreetPayload) -> dict[str, str]:
        """Says hello."""
        return {"greeting": f"hello {payload.name}"}
