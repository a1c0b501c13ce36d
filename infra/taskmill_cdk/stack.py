"""The Taskmill platform as one construct (one construct per concern inside it), and the
repository's stack of one environment, which holds nothing else."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags, Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from taskmill_cdk.api import Api
from taskmill_cdk.config import TaskmillConfig
from taskmill_cdk.console import Console
from taskmill_cdk.containers import Containers
from taskmill_cdk.database import Database
from taskmill_cdk.functions import FunctionFactory, Layers
from taskmill_cdk.monitoring import Monitoring
from taskmill_cdk.nag import acknowledge_findings
from taskmill_cdk.network import Network
from taskmill_cdk.queues import JobQueues
from taskmill_cdk.recovery import Recovery
from taskmill_cdk.workers import Workers

# The proxy's target group is the one resource here that takes no tags.
_UNTAGGABLE = ["AWS::RDS::DBProxyTargetGroup"]
# The construct id goes into construct paths, which CDK writes into Name tags (IAM's tag
# values) and security-group descriptions (ASCII): what both accept.
_CONSTRUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:=+@-]*")


class Taskmill(Construct):
    """The whole platform in the caller's stack: API, queues, workers, recovery, database,
    monitoring. `vpc`: yours (Taskmill then creates none; see `Network` for the subnets it
    uses, or pass `app_subnets`/`data_subnets`); None creates one as configured.

    What to extend is exposed: `queues` (`JobQueues`), `api` (`.rest_api`, `.function`),
    `functions` (name -> `lambda_.Function`), `database` (`.instance`, `.secret`),
    `alarm_topic`, `dashboard`, `network` (`.vpc`, `.lambda_security_group`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TaskmillConfig | None = None,
        vpc: ec2.IVpc | None = None,
        app_subnets: ec2.SubnetSelection | None = None,
        data_subnets: ec2.SubnetSelection | None = None,
    ) -> None:
        if _CONSTRUCT_ID.fullmatch(construct_id) is None:
            raise ValueError(
                f"Taskmill construct id {construct_id!r}: use ASCII letters, digits, spaces and "
                "_.:=+@- (AWS refuses other characters in the tags and descriptions it reaches)"
            )
        super().__init__(scope, construct_id)
        config = config or TaskmillConfig()
        _refuse_a_shared_prefix(self, config)
        self.config = config
        Tags.of(self).add("project", "taskmill", exclude_resource_types=_UNTAGGABLE)
        Tags.of(self).add("environment", config.name, exclude_resource_types=_UNTAGGABLE)

        self.network = Network(
            self,
            "Network",
            config=config,
            vpc=vpc,
            app_subnets=app_subnets,
            data_subnets=data_subnets,
        )
        self.function_factory = FunctionFactory(
            config, Layers(self, "Layers", config=config), self.network
        )
        self.job_queues = JobQueues(self, "Queues", config=config)
        self.database = Database(
            self, "Database", config=config, network=self.network, functions=self.function_factory
        )
        # container.run's cluster and roles, where the environment runs containers.
        self.containers = (
            Containers(self, "Containers", config=config, network=self.network)
            if config.worker.container_jobs
            else None
        )
        # "Retry" is this construct's id from before it was named for what it holds; kept so
        # logical ids (and so the deployed functions, log groups and alarms) stay as they are.
        self.recovery = Recovery(
            self,
            "Retry",
            config=config,
            functions=self.function_factory,
            database=self.database,
            queues=self.job_queues,
            containers=self.containers,
        )
        self.workers = Workers(
            self,
            "Workers",
            config=config,
            functions=self.function_factory,
            database=self.database,
            queues=self.job_queues,
            containers=self.containers,
        )
        # The console's distribution comes first: the API's CORS allows its origin.
        self.console = Console(self, "Console", config=config) if config.console.enabled else None
        self.api = Api(
            self,
            "Api",
            config=config,
            functions=self.function_factory,
            database=self.database,
            queues=self.job_queues,
            redrive_function=self.recovery.redrive_function,
            webhook_secret=self.workers.webhook_secret,
            cors_origins=(
                (self.console.origin, *config.api.cors_origins) if self.console else None
            ),
        )
        if self.console:
            self.console.point_at(self.api.rest_api)
        # Pausing a queue (the API) disables its mapping; the sweep re-applies what failed.
        self.workers.grant_pause(self.api.function)
        self.workers.grant_pause(self.recovery.sweep_function)
        # Everything a schema change could break waits for the migrations.
        for function in (self.api.function, self.workers.function, self.recovery.sweep_function):
            function.node.add_dependency(self.database.migrations)
        all_functions = {
            "api": self.api.function,
            "authorizer": self.api.authorizer_function,
            "worker": self.workers.function,
            "recovery": self.recovery.sweep_function,
            "redrive": self.recovery.redrive_function,
            "container-events": self.recovery.ecs_events_function,
            "migrations": self.database.migrations_function,
        }
        # Every function by name ("container-events" only with worker.container_jobs).
        self.functions = {name: f for name, f in all_functions.items() if f is not None}
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            queues=self.job_queues,
            functions=self.functions,
            rest_api=self.api.rest_api,
            database=self.database.instance,
            proxy=self.database.proxy,
        )
        self.queues = self.job_queues
        self.alarm_topic = self.monitoring.topic
        self.dashboard = self.monitoring.dashboard
        acknowledge_findings(self, config)
        stack = Stack.of(self)

        CfnOutput(self, "ApiUrl", value=self.api.url)
        if self.console:
            CfnOutput(self, "ConsoleUrl", value=self.console.url)
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{stack.region}.console.aws.amazon.com/cloudwatch/home?region="
                f"{stack.region}#dashboards:name={config.resource_prefix}"
            ),
        )
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        if self.database.admin_secret is not None:
            CfnOutput(
                self,
                "FirstAdminPasswordSecret",
                value=self.database.admin_secret.secret_name,
                description=(
                    f"The initial password of {config.admin_email}: "
                    "aws secretsmanager get-secret-value --secret-id <this>"
                ),
            )
        for priority, queue in self.job_queues.queues.items():
            CfnOutput(self, f"QueueUrl{priority.value.title()}", value=queue.queue_url)
            CfnOutput(
                self,
                f"DlqUrl{priority.value.title()}",
                value=self.job_queues.dead_letter_queues[priority].queue_url,
            )


