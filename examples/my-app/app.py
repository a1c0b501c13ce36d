"""A user's own CDK app with Taskmill inside it: your stack, your VPC, your job types.

pip install -r requirements.txt   # Taskmill from this repository, with its CDK extra
python app.py                     # or: npx cdk synth (no Docker, no AWS credentials)
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from cdk_nag import AwsSolutionsChecks

from taskmill_cdk import NetworkConfig, Taskmill, TaskmillConfig, WorkerConfig


def build_app(outdir: str | None = None) -> cdk.App:
    # `cdk synth` says where to write (CDK_OUTDIR); `python app.py` writes to cdk.out too.
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR", "cdk.out"))
    stack = cdk.Stack(app, "MyApp")

    # Your VPC: private subnets with NAT for the functions (job types may call the internet),
    # isolated ones that Taskmill picks for its database. Its flow log is yours to keep.
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=1,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )
    vpc.add_flow_log("FlowLog")

    jobs = Taskmill(
        stack,
        "Jobs",
        config=TaskmillConfig(
            name="prod",
            resource_prefix="myapp-jobs",
            # The functions reach the internet through the NAT: only the endpoints they
            # cannot do without are added to the VPC.
            network=NetworkConfig(nat_gateways=1, interface_endpoints=("sqs", "secretsmanager")),
            worker=WorkerConfig(container_jobs=False),
            job_modules=("my_jobs.invoices",),
        ),
        vpc=vpc,
    )
    # What Taskmill exposes is yours to extend, e.g. your own alarm on its topic:
    cdk.CfnOutput(stack, "JobsApi", value=jobs.api.url)

    # cdk-nag over the whole app: Taskmill's own accepted findings travel with the construct.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
