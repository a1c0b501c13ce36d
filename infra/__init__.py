"""CDK infrastructure: per-environment config, constants, constructs and stacks."""
