"""cdk-nag acknowledgements: each finding the design accepts, on the narrowest construct that
has it, with the reason it is accepted.

cdk-nag 3 runs as a CDK validation plugin on every synth (app.py, or your own app when it adds
`AwsSolutionsChecks`); an unacknowledged error fails the synth. The acknowledgements are made
by the `Taskmill` construct on its own children, so they travel with it into your app and
cover nothing of yours. tests/infrastructure checks the report and what the accepted findings cover
(for instance, which actions are allowed on `*`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Token, Validations
from constructs import IConstruct

from taskmill_cdk.config import TaskmillConfig

if TYPE_CHECKING:
    from taskmill_cdk.console import Console
    from taskmill_cdk.stack import Taskmill

# Actions granted on "*" because they have no resource-level permissions. Anything else on
# "*" is a defect (the infrastructure tests fail on it).
ACTIONS_WITHOUT_RESOURCES = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ecr:GetAuthorizationToken",
        "ecs:RegisterTaskDefinition",
    }
)


def _ack(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def acknowledge_findings(platform: Taskmill, config: TaskmillConfig) -> None:
    stack = Stack.of(platform)
    api = platform.api
    _ack(
        api.rest_api,
        "AwsSolutions-COG4",
        "Taskmill issues its own JWTs (users live in Postgres); every non-public route uses the "
        "Lambda TOKEN authorizer that verifies them.",
    )
    for method in api.public_methods:
        _ack(
            method,
            "AwsSolutions-APIG4",
            "A public route by design (taskmill.api.public.PUBLIC_ROUTES): health, docs, and "
            "the login/register/refresh routes a caller uses to obtain a token.",
        )
    _ack(
        api.rest_api,
        "AwsSolutions-APIG2",
        "Request parameters are validated at the edge (Authorization required on protected "
        "routes); bodies are validated by the API against each job type's JSON schema, which "
        "returns field-level 400s that API Gateway models cannot.",
    )
    if not config.api.waf:
        _ack(
            api.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            f"WAF is off in {config.name} (api.waf in cdk.json) to save its fixed cost; stage "
            "throttling still applies.",
        )

    _ack(
        platform,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "The AWS-maintained minimum for a function to write its own logs.",
    )
    _ack(
        platform,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
        "The AWS-maintained minimum for a VPC function's network interfaces (EC2 ENI actions "
        "have no resource-level permissions).",
    )
    _ack(
        api.rest_api,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        "The account-level role API Gateway needs to write execution and access logs.",
    )
    _ack(
        platform,
        "AwsSolutions-IAM5[Resource::*]",
        "Only actions without resource-level permissions are granted on '*': "
        + ", ".join(sorted(ACTIONS_WITHOUT_RESOURCES))
        + " (checked by tests/infrastructure).",
    )
    _ack(
        api.function,
        f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_cfn(platform.recovery.redrive_function))}.Arn>:*]",
        "Invoking the redrive function's versions/aliases (grantInvoke's shape); one function.",
    )
    _ack(
        platform.database,
        f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_cfn(platform.database.migrations_function))}.Arn>:*]",
        "The custom-resource framework invokes the migrations function's versions; one function.",
    )
    if platform.containers is not None:
        _ack(
            platform.containers.execution_role,
            f"AwsSolutions-IAM5[Resource::{_arn_finding(stack, 'ecr', 'repository/*')}]",
            "container.run pulls the image a job names, from any ECR repository of this "
            "account and region; read-only image actions.",
        )
        _ack(
            platform.workers.function,
            "AwsSolutions-IAM5[Resource::"
            f"{_arn_finding(stack, 'ecs', 'task-definition/taskmill-*')}]",
            "container.run registers one task definition family per image/size "
            "(taskmill-<hash>); RunTask is further limited to this environment's cluster by an "
            "ecs:cluster condition.",
        )
        cluster = stack.get_logical_id(_cfn(platform.containers.cluster))
        for function in (platform.recovery.sweep_function, platform.workers.function):
            _ack(
                function,
                f"AwsSolutions-IAM5[Resource::{_arn_finding(stack, 'ecs', f'task/<{cluster}>/*')}]",
                "StopTask for container.run: the sweep stops the task of a job that timed out "
                "or was cancelled, the worker one started by an attempt that ended meanwhile; "
                "any task of this environment's cluster (task ids are not known in advance), "
                "also limited by an ecs:cluster condition.",
            )

    if platform.console is not None:
        _console(stack, platform.console)

    database = platform.database
    _ack(
        database.instance,
        "AwsSolutions-RDS11",
        "The default port: RDS Proxy listens on 5432 whatever the instance port, and only the "
        "Lambda and proxy security groups can reach either.",
    )
    if not config.database.multi_az:
        _ack(
            database.instance,
            "AwsSolutions-RDS3",
            f"Single-AZ in {config.name} to save cost (database.multi_az in cdk.json).",
        )
    if not config.database.deletion_protection:
        _ack(
            database.instance,
            "AwsSolutions-RDS10",
            f"{config.name} is disposable (database.deletion_protection in cdk.json).",
        )
    _ack(
        api.jwt_secret,
        "AwsSolutions-SMG4",
        "Rotating the JWT signing key would sign every user out (tokens carry no key id to "
        "roll over); rotate it deliberately with `aws secretsmanager put-secret-value`.",
    )
    _ack(
        platform.workers.webhook_secret,
        "AwsSolutions-SMG4",
        "Every user's webhook key is derived from this one and their receivers verify with "
        "it; automatic rotation would break them all without notice. Rotate it deliberately "
        "and tell the users to fetch their new key.",
    )
    if database.admin_secret is not None:
        _ack(
            database.admin_secret,
            "AwsSolutions-SMG4",
            "Only the first admin's initial password, read once and changed at first login; "
            "the migrations never change an existing account with it.",
        )


def _cfn(construct: IConstruct) -> CfnElement:
    child = construct.node.default_child
    assert isinstance(child, CfnElement)
    return child


def _console(stack: Stack, console: Console) -> None:
    distribution = console.distribution
    _ack(
        console.bucket,
        "AwsSolutions-S1",
        "Public static files (the console's HTML, JS and CSS) read only by CloudFront through "
        "origin access control; who uses the data is in the API's access logs.",
    )
    _ack(
        distribution,
        "AwsSolutions-CFR3",
        "The distribution serves the console's public static files only; the API's access "
        "logs record every data request (a log bucket per environment would cost more than "
        "it tells).",
    )
    _ack(
        distribution,
        "AwsSolutions-CFR4",
        "The default *.cloudfront.net certificate (no custom domain in cdk.json); its TLS "
        "policy is CloudFront's. A custom domain with an ACM certificate sets TLSv1.2_2021.",
    )
    _ack(
        distribution,
        "AwsSolutions-CFR1",
        "The console is for this environment's users wherever they are; the API decides who "
        "may do what.",
    )
    _ack(
        distribution,
        "AwsSolutions-CFR2",
        "Static files only, answered from CloudFront's cache; the API behind them has its own "
        "throttling (and WAF where api.waf is on).",
    )
    # The CDK's BucketDeployment function (its own Lambda asset, no Docker) copies the
    # console into the bucket on deploy; its runtime and grants are the CDK's.
    role = console.deployment.handler_role
    function = role.node.scope
    assert function is not None
    _ack(
        function,
        "AwsSolutions-L1",
        "The CDK's BucketDeployment handler: its runtime is chosen by aws-cdk-lib.",
    )
    # A stack-level singleton, outside this construct: its acknowledgements go on it.
    _ack(
        role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "The CDK's BucketDeployment handler: the AWS-maintained minimum to write its logs.",
    )
    _ack(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "The CDK's BucketDeployment handler invalidates the console's distribution after a "
        "deploy: cloudfront:CreateInvalidation/GetInvalidation as the CDK grants them.",
    )
    files = stack.get_logical_id(_cfn(console.bucket))
    region = _as_printed(stack.region, "Region")
    account = _as_printed(stack.account, "AccountId")
    for finding in (
        "Action::s3:Abort*",
        "Action::s3:DeleteObject*",
        "Action::s3:GetBucket*",
        "Action::s3:GetObject*",
        "Action::s3:List*",
        f"Resource::<{files}.Arn>/*",
        f"Resource::arn:aws:s3:::cdk-hnb659fds-assets-{account}-{region}/*",
        # The same, in an app without the partition-literals feature flag (partition unknown).
        f"Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-{account}-{region}/*",
    ):
        _ack(
            role,
            f"AwsSolutions-IAM5[{finding}]",
            "BucketDeployment's grants (grantRead on the CDK asset, grantReadWrite on the "
            "console's bucket): object wildcards within those two buckets only.",
        )


def _as_printed(value: str, pseudo_parameter: str) -> str:
    """A stack's account, region or partition as cdk-nag prints it in a finding: literally
    when the stack knows it, else as the pseudo parameter."""
    return f"<AWS::{pseudo_parameter}>" if Token.is_unresolved(value) else value


def _arn_finding(stack: Stack, service: str, resource: str) -> str:
    """An ARN from `Stack.format_arn` as cdk-nag prints it. A stack pinned to an account has
    it literally in the ARN; the partition is literal only where the region is known and the
    app sets `@aws-cdk/core:enablePartitionLiterals` (this repository's cdk.json does, a
    user's app may not)."""
    partition = _as_printed(stack.partition, "Partition")
    region = _as_printed(stack.region, "Region")
    account = _as_printed(stack.account, "AccountId")
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"
