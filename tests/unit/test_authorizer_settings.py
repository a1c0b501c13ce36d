"""The authorizer's pydantic-free settings say what `taskmill.settings.AuthorizerSettings`
says, for the same environments: the same values, and a refusal where it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from taskmill.auth.authorizer_settings import load_authorizer_settings
from taskmill.errors import SettingsError
from taskmill.settings import AuthorizerSettings, load_settings

KEY = "k" * 40
ENVIRONMENTS: list[dict[str, str]] = [
    {"TASKMILL_JWT_SECRET": KEY},
    {"TASKMILL_JWT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:jwt"},
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_JWT_SECRET_ARN": "arn:x"},
    {
        "TASKMILL_JWT_SECRET": KEY,
        "TASKMILL_STAGE": "prod",
        "TASKMILL_JWT_ISSUER": "me",
        "TASKMILL_JWT_AUDIENCE": "them",
        "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": "60",
        "TASKMILL_REFRESH_TOKEN_TTL_SECONDS": "3600",
        "TASKMILL_UNRELATED": "ignored",
        "DATABASE_URL": "ignored",
    },
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": " 86400 "},
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": "86401"},
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": "59"},
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": "soon"},
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": ""},
    {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_REFRESH_TOKEN_TTL_SECONDS": "3599"},
    *(
        {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": value}
        for value in (
            "1_000",
            "900.0",
            "900.",
            "+900",
            "0x10",
            "\uff19\uff10\uff10",
            "1e3",
            "900.5",
            "900.00",
            ".0",
            "0900",
            " +9_0_0.000 ",
        )
    ),
    {"TASKMILL_JWT_SECRET": "k" * 31},
    {"TASKMILL_JWT_SECRET": "k" * 32},
    {},
    {"TASKMILL_STAGE": "dev"},
]


def reference(environ: dict[str, str]) -> Any:
    try:
        settings = load_settings(AuthorizerSettings, environ)
    except SettingsError:
        return "refused"
    return (
        settings.stage,
        settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        settings.jwt_secret_arn,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.access_token_ttl_seconds,
        settings.refresh_token_ttl_seconds,
    )


def light(environ: dict[str, str]) -> Any:
    try:
        settings = load_authorizer_settings(environ)
    except SettingsError:
        return "refused"
    return (
        settings.stage,
        settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        settings.jwt_secret_arn,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.access_token_ttl_seconds,
        settings.refresh_token_ttl_seconds,
    )


@pytest.mark.parametrize("environ", ENVIRONMENTS)
def test_same_answer_as_the_pydantic_settings(environ: dict[str, str]) -> None:
    assert light(environ) == reference(environ)


def test_a_refusal_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="TASKMILL_ACCESS_TOKEN_TTL_SECONDS"):
        load_authorizer_settings(
            {"TASKMILL_JWT_SECRET": KEY, "TASKMILL_ACCESS_TOKEN_TTL_SECONDS": "x"}
        )
    with pytest.raises(SettingsError, match="at least 32"):
        load_authorizer_settings({"TASKMILL_JWT_SECRET": "short"})
    with pytest.raises(SettingsError, match="TASKMILL_JWT_SECRET or TASKMILL_JWT_SECRET_ARN"):
        load_authorizer_settings({})


def test_the_key_never_prints() -> None:
    settings = load_authorizer_settings({"TASKMILL_JWT_SECRET": KEY})
    assert KEY not in repr(settings)
