"""The synthesized CDK app (one synth per environment per session)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match
from taskmill.topology import DLQ_RETENTION_SECONDS, MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS


def queues(template: Any) -> dict[str, dict[str, Any]]:
    return {
        resource["Properties"]["QueueName"]: resource
        for resource in template.find_resources("AWS::SQS::Queue").values()
    }


def test_one_queue_and_one_dlq_per_priority(dev: Any) -> None:
    template = dev.template
    assert set(queues(template)) == {
        f"taskmill-dev-jobs-{p}{suffix}"
        for p in ("high", "normal", "low")
        for suffix in ("", "-dlq")
    }


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_each_queue_dead_letters_to_its_own_dlq_with_sse(dev: Any, priority: str) -> None:
    template = dev.template
    by_name = queues(template)
    queue = by_name[f"taskmill-dev-jobs-{priority}"]["Properties"]
    dlq = by_name[f"taskmill-dev-jobs-{priority}-dlq"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert dlq["MessageRetentionPeriod"] == DLQ_RETENTION_SECONDS
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT
    dlq_logical_id = next(
        logical
        for logical, resource in template.find_resources("AWS::SQS::Queue").items()
        if resource["Properties"]["QueueName"] == f"taskmill-dev-jobs-{priority}-dlq"
    )
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_logical_id, "Arn"]}


def test_queues_refuse_plain_http(dev: Any) -> None:
    template = dev.template
    template.resource_count_is("AWS::SQS::QueuePolicy", 6)
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_environments_are_named_and_keep_prod_data(dev: Any, prod: Any) -> None:
    dev_template = dev.template
    prod_template = prod.template
    assert all(name.startswith("taskmill-prod-") for name in queues(prod_template))
    prod_policies = {
        r["DeletionPolicy"] for r in prod_template.find_resources("AWS::SQS::Queue").values()
    }
    dev_policies = {
        r["DeletionPolicy"] for r in dev_template.find_resources("AWS::SQS::Queue").values()
    }
    assert prod_policies == {"Retain"}
    assert dev_policies == {"Delete"}
