"""The HTTP API (SPEC §3) as a Powertools REST resolver built from routers."""
