"""Running jobs delivered by SQS: claim, run, record, release dependents."""
