"""The authorizer's settings, read without pydantic.

The authorizer verifies a JWT and nothing else; importing pydantic and building the settings
models cost about half of its cold start as deployed (no bytecode: ~150 of ~320 ms). These
are the same variables and the same rules as `taskmill.settings.AuthorizerSettings` (the
reference: `tests/unit/test_authorizer_settings.py` feeds both the same environments and
expects the same values and the same refusals), checked by hand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from taskmill.errors import SettingsError

PREFIX = "TASKMILL_"
MIN_SECRET_LENGTH = 32
ACCESS_TTL_RANGE = (60, 24 * 3600)
MIN_REFRESH_TTL = 3600
# What pydantic's lax mode takes for an int from a string: ASCII digits (underscores between
# them), a sign, a fraction of zeros, surrounding blanks.
_INTEGER = re.compile(r"\s*([+-]?[0-9](?:_?[0-9])*)(?:\.0+)?\s*", re.ASCII)


class PlainSecret:
    """What the code reads from pydantic's `SecretStr`: a value that never prints."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "PlainSecret('**********')"


@dataclass(frozen=True)
class LightAuthorizerSettings:
    stage: str = "local"
    jwt_secret: PlainSecret | None = None
    jwt_secret_arn: str | None = None
    jwt_issuer: str = "taskmill"
    jwt_audience: str = "taskmill-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600


def _integer(source: Mapping[str, str], field: str, default: int, problems: list[str]) -> int:
    name = PREFIX + field.upper()
    if name not in source:
        return default
    match = _INTEGER.fullmatch(source[name])
    if match is None:
        problems.append(f"{name}: input should be a valid integer")
        return default
    return int(match.group(1))


def load_authorizer_settings(environ: Mapping[str, str] | None = None) -> LightAuthorizerSettings:
    source = os.environ if environ is None else environ
    problems: list[str] = []
    access = _integer(source, "access_token_ttl_seconds", 900, problems)
    refresh = _integer(source, "refresh_token_ttl_seconds", 30 * 24 * 3600, problems)
    low, high = ACCESS_TTL_RANGE
    if not problems and not low <= access <= high:
        problems.append(
            f"{PREFIX}ACCESS_TOKEN_TTL_SECONDS: input should be between {low} and {high}"
        )
    if not problems and refresh < MIN_REFRESH_TTL:
        problems.append(
            f"{PREFIX}REFRESH_TOKEN_TTL_SECONDS: input should be at least {MIN_REFRESH_TTL}"
        )
    secret = source.get(f"{PREFIX}JWT_SECRET")
    arn = source.get(f"{PREFIX}JWT_SECRET_ARN")
    if not problems:
        if secret is None and arn is None:
            problems.append("set TASKMILL_JWT_SECRET or TASKMILL_JWT_SECRET_ARN")
        elif secret is not None and len(secret) < MIN_SECRET_LENGTH:
            problems.append(f"TASKMILL_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    if problems:
        raise SettingsError("AuthorizerSettings is invalid: " + "; ".join(problems))
    return LightAuthorizerSettings(
        stage=source.get(f"{PREFIX}STAGE", "local"),
        jwt_secret=PlainSecret(secret) if secret is not None else None,
        jwt_secret_arn=arn,
        jwt_issuer=source.get(f"{PREFIX}JWT_ISSUER", "taskmill"),
        jwt_audience=source.get(f"{PREFIX}JWT_AUDIENCE", "taskmill-api"),
        access_token_ttl_seconds=access,
        refresh_token_ttl_seconds=refresh,
    )
