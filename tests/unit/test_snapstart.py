"""SnapStart's runtime side: state built at initialization for the snapshot, and what each
restored environment makes again (its own random state, no connection from the snapshot)."""

from __future__ import annotations

import importlib
import random
import sys
import types
from collections.abc import Callable, Iterator

import pytest
from taskmill.snapstart import after_restore, initializing_for_snapshot, restore_uniqueness


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], object]]:
    """What Lambda's runtime ships as `snapshot_restore_py`, recording registrations."""
    registered: list[Callable[[], object]] = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    return registered


def test_initialization_for_a_snapshot_is_told_by_lambdas_variable() -> None:
    assert initializing_for_snapshot({"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    assert not initializing_for_snapshot({"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"})
    assert not initializing_for_snapshot({})


def test_hooks_register_with_the_runtime_and_nowhere_else(
    hooks: list[Callable[[], object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert after_restore(restore_uniqueness)
    assert hooks == [restore_uniqueness]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # not importable
    assert not after_restore(restore_uniqueness)


def test_restored_environments_draw_different_random_numbers() -> None:
    random.seed(7)
    snapshot = random.getstate()  # what every restored environment starts from
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        restore_uniqueness()
        draws.append(random.random())
    assert draws[0] != draws[1]


@pytest.fixture
def snap_start_init(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    monkeypatch.setenv("TASKMILL_JWT_SECRET", "k" * 48)
    yield
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE")
    import functions.api.authorizer

    importlib.reload(functions.api.authorizer)  # back to the lazy, on-demand module state


def test_the_authorizer_reads_its_key_at_snapshot_initialization(
    snap_start_init: None, hooks: list[Callable[[], object]]
) -> None:
    import functions.api.authorizer as authorizer

    authorizer = importlib.reload(authorizer)
    assert authorizer._config is not None
    assert authorizer._config.secret == "k" * 48
    assert set(hooks) == {restore_uniqueness}  # registered at each (re)import


def test_without_snap_start_nothing_is_built_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    import functions.api.authorizer as authorizer

    assert importlib.reload(authorizer)._config is None
