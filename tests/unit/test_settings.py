from __future__ import annotations

import pytest
from taskmill.errors import SettingsError
from taskmill.settings import DatabaseSettings, JwtSettings, QueueSettings, load_settings


def test_missing_queue_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for priority in ("HIGH", "NORMAL", "LOW"):
        monkeypatch.setenv(f"TASKMILL_QUEUE_URL_{priority}", f"http://q/{priority}")
        monkeypatch.setenv(f"TASKMILL_DLQ_URL_{priority}", f"http://q/{priority}-dlq")
    monkeypatch.delenv("TASKMILL_QUEUE_URL_HIGH")
    with pytest.raises(SettingsError, match="TASKMILL_QUEUE_URL_HIGH"):
        load_settings(QueueSettings)


def test_queue_urls_route_by_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    for priority in ("HIGH", "NORMAL", "LOW"):
        monkeypatch.setenv(f"TASKMILL_QUEUE_URL_{priority}", f"http://q/{priority}")
        monkeypatch.setenv(f"TASKMILL_DLQ_URL_{priority}", f"http://q/{priority}-dlq")
    settings = load_settings(QueueSettings)
    assert settings.queue_url("low") == "http://q/LOW"
    assert settings.dlq_url("high") == "http://q/HIGH-dlq"


def test_database_needs_a_url_or_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TASKMILL_DB_SECRET_ARN", raising=False)
    with pytest.raises(SettingsError, match="DATABASE_URL or TASKMILL_DB_SECRET_ARN"):
        load_settings(DatabaseSettings)
    monkeypatch.setenv("TASKMILL_DB_SECRET_ARN", "arn:aws:secretsmanager:x")
    assert load_settings(DatabaseSettings).db_secret_arn == "arn:aws:secretsmanager:x"


def test_short_jwt_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMILL_JWT_SECRET", "short")
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(JwtSettings)


def test_bad_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMILL_JWT_SECRET", "k" * 40)
    monkeypatch.setenv("TASKMILL_ACCESS_TOKEN_TTL_SECONDS", "soon")
    with pytest.raises(SettingsError, match="TASKMILL_ACCESS_TOKEN_TTL_SECONDS"):
        load_settings(JwtSettings)
