"""A migration that shipped is never edited: the runner records only its version, so a
database that applied it keeps what it applied, and an edit reaches fresh databases only
(the two then differ, silently). A change goes in a new migration file.

The digests below are the shipped files'. A new migration adds its line once it lands on
main; a failure here for an existing one means the edit should be a new file instead.
"""

from __future__ import annotations

import hashlib

from taskmill.db.migrate import available_migrations

SHIPPED = {
    "0001_initial": "d21999e615f7bcc310fd767f5ea16e989b206fea5aa8e8c473bde0c7ae1f0767",
    "0002_job_external_ref": "212d6838a2c1f02aa9f862b2a9cb0ec7216d91e46a9c3a6521a6dfdd5c712ba5",
    "0003_schedules": "19fea18496db2bf7445b05285e8b74b4dd3dbdd294c91ebb14eeda24a024b469",
    "0004_redrive_tasks": "ee3e495cfd835525a0c85396a1a96611b01b37f011da22f982919c748532c730",
    "0005_webhook_pending": "a33f2ed1731e576567efe551faf4473c9b2f648294e175eb0d20ab4626cef02b",
    "0006_sessions_and_login_throttle": (
        "41c9862b1dca74ce309651cb71e3662ed76623026e561e47dab5054f93e1c834"
    ),
    "0008_reliability": "0b238a7b26f958dc3d672bd3923937b4c61c2a3d5bff3db567ee33b72b3a3a42",
    "0009_idempotency_hash": "a68145ff91ad73e8a9738068d62340b123eb4f0650556e7ab3f5ba77f068bffc",
    "0010_hot_path": "d53e02c3bdcdc3b71de9d966a6d44c0e9e7c32a30d7604c0d89cd0b6cada2c93",
    "0011_flow_control": "18f2092a77cda31c381727d0e4cc76f591917c941cbbe08c19ce07a90d8563e8",
    "0012_workflows": "194a0e0b8979a13cd1116dfc606d57db0fcff60b3d627581b1cf82853bf5fbb5",
    "0013_schedule_timezone": "3c9ae9e84a8d90f76e7ae55aed48bd9fbe850f8355600e1b1caef67e209f8955",
    "0014_schedule_error": "eda324546663f49cbbb37e687e90383703a8a3bfb4b3c2a22e8ac0a809e15fdc",
    # Edited once after it shipped (b8ccda1: its CHECK added NOT VALID, 0017 validates it).
    # Databases that applied the first version (5715068f...) have the CHECK validated
    # already and 0017 changes nothing there: both end with the same schema.
    "0015_run_at_range": "39ad65d40b0e213c7e6f41b978622ec66100f9478325d6fd9e5cf3e20f71cf9f",
    "0016_pause_holds": "38b7850fa0e8d61a0131f9a91e2dd2f74ef3ec57615db8ef8d9604bf451b28db",
    "0017_run_at_range_validated": (
        "de189d0d96e2640d9201d26a5ffb5cea4f00fd81c0d0c0ae1aa0385a612dd640"
    ),
    "0018_report_digest": "732154124e01b04d8f7d52901090d3b8f4a1b720c301f7a326f7c56a91a5159f",
    "0019_stats_snapshots": "c2d81f9771fee999e087c34a89fd7f040c4b4d1d45fc5f0bab6efd91a6476591",
    "0020_ended_sessions": "2a3156d8793869c8a055b2418b3e8386478ceb93e9e8c27045142a9585e5b973",
    "0021_refresh_token_expiry": (
        "29a40b4cb257fb8fe9e24b000601959e476a78cf02ca14bc31d8c73eaf238537"
    ),
}


def test_no_shipped_migration_was_edited() -> None:
    found = {
        f"{m.version:04d}_{m.name}": hashlib.sha256(m.sql.encode()).hexdigest()
        for m in available_migrations()
    }
    edited = sorted(name for name, digest in SHIPPED.items() if found.get(name) != digest)
    assert not edited, f"shipped migrations changed or gone: {edited}; add a new file instead"
