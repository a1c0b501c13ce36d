"""Lambda SnapStart: what a function does before its snapshot and after each restore.

With SnapStart (`api.snap_start` in cdk.json), Lambda runs a function's initialization once,
when a version is published, snapshots the memory and restores that snapshot for every new
execution environment. So:
- whatever the handler module builds at import is built once, and restored everywhere: the
  handlers build their container state at import when `AWS_LAMBDA_INITIALIZATION_TYPE` is
  `snap-start` (otherwise on the first event, as before);
- what must differ between environments must be made again after a restore: the `random`
  module's state (backoff jitter) is reseeded from the OS; `secrets`, `uuid4` and
  `os.urandom` read the kernel at each call and need nothing;
- no connection may be in the snapshot: database connections are opened on first use, after
  the restore, and are closed again by the hook in case one was opened before it;
- secrets read at initialization (the JWT key) live in the snapshot, which Lambda encrypts;
  the key is read once per container anyway (tokens carry no key id to roll over with).

The hooks go through `snapshot_restore_py`, which Lambda's Python runtimes ship; elsewhere
(locally, in tests) there is no snapshot, and registering does nothing.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any


def initializing_for_snapshot(environ: Any = None) -> bool:
    source = os.environ if environ is None else environ
    return bool(source.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start")


def after_restore(callback: Callable[[], object]) -> bool:
    """Run `callback` after every restore from the snapshot; False where nothing restores."""
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return False
    register_after_restore(callback)
    return True


def restore_uniqueness() -> None:
    """State that must differ between restored environments: `random`'s seed."""
    random.seed()
