"""Idempotency-Key fingerprints: the SHA-256 of a create request, kept with its key.

A repeat of a request must find the fingerprint its first sending stored, for as long as the
key lives (`idempotency_ttl_seconds`, 24 h) and across a deploy in between: a client that
retries a create the deploy interrupted must get the original job (200), not 409
`idempotency_mismatch`. So the fingerprint is of what the client set, apart from defaults
(`exclude_defaults`): a field a later release adds leaves the fingerprint of every request
that does not use it as it was.

Releases before this one fingerprinted the whole model, defaults included, so each field
added changed every fingerprint; they are still accepted for the keys those releases stored
(`earlier_fingerprints`):

- up to flow control (5e7e7e0): no `limit_keys`;
- up to da294be: `run_at` with the offset the client gave, not in UTC;
- up to 815eea0: each job of a keyed batch had its own job's fingerprint, not the batch's.

A change to what `fingerprint` hashes (a field's serialisation, a new default) breaks every
key stored in the last day the same way: keep the old computation among the earlier ones.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from taskmill.api.models import JobBatchCreate, JobCreate

_AS_SENT = TypeAdapter(AwareDatetime)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def fingerprint(body: BaseModel) -> str:
    """This release's fingerprint of a create (`JobCreate`) or a batch (`JobBatchCreate`)."""
    return _digest(body.model_dump(mode="json", exclude_defaults=True))


def _whole_dumps(job: JobCreate, raw: Any) -> list[dict[str, Any]]:
    """`job` as earlier releases dumped it whole, in each of their ways."""
    whole = job.model_dump(mode="json")
    dumps = [whole]
    sent = raw.get("run_at") if isinstance(raw, dict) else None
    if isinstance(sent, str):
        try:
            as_sent = _AS_SENT.dump_python(_AS_SENT.validate_python(sent), mode="json")
        except ValidationError:
            as_sent = None
        if as_sent is not None and as_sent != whole.get("run_at"):
            dumps.append({**whole, "run_at": as_sent})
    if not whole.get("limit_keys"):
        dumps += [{k: v for k, v in dump.items() if k != "limit_keys"} for dump in dumps]
    return dumps


def earlier_fingerprints(job: JobCreate, raw: Any) -> list[str]:
    """What earlier releases stored for this create; `raw` is the JSON body as sent."""
    return [_digest(dump) for dump in _whole_dumps(job, raw)]


def earlier_batch_fingerprints(body: JobBatchCreate, raw: Any) -> list[list[str]]:
    """What earlier releases stored for each job of this batch: the whole batch's (815eea0
    and later), or the job's own (before)."""
    raws = raw.get("jobs") if isinstance(raw, dict) else None
    if not isinstance(raws, list) or len(raws) != len(body.jobs):
        raws = [None] * len(body.jobs)
    whole = _digest(body.model_dump(mode="json"))
    return [
        [whole, *earlier_fingerprints(job, job_raw)]
        for job, job_raw in zip(body.jobs, raws, strict=True)
    ]
