"""Job types: a registry of named functions with payload models and defaults."""
