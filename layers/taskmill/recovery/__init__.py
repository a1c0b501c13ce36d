"""The recovery sweep: nothing lost, stuck or forgotten."""
