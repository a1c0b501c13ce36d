"""What happens to a job around its run: submitting it, sending its message, recording its
outcome (retry decision, dead-lettering, resending, releasing dependents, completion
webhooks) and firing schedules. The API, the worker, the ECS-events handler and the recovery
sweep all come through here; `jobs/`, `queue/` and `jobtypes/` below know nothing of each
other's part."""
