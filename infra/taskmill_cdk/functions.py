"""The two layers and the one way every Taskmill Lambda is built.

Each function gets the runtime and architecture from `taskmill_cdk.runtime`, both layers, its own
log group with the environment's retention, active tracing, a concurrency cap and (when it
talks to the database) the VPC's application subnets. Permissions are not granted here:
each construct grants what its functions call, where both sides are in hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from taskmill.jobtypes.defaults import build_registry
from taskmill.lambda_support import NAMESPACE as METRICS_NAMESPACE
from taskmill.settings import JobTypeSettings

from taskmill_cdk.bundling import (
    dependency_layer_code,
    function_code,
    package_layer_code,
    shipped_packages,
)
from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.log_groups import log_group
from taskmill_cdk.network import Network
from taskmill_cdk.runtime import ARCHITECTURE, RUNTIME

DEFAULT_TIMEOUT = Duration.seconds(30)


class Layers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        # taskmill and your job modules' packages: what the package layer ships.
        self.packages = shipped_packages(config.job_modules)
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=dependency_layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Taskmill's third-party packages (requirements.txt)",
        )
        self.package = lambda_.LayerVersion(
            self,
            "Package",
            code=package_layer_code(self.packages),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="The taskmill package and your job types (layers/)",
        )


def job_type_environment(config: EnvironmentConfig) -> dict[str, str]:
    """What the functions that build the job type registry (API, worker, sweep, container
    events) are configured with. The registry is built here once, from the same code, so a
    misspelt module or a bad declaration fails the synth instead of every cold start."""
    settings = JobTypeSettings(
        job_modules=",".join(config.job_modules),
        external_types=json.dumps(list(config.external_job_types)),
    )
    # Each module's package must be one the package layer ships (raises if not importable).
    shipped_packages(settings.job_module_names)
    build_registry(settings, check=True)
    return {
        "TASKMILL_JOB_MODULES": settings.job_modules,
        "TASKMILL_EXTERNAL_TYPES": settings.external_types,
    }


class FunctionFactory:
    def __init__(self, config: EnvironmentConfig, layers: Layers, network: Network) -> None:
        self.config = config
        self.layers = layers
        self.network = network
        self.job_types = job_type_environment(config)

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        asset: str,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        reserved_concurrency: int | None,
        timeout: Duration | None = None,
        memory_mb: int = 256,
        in_vpc: bool = True,
        snap_start: bool = False,
    ) -> lambda_.Function:
        function_name = f"{self.config.resource_prefix}-{name}"
        return lambda_.Function(
            scope,
            construct_id,
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=function_code(asset),
            handler=handler,
            layers=[self.layers.dependencies, self.layers.package],
            environment={
                "TASKMILL_STAGE": self.config.name,
                "POWERTOOLS_SERVICE_NAME": f"taskmill-{name}",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
            timeout=timeout or DEFAULT_TIMEOUT,
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            log_group=log_group(
                scope, f"{construct_id}Logs", self.config, name=f"/aws/lambda/{function_name}"
            ),
            vpc=self.network.vpc if in_vpc else None,
            vpc_subnets=self.network.app_subnets if in_vpc else None,
            security_groups=[self.network.lambda_security_group] if in_vpc else None,
        )
