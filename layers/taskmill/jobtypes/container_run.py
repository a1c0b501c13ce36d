"""`container.run`: run a command in a container image on ECS Fargate.

The job body only starts the task; the job stays `running` until the ECS "Task State
Change" event for that task arrives (see `taskmill.lifecycle.ecs_events`). Its lease is its timeout,
so a task whose event does not come in time is recovered by the sweep as a timed-out attempt.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskmill.jobs.retry import AttemptEnded, JobFailure, PermanentJobFailure
from taskmill.jobtypes.container_tasks import ATTEMPT_ENDED, ContainerTasks

CONTAINER_NAME = "job"
# Task definition families are `taskmill-<hash>`; the deployed RunTask permission is scoped
# to this prefix.
TASK_FAMILY_PREFIX = "taskmill-"


class ContainerPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, max_length=512)
    command: list[str] = Field(default_factory=list, max_length=100)
    env: dict[str, str] = Field(default_factory=dict)
    cpu: int = Field(default=256, ge=256, le=16384)
    memory: int = Field(default=512, ge=512, le=122880)


def container_run(context: Any, payload: ContainerPayload) -> dict[str, Any]:
    """Starts an ECS Fargate task; the job finishes when the task stops."""
    settings = context.services.settings
    if not settings.ecs_cluster_arn:
        raise PermanentJobFailure(
            "no container runtime is available here: container.run needs an ECS cluster "
            "(TASKMILL_ECS_CLUSTER_ARN), which the local stack does not have, nor a deployed "
            "environment with worker.container_jobs off in cdk.json"
        )
    ecs = context.services.client("ecs")
    family = (
        TASK_FAMILY_PREFIX
        + hashlib.sha256(f"{payload.image}|{payload.cpu}|{payload.memory}".encode()).hexdigest()[
            :16
        ]
    )
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": payload.image,
        "essential": True,
        "cpu": payload.cpu,
        "memory": payload.memory,
    }
    if settings.ecs_log_group:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": settings.ecs_log_group,
                "awslogs-region": ecs.meta.region_name,
                "awslogs-stream-prefix": "taskmill",
            },
        }
    definition: dict[str, Any] = {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(payload.cpu),
        "memory": str(payload.memory),
        "containerDefinitions": [container],
    }
    if settings.ecs_task_execution_role_arn:
        definition["executionRoleArn"] = settings.ecs_task_execution_role_arn
    if settings.ecs_task_role_arn:
        definition["taskRoleArn"] = settings.ecs_task_role_arn
    task_definition = ecs.register_task_definition(**definition)["taskDefinition"]
    response = ecs.run_task(
        cluster=settings.ecs_cluster_arn,
        taskDefinition=task_definition["taskDefinitionArn"],
        launchType="FARGATE",
        count=1,
        startedBy=f"taskmill-{str(context.job.id)[:27]}",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": settings.split(settings.ecs_subnets),
                "securityGroups": settings.split(settings.ecs_security_groups),
                "assignPublicIp": "DISABLED",
            }
        },
        overrides={
            "containerOverrides": [
                {
                    "name": CONTAINER_NAME,
                    **({"command": payload.command} if payload.command else {}),
                    "environment": [{"name": k, "value": v} for k, v in payload.env.items()],
                }
            ]
        },
    )
    if response.get("failures") or not response.get("tasks"):
        raise JobFailure(f"ECS could not start the task: {response.get('failures')}")
    task_arn = response["tasks"][0]["taskArn"]
    try:
        context.run_elsewhere(task_arn)
    except AttemptEnded:
        # The attempt ended while the task was being started (a deadline, an expired lease):
        # unrecorded, nothing would ever stop it, and the retry would start another.
        tasks = ContainerTasks(
            settings.ecs_cluster_arn, client_factory=context.services.client, logger=context.logger
        )
        tasks.stop(task_arn, ATTEMPT_ENDED)
        raise
    return {"task_arn": task_arn}
