"""The local stack's ports: `make run`'s fixed defaults, and 0 for a port the server binds
itself (tests and scripts that run several stacks at once)."""

from __future__ import annotations

import re
import socket
from contextlib import ExitStack

import pytest

from taskmill_local.preflight import Port, PreflightError, check_ports
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


def test_the_same_port_for_the_api_and_the_local_sqs_is_refused_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each port is free on its own, so the check before start-up passed them, and the API,
    # started second, found its port "already in use" by the stack's own SQS server.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("TASKMILL_PORT", "18011")
    monkeypatch.setenv("TASKMILL_SQS_PORT", "18011")
    with pytest.raises(ValueError, match="TASKMILL_PORT and TASKMILL_SQS_PORT are both 18011"):
        LocalConfig.from_environment()


def test_the_same_port_twice_is_fine_when_nothing_listens_on_one_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKMILL_PORT", "0")
    monkeypatch.setenv("TASKMILL_SQS_PORT", "0")  # each server binds a free port of its own
    config = LocalConfig.from_environment()
    assert (config.port, config.sqs_port) == (0, 0)
    monkeypatch.setenv("TASKMILL_PORT", "18011")
    monkeypatch.setenv("TASKMILL_SQS_PORT", "18011")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")  # no local SQS server
    assert LocalConfig.from_environment().port == 18011


def _two_listening_side_by_side(stack: ExitStack) -> int:
    """Listen on two adjacent free ports; the lower one's number. Tries other pairs while
    the port above an ephemeral one is taken (a shared machine), rather than skipping."""
    for _ in range(50):
        api = stack.enter_context(socket.socket())
        api.bind(("127.0.0.1", 0))
        number: int = api.getsockname()[1]
        sqs = stack.enter_context(socket.socket())
        try:
            sqs.bind(("127.0.0.1", number + 1))
        except OSError:
            continue
        api.listen(1)
        sqs.listen(1)
        return number
    raise AssertionError("no two adjacent free ports in 50 tries")


def test_two_ports_in_use_are_each_given_a_different_free_port_to_move_to() -> None:
    # Both in use, side by side: each suggestion was the first free port above its own, so
    # both named the same one, and following both lines could not start.
    with ExitStack() as stack:
        number = _two_listening_side_by_side(stack)
        with pytest.raises(PreflightError) as refused:
            check_ports(
                [
                    Port(number, "API", "TASKMILL_PORT"),
                    Port(number + 1, "local SQS", "TASKMILL_SQS_PORT"),
                ]
            )
    suggested = re.findall(r"(TASKMILL_(?:SQS_)?PORT)=(\d+) make run", str(refused.value))
    assert [name for name, _ in suggested] == ["TASKMILL_PORT", "TASKMILL_SQS_PORT"]
    api_port, sqs_port = (int(port) for _, port in suggested)
    assert api_port != sqs_port
    assert {api_port, sqs_port}.isdisjoint({number, number + 1})
