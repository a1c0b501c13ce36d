"""The network: a VPC whose Lambdas and database live in private subnets.

Without NAT (the `dev` default) nothing in the VPC has a route to the internet: the
functions reach AWS through interface endpoints, and S3 (ECR image layers) through a free
gateway endpoint. With NAT the application subnets get an egress route, which job types
calling the internet (http.request, webhook.deliver, container images from public
registries) need.

Interface endpoints are the largest fixed cost of an idle environment (per endpoint, per AZ,
per hour): an environment lists only those its functions call, in as many AZs as its
application tier uses (docs/PERFORMANCE.md, "Cost").
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.log_groups import log_group

POSTGRES_PORT = 5432

_ENDPOINT_SERVICES: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "secretsmanager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "lambda": ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
    "ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "ecr.api": ec2.InterfaceVpcEndpointAwsService.ECR,
    "ecr.dkr": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "email": ec2.InterfaceVpcEndpointAwsService.EMAIL,
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        settings = config.network
        egress = settings.nat_gateways > 0
        subnets = [
            ec2.SubnetConfiguration(
                name="app",
                subnet_type=(
                    ec2.SubnetType.PRIVATE_WITH_EGRESS
                    if egress
                    else ec2.SubnetType.PRIVATE_ISOLATED
                ),
                cidr_mask=22,
            ),
            ec2.SubnetConfiguration(
                name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
            ),
        ]
        if egress:
            subnets.insert(
                0,
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=f"{config.resource_prefix}-vpc",
            max_azs=settings.max_azs,
            nat_gateways=settings.nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        flow_logs = log_group(self, "FlowLogs", config)
        self.vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
        # The application tier may use fewer AZs than the VPC (network.app_azs): the functions,
        # endpoints and tasks then live in the first AZ(s). The data tier keeps every AZ: RDS
        # needs a subnet group in two AZs even for a single-AZ instance, and the proxy too.
        self.app_azs = list(self.vpc.availability_zones[: settings.application_azs])
        self.app_subnets = ec2.SubnetSelection(
            subnet_group_name="app", availability_zones=self.app_azs
        )
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")

        self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[self.app_subnets],
        )
        # One group per tier: Lambdas (and Fargate tasks) -> proxy -> database.
        self.lambda_security_group = ec2.SecurityGroup(
            self,
            "LambdaSecurityGroup",
            vpc=self.vpc,
            description="Taskmill Lambdas and container.run tasks",
            allow_all_outbound=True,
        )
        # Interface endpoints answer HTTPS from the Lambdas and tasks only.
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Taskmill interface endpoints",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            self.lambda_security_group, ec2.Port.tcp(443), "HTTPS from Taskmill Lambdas and tasks"
        )
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for name in settings.interface_endpoints:
            self.endpoints[name] = self.vpc.add_interface_endpoint(
                f"Endpoint{name.replace('.', ' ').title().replace(' ', '')}",
                service=_ENDPOINT_SERVICES[name],
                subnets=self.app_subnets,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
            )
