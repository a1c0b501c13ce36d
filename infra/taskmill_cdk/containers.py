"""What `container.run` jobs run on: an ECS cluster for Fargate tasks, the roles those tasks
get, and their log group. The worker starts tasks here; the recovery construct listens for their
state changes."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct
from taskmill.jobtypes.container_run import TASK_FAMILY_PREFIX

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.log_groups import log_group
from taskmill_cdk.network import Network

ECS_TASKS = "ecs-tasks.amazonaws.com"


class Containers(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, network: Network
    ) -> None:
        super().__init__(scope, construct_id)
        self.network = network
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=f"{config.resource_prefix}-jobs",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.log_group = log_group(self, "TaskLogs", config)
        ecs_tasks = iam.ServicePrincipal(ECS_TASKS)
        # Pulls the image and writes the task's logs; nothing else.
        self.execution_role = iam.Role(
            self, "TaskExecutionRole", assumed_by=ecs_tasks, description="container.run: pull, log"
        )
        self.log_group.grant_write(self.execution_role)
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],  # the action has no resource-level permissions
            )
        )
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                resources=[
                    Stack.of(self).format_arn(
                        service="ecr", resource="repository", resource_name="*"
                    )
                ],
            )
        )
        # What the job's own code may call: nothing until an operator grants it something.
        self.task_role = iam.Role(
            self, "TaskRole", assumed_by=ecs_tasks, description="container.run: the job's code"
        )

    def environment(self) -> dict[str, str]:
        return {
            "TASKMILL_ECS_CLUSTER_ARN": self.cluster.cluster_arn,
            "TASKMILL_ECS_SUBNETS": ",".join(self.network.app_subnet_ids()),
            "TASKMILL_ECS_SECURITY_GROUPS": self.network.lambda_security_group.security_group_id,
            "TASKMILL_ECS_TASK_EXECUTION_ROLE_ARN": self.execution_role.role_arn,
            "TASKMILL_ECS_TASK_ROLE_ARN": self.task_role.role_arn,
            "TASKMILL_ECS_LOG_GROUP": self.log_group.log_group_name,
        }

    def grant_stop_tasks(self, grantee: iam.IGrantable) -> None:
        """StopTask on this cluster's tasks only: the sweep stops a task whose job timed out
        or was cancelled, the worker one its ended attempt started."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ecs:StopTask"],
            resource_arns=[
                Stack.of(self).format_arn(
                    service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*"
                )
            ],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
        )

    def grant_run_tasks(self, grantee: iam.IGrantable) -> None:
        stack = Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=grantee,
            # RegisterTaskDefinition has no resource-level permissions.
            actions=["ecs:RegisterTaskDefinition"],
            resource_arns=["*"],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ecs:RunTask"],
            resource_arns=[
                stack.format_arn(
                    service="ecs",
                    resource="task-definition",
                    resource_name=f"{TASK_FAMILY_PREFIX}*",
                )
            ],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iam:PassRole"],
            resource_arns=[self.execution_role.role_arn, self.task_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": ECS_TASKS}},
        )
