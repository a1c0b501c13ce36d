"""Flow control (SPEC §6): limit keys, limits per key, paused queues and job types."""
