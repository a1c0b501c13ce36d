"""The Taskmill stack of one environment, composed of one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.api import Api
from infra.config import EnvironmentConfig
from infra.containers import Containers
from infra.database import Database
from infra.functions import FunctionFactory, Layers
from infra.monitoring import Monitoring
from infra.nag import acknowledge_findings
from infra.network import Network
from infra.queues import JobQueues
from infra.recovery import Recovery
from infra.workers import Workers


class TaskmillStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        # The proxy's target group is the one resource here that takes no tags.
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]
        Tags.of(self).add("project", "taskmill", exclude_resource_types=untaggable)
        Tags.of(self).add("environment", config.name, exclude_resource_types=untaggable)

        self.network = Network(self, "Network", config=config)
        self.functions = FunctionFactory(config, Layers(self, "Layers"), self.network)
        self.job_queues = JobQueues(self, "Queues", config=config)
        self.database = Database(
            self, "Database", config=config, network=self.network, functions=self.functions
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
            functions=self.functions,
            database=self.database,
            queues=self.job_queues,
            containers=self.containers,
        )
        self.workers = Workers(
            self,
            "Workers",
            config=config,
            functions=self.functions,
            database=self.database,
            queues=self.job_queues,
            containers=self.containers,
        )
        self.api = Api(
            self,
            "Api",
            config=config,
            functions=self.functions,
            database=self.database,
            queues=self.job_queues,
            redrive_function=self.recovery.redrive_function,
            webhook_secret=self.workers.webhook_secret,
        )
        # Pausing a queue (the API) disables its mapping; the sweep re-applies what failed.
        self.workers.grant_pause(self.api.function)
        self.workers.grant_pause(self.recovery.sweep_function)
        # Everything a schema change could break waits for the migrations.
        for function in (self.api.function, self.workers.function, self.recovery.sweep_function):
            function.node.add_dependency(self.database.migrations)
        functions = {
            "api": self.api.function,
            "authorizer": self.api.authorizer_function,
            "worker": self.workers.function,
            "recovery": self.recovery.sweep_function,
            "redrive": self.recovery.redrive_function,
            "container-events": self.recovery.ecs_events_function,
            "migrations": self.database.migrations_function,
        }
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            queues=self.job_queues,
            functions={name: f for name, f in functions.items() if f is not None},
            rest_api=self.api.rest_api,
            database=self.database.instance,
            proxy=self.database.proxy,
        )
        acknowledge_findings(self, config)

        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region="
                f"{self.region}#dashboards:name={config.resource_prefix}"
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
