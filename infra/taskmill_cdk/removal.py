"""What `cdk destroy` does to data: kept in environments that retain it (prod), removed in
disposable ones (dev). Every stateful resource takes its policy from here."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from taskmill_cdk.config import EnvironmentConfig


def data_removal_policy(config: EnvironmentConfig) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN


def database_removal_policy(config: EnvironmentConfig) -> RemovalPolicy:
    """Where data is retained, RDS leaves a final snapshot rather than a running instance."""
    retained = data_removal_policy(config) == RemovalPolicy.RETAIN
    return RemovalPolicy.SNAPSHOT if retained else RemovalPolicy.DESTROY