def _refuse_a_shared_prefix(platform: Taskmill, config: TaskmillConfig) -> None:
    """resource_prefix names the functions, queues, log groups and dashboard, which are unique
    per account and region: a second Taskmill there with the same prefix fails on deploy."""
    here = Stack.of(platform)
    for other in platform.node.root.node.find_all():
        if (
            isinstance(other, Taskmill)
            and other is not platform
            and other.config.resource_prefix == config.resource_prefix
            and _may_share_a_region(Stack.of(other), here)
        ):
            raise ValueError(
                f"{platform.node.path} and {other.node.path} share resource_prefix "
                f"{config.resource_prefix!r} in the same account and region (or a stack "
                "without an environment): their named resources would collide on deploy; "
                "give each its own resource_prefix"
            )


def _may_share_a_region(one: Stack, other: Stack) -> bool:
    """False only where both stacks name a different account or region."""
    for mine, theirs in ((one.account, other.account), (one.region, other.region)):
        if not Token.is_unresolved(mine) and not Token.is_unresolved(theirs) and mine != theirs:
            return False
    return True


class TaskmillStack(Stack):
    """One environment of this repository's app (app.py): a stack whose only child is the
    `Taskmill` construct, with the id "Default", which CDK leaves out of logical ids: the
    resources keep the ids they had when this stack held them directly (a new id would
    replace the database and the queues on the next deploy)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: TaskmillConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        # Stack tags too: `cdk deploy` puts these on the CloudFormation stack itself.
        Tags.of(self).add("project", "taskmill", exclude_resource_types=_UNTAGGABLE)
        Tags.of(self).add("environment", config.name, exclude_resource_types=_UNTAGGABLE)
        self.taskmill = Taskmill(self, "Default", config=config)
