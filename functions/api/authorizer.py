"""The JWT authorizer Lambda that API Gateway calls before protected routes.

It imports only what verifying a token needs (settings, the key, PyJWT): no stores, no
routes, no psycopg, no pydantic (its settings are read by hand, the same rules as
`taskmill.settings.AuthorizerSettings`) and no boto3 (the key is read by one signed HTTPS
call). `bench/bench_cold_start.py` times its cold start as deployed and lists what it loads.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from taskmill.auth.authorizer import AuthorizerDenied, authorize
from taskmill.auth.authorizer_settings import load_authorizer_settings
from taskmill.auth.keys import token_config
from taskmill.auth.tokens import TokenConfig
from taskmill.lambda_support import PowertoolsMetrics
from taskmill.snapstart import after_restore, initializing_for_snapshot, restore_uniqueness

logger = Logger(service="taskmill-authorizer")
_config: TokenConfig | None = None


def container_config() -> TokenConfig:
    global _config
    if _config is None:
        _config = token_config(load_authorizer_settings())
    return _config


def check(event: dict[str, Any], config: TokenConfig) -> dict[str, Any]:
    try:
        policy, claims = authorize(event, config)
    except AuthorizerDenied:
        PowertoolsMetrics(service="taskmill-authorizer").emit({}, [("AuthFailures", 1, "Count")])
        logger.info("token refused")
        raise
    logger.append_keys(user_id=claims.sub, role=claims.role)
    return policy


if initializing_for_snapshot():
    # SnapStart: the key is read at publication and restored with the snapshot.
    container_config()
    after_restore(restore_uniqueness)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return check(event, container_config())
