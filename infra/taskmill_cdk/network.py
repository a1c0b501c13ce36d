"""The network: a VPC whose Lambdas and database live in private subnets.

Without NAT (the `dev` default) nothing in the VPC has a route to the internet: the
functions reach AWS through interface endpoints, and S3 (ECR image layers) through a free
gateway endpoint. With NAT the application subnets get an egress route, which job types
calling the internet (http.request, webhook.deliver, container images from public
registries) need.

Interface endpoints are the largest fixed cost of an idle environment (per endpoint, per AZ,
per hour): an environment lists only those its functions call, in as many AZs as its
application tier uses (docs/PERFORMANCE.md, "Cost").

Your own VPC may be passed in instead (`Taskmill(..., vpc=...)`): Taskmill then creates no
VPC, flow log or S3 gateway endpoint (they are the VPC owner's), and places the functions,
its interface endpoints and container.run tasks in the private subnets with egress (else the
isolated ones), the database and proxy in the isolated subnets (else the same as the
functions), unless `app_subnets` / `data_subnets` say otherwise.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.log_groups import log_group

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
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        vpc: ec2.IVpc | None = None,
        app_subnets: ec2.SubnetSelection | None = None,
        data_subnets: ec2.SubnetSelection | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if vpc is None:
            self._create_vpc(config)
        else:
            self.vpc = vpc
            self.app_subnets = app_subnets or _private_subnets(vpc)
            self.data_subnets = data_subnets or (
                ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
                if vpc.isolated_subnets
                else self.app_subnets
            )
            _require_two_azs(self._selected(self.data_subnets))
        self._add_security_groups_and_endpoints(config)

    def app_subnet_ids(self) -> list[str]:
        """The application tier's subnets (container.run starts its tasks in them)."""
        return self._selected(self.app_subnets).subnet_ids

    def _selected(self, selection: ec2.SubnetSelection) -> ec2.SelectedSubnets:
        return self.vpc.select_subnets(
            availability_zones=selection.availability_zones,
            one_per_az=selection.one_per_az,
            subnet_filters=selection.subnet_filters,
            subnet_group_name=selection.subnet_group_name,
            subnets=selection.subnets,
            subnet_type=selection.subnet_type,
        )

    def _create_vpc(self, config: EnvironmentConfig) -> None:
        settings = config.network
        stack = Stack.of(self)
        if settings.max_azs > 2 and (
            Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region)
        ):
            # The CDK cannot list the AZs of a region it does not know: it uses two.
            raise ValueError(
                f"network.max_azs {settings.max_azs} needs a stack with an account and region "
                "(cdk.json `account`, or env= on your stack): an environment-agnostic stack's "
                "VPC gets two AZs"
            )
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
        vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=f"{config.resource_prefix}-vpc",
            max_azs=settings.max_azs,
            nat_gateways=settings.nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        self.vpc = vpc
        flow_logs = log_group(self, "FlowLogs", config)
        vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
        # The application tier may use fewer AZs than the VPC (network.app_azs): the functions,
        # endpoints and tasks then live in the first AZ(s). The data tier keeps every AZ: RDS
        # needs a subnet group in two AZs even for a single-AZ instance, and the proxy too.
        app_azs = list(vpc.availability_zones[: settings.application_azs])
        self.app_subnets = ec2.SubnetSelection(subnet_group_name="app", availability_zones=app_azs)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")

        vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[self.app_subnets],
        )

    def _add_security_groups_and_endpoints(self, config: EnvironmentConfig) -> None:
        settings = config.network
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
            endpoint_id = f"Endpoint{name.replace('.', ' ').title().replace(' ', '')}"
            options = {
                "service": _ENDPOINT_SERVICES[name],
                "subnets": self.app_subnets,
                "private_dns_enabled": True,
                "open": False,
                "security_groups": [self.endpoint_security_group],
            }
            # In a VPC of our own the endpoints are its children (as they always were, so
            # their logical ids hold); in yours they are ours, not added to your construct.
            self.endpoints[name] = (
                self.vpc.add_interface_endpoint(endpoint_id, **options)  # type: ignore[arg-type]
                if self.vpc.node.scope is self
                else ec2.InterfaceVpcEndpoint(self, endpoint_id, vpc=self.vpc, **options)  # type: ignore[arg-type]
            )


def _private_subnets(vpc: ec2.IVpc) -> ec2.SubnetSelection:
    """A passed-in VPC's subnets for the functions: private with egress if it has them (job
    types calling the internet then reach it), else isolated (endpoints only)."""
    if vpc.private_subnets:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
    if vpc.isolated_subnets:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    raise ValueError(
        "the VPC passed to Taskmill has no private subnets: the functions and the database "
        "never go in public subnets (pass app_subnets/data_subnets to choose)"
    )


def _require_two_azs(data: ec2.SelectedSubnets) -> None:
    """RDS refuses a subnet group in one AZ (even for a single-AZ instance) at deploy time."""
    zones = set(data.availability_zones)
    if len(zones) < 2:
        raise ValueError(
            f"the data subnets span {len(zones)} availability zone(s) of the VPC passed to "
            "Taskmill: the database's subnet group needs subnets in at least two (a VPC "
            "with max_azs >= 2, or data_subnets that span two)"
        )
