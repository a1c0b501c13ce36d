"""Postgres access: one lazily opened connection per container and error translation."""

from taskmill.db.connection import Database, Transaction, translate_errors

__all__ = ["Database", "Transaction", "translate_errors"]
