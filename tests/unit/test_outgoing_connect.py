"""Connecting for `http.request` and webhooks: a host's addresses share the request's one
deadline, so several addresses that drop connections cannot each take the whole timeout."""

from __future__ import annotations

import socket
from ipaddress import ip_address
from typing import Any

import pytest
from taskmill.jobtypes.http_request import open_socket

ADDRESSES = [ip_address("192.0.2.1"), ip_address("192.0.2.2"), ip_address("192.0.2.3")]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def dropping(clock: Clock, tried: list[tuple[str, float]], spends: float) -> Any:
    """A connect that waits `spends` seconds (of `clock`) at most, then fails."""

    def connect(address: tuple[str, int], *, timeout: float) -> socket.socket:
        tried.append((address[0], timeout))
        clock.now += min(spends, timeout)
        raise TimeoutError("timed out")

    return connect


def test_each_address_gets_only_the_time_left() -> None:
    clock, tried = Clock(), list[tuple[str, float]]()
    with pytest.raises(TimeoutError):
        open_socket(ADDRESSES, 443, clock.now + 10, connect=dropping(clock, tried, 4), clock=clock)
    assert tried == [("192.0.2.1", 10), ("192.0.2.2", 6), ("192.0.2.3", 2)]
    assert clock.now == 110


def test_an_address_that_takes_the_whole_deadline_leaves_none_for_the_others() -> None:
    clock, tried = Clock(), list[tuple[str, float]]()
    with pytest.raises(TimeoutError, match="deadline passed while connecting"):
        open_socket(ADDRESSES, 80, clock.now + 10, connect=dropping(clock, tried, 60), clock=clock)
    assert tried == [("192.0.2.1", 10)]


def test_a_refused_address_passes_to_the_next_one() -> None:
    clock, tried = Clock(), list[tuple[str, float]]()
    connected = socket.socket()

    def connect(address: tuple[str, int], *, timeout: float) -> socket.socket:
        tried.append((address[0], timeout))
        clock.now += 1
        if address[0] != "192.0.2.3":
            raise ConnectionRefusedError("refused")
        return connected

    try:
        assert open_socket(ADDRESSES, 80, clock.now + 10, connect=connect, clock=clock) is connected
    finally:
        connected.close()
    assert tried == [("192.0.2.1", 10), ("192.0.2.2", 9), ("192.0.2.3", 8)]


def test_every_address_refused_is_the_last_refusal() -> None:
    def refused(address: tuple[str, int], *, timeout: float) -> socket.socket:
        raise ConnectionRefusedError(f"{address[0]} refused")

    with pytest.raises(ConnectionRefusedError, match=r"192\.0\.2\.3 refused"):
        open_socket(ADDRESSES, 80, Clock()() + 10, connect=refused, clock=Clock())
