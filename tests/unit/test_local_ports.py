"""The local stack's ports: `make run`'s fixed defaults, and 0 for a port the server binds
itself (tests and scripts that run several stacks at once)."""

from __future__ import annotations

import pytest

from taskmill_local.stack import DEFAULT_PORT, DEFAULT_SQS_PORT, LocalConfig


def test_make_run_listens_on_its_fixed_ports_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TASKMILL_PORT", raising=False)
    monkeypatch.delenv("TASKMILL_SQS_PORT", raising=False)
    config = LocalConfig.from_environment()
    assert (config.port, config.sqs_port) == (DEFAULT_PORT, DEFAULT_SQS_PORT) == (8000, 9324)
    monkeypatch.setenv("TASKMILL_PORT", "18001")
    monkeypatch.setenv("TASKMILL_SQS_PORT", "0")
    config = LocalConfig.from_environment()
    assert (config.port, config.sqs_port) == (18001, 0)


# "²" and "٣" are digits to str.isdigit: int() refused the first (its own message), read 3.
@pytest.mark.parametrize("value", ["-1", "65536", "eighty", "80.5", "\u00b2", "\u0663"])
def test_a_value_that_is_not_a_port_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TASKMILL_PORT", value)
    with pytest.raises(ValueError, match=r"TASKMILL_PORT must be a port number \(1-65535, or 0"):
        LocalConfig.from_environment()
