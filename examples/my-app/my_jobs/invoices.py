"""A code job type of the example app: `invoice.total` adds up an invoice's lines."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field
from taskmill.jobtypes.registry import JobTypeRegistry


class Line(BaseModel):
    description: str
    quantity: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0)


class Invoice(BaseModel):
    number: str
    lines: list[Line] = Field(min_length=1)


def register(registry: JobTypeRegistry) -> None:
    @registry.register("invoice.total", payload=Invoice, max_attempts=3, timeout_seconds=30)
    def total(context: object, payload: Invoice) -> dict[str, str]:
        amount = sum((line.unit_price * line.quantity for line in payload.lines), Decimal(0))
        return {"invoice": payload.number, "total": str(amount)}
