"""Keys and passwords the stack generates into Secrets Manager (never into a template or an
environment variable); functions receive their ARNs and read them at cold start."""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.removal import data_removal_policy


def generated_secret(
    scope: Construct,
    construct_id: str,
    config: EnvironmentConfig,
    *,
    name: str,
    description: str,
    length: int = 64,
) -> secretsmanager.Secret:
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        secret_name=f"{config.resource_prefix}/{name}",
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=length, exclude_punctuation=True
        ),
    )
    secret.apply_removal_policy(data_removal_policy(config))
    return secret
