"""The one factory for AWS clients: every function's boto3 clients share these limits.

Why these figures: an API request must answer before API Gateway's 29 s integration timeout,
or the client sees 504, retries and may create a duplicate. botocore's defaults (60 s connect
and read timeouts, legacy retries, 5 attempts) can hold one SQS call for minutes during a
brownout. With a 2 s connect timeout, a 5 s read timeout and 2 attempts in standard retry
mode, one call gives up after at most 2 x (2 + 5) s + one jittered backoff (< 1 s) = 15 s.
`docs/ARCHITECTURE.md` adds up what an API request can spend around it.

SQS, Secrets Manager, Lambda, ECS and SES answer in milliseconds in-region, so 5 s of read
timeout only cuts off calls that were not going to succeed. The one long poll, a DLQ scan's
(`taskmill.recovery.dlq`), waits 1 s: well inside the read timeout (the event source mapping
receives for the worker).
"""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 2  # in total, the first call included
RETRY_MODE = "standard"
# The longest one call can take: every attempt timing out, plus standard mode's jittered
# backoff before the second attempt (at most 1 s, for a throttling error).
WORST_CALL_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 1


def client_config() -> Any:
    # botocore is imported on first use: it costs ~200 ms of cold start, which the
    # authorizer (no AWS call after its key is read) and local tests should not pay early.
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    )


def new_client(service: str) -> Any:
    """A boto3 client with the platform's timeouts and retries. Endpoint, region and
    credentials come from the environment as usual (`AWS_ENDPOINT_URL` locally)."""
    import boto3

    return boto3.client(service, config=client_config())


def aws_errors() -> tuple[type[Exception], ...]:
    """What a failed AWS call raises; for the adapters that translate it (evaluated only
    when something was raised, so botocore is not imported for nothing)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)
