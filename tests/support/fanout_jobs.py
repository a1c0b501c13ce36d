"""The README's workflow example (fan-out to N children, a final job summing their results),
word for word: tests/unit/test_readme_example.py checks the README shows this file, and
tests/e2e/test_workflows.py runs it on the local stack
(`TASKMILL_JOB_MODULES=tests.support.fanout_jobs`)."""

from pydantic import BaseModel, Field


class FanOut(BaseModel):
    count: int = Field(ge=1, le=100)


class Square(BaseModel):
    n: int


def register(registry):
    @registry.register("example.fanout", payload=FanOut)
    def fan_out(context, payload: FanOut):
        """Squares 1..count in child jobs, then sums them in a last child."""
        parts = [context.submit("example.square", {"n": n}) for n in range(1, payload.count + 1)]
        total = context.submit("example.sum", depends_on=parts)
        return {"parts": [str(part) for part in parts], "total": str(total)}

    @registry.register("example.square", payload=Square)
    def square(context, payload: Square):
        return {"value": payload.n * payload.n}

    @registry.register("example.sum")
    def total(context, payload):
        # Runs once every part succeeded: their results keyed by job id.
        return {"sum": sum(r["value"] for r in context.dependency_results.values())}
