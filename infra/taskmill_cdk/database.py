"""The database: RDS Postgres (behind RDS Proxy where `database.proxy` is on), its secret, and
the schema migrations that run on every deploy (a custom resource calling the same runner the
local stack uses).

Without the proxy the functions connect to the instance itself: the secret's own host, the
same TLS requirement, and the Lambda security group allowed in by the instance's group. The
functions' concurrency caps (`EnvironmentConfig.database_clients`) are then the only bound on
connections, checked at synth against the instance's `max_connections`."""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from taskmill_cdk.bundling import packages_fingerprint
from taskmill_cdk.config import OTHER_DATABASE_CONCURRENCY, EnvironmentConfig
from taskmill_cdk.functions import FunctionFactory
from taskmill_cdk.log_groups import log_group
from taskmill_cdk.network import POSTGRES_PORT, Network
from taskmill_cdk.removal import database_removal_policy
from taskmill_cdk.secrets import generated_secret

DATABASE_NAME = "taskmill"
MASTER_USER = "taskmill"
EXPORTED_LOGS = ("postgresql", "upgrade")


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        network: Network,
        functions: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.database
        vpc = network.vpc
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(
                settings.engine_version, settings.engine_version.split(".")[0]
            )
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Taskmill Postgres",
            allow_all_outbound=False,
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="Taskmill: TLS required, slow statements logged",
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )
        instance_identifier = f"{config.resource_prefix}-db"
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(settings.instance_type),
            instance_identifier=instance_identifier,
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.security_group],
            port=POSTGRES_PORT,
            credentials=rds.Credentials.from_generated_secret(
                MASTER_USER, secret_name=f"{config.resource_prefix}/database"
            ),
            database_name=DATABASE_NAME,
            parameter_group=parameters,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings.allocated_storage_gb,
            max_allocated_storage=settings.max_allocated_storage_gb,
            multi_az=settings.multi_az,
            backup_retention=Duration.days(settings.backup_retention_days),
            deletion_protection=settings.deletion_protection,
            removal_policy=database_removal_policy(config),
            iam_authentication=True,
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
            cloudwatch_logs_exports=list(EXPORTED_LOGS),
            copy_tags_to_snapshot=True,
        )
        # The exported logs' groups are created here, with the environment's retention, before
        # RDS would create them without one (CDK's alternative is a log-retention Lambda).
        for exported in EXPORTED_LOGS:
            group = log_group(
                self,
                f"{exported.title()}Logs",
                config,
                name=f"/aws/rds/instance/{instance_identifier}/{exported}",
            )
            self.instance.node.add_dependency(group)
        assert self.instance.secret is not None
        self.secret = self.instance.secret
        # Rotation runs in the application subnets and reaches Secrets Manager through its
        # endpoint; the functions read the secret at each connect, so they follow it.
        rotation = self.instance.add_rotation_single_user(
            automatically_after=Duration.days(settings.rotation_days),
            vpc_subnets=network.app_subnets,
            endpoint=network.endpoints.get("secretsmanager"),
        )
        # CDK lets the rotation function's group into the database but not into the endpoint,
        # whose group answers only what it names: without this rule the rotation could not
        # reach Secrets Manager (private DNS sends it to the endpoint, NAT or not).
        rotation_group = rotation.node.find_child("SecurityGroup")
        assert isinstance(rotation_group, ec2.SecurityGroup)
        self.rotation_security_group = rotation_group
        network.endpoint_security_group.add_ingress_rule(
            rotation_group, ec2.Port.tcp(443), "HTTPS from the database secret's rotation"
        )
        # DatabaseProxy has no default port: name it.
        port = ec2.Port.tcp(POSTGRES_PORT)
        self.proxy: rds.DatabaseProxy | None = None
        self.proxy_security_group: ec2.SecurityGroup | None = None
        if settings.proxy:
            self.proxy_security_group = ec2.SecurityGroup(
                self,
                "ProxySecurityGroup",
                vpc=vpc,
                description="Taskmill RDS Proxy",
                allow_all_outbound=True,
            )
            self.proxy = rds.DatabaseProxy(
                self,
                "Proxy",
                db_proxy_name=f"{config.resource_prefix}-proxy",
                proxy_target=rds.ProxyTarget.from_instance(self.instance),
                secrets=[self.secret],
                vpc=vpc,
                vpc_subnets=network.data_subnets,
                security_groups=[self.proxy_security_group],
                require_tls=True,
                max_connections_percent=settings.proxy_max_connections_percent,
                idle_client_timeout=Duration.minutes(30),
            )
            # Lambdas -> proxy -> database.
            self.proxy_security_group.add_ingress_rule(
                network.lambda_security_group, port, "Taskmill Lambdas to RDS Proxy"
            )
            self.security_group.add_ingress_rule(self.proxy_security_group, port, "RDS Proxy")
        # The migrations always talk to the instance itself, and without a proxy every
        # function does (rotation gets its own group from CDK).
        self.security_group.add_ingress_rule(
            network.lambda_security_group,
            port,
            "Migrations (straight to the instance)"
            if self.proxy is not None
            else "Taskmill Lambdas (no proxy: straight to the instance)",
        )

        self.migrations = self._migrations(config, functions)

    def environment(self, *, through_proxy: bool = True) -> dict[str, str]:
        """What a function needs to connect: the secret's ARN (never its value) and, where
        there is one, the proxy (whose host replaces the instance's from the secret)."""
        variables = {
            "TASKMILL_DB_SECRET_ARN": self.secret.secret_arn,
            "TASKMILL_DB_SSLMODE": "require",
        }
        if through_proxy and self.proxy is not None:
            variables["TASKMILL_DB_PROXY_HOST"] = self.proxy.endpoint
        return variables

    def grant_connect(self, grantee: iam.IGrantable) -> None:
        self.secret.grant_read(grantee)

    def _migrations(self, config: EnvironmentConfig, functions: FunctionFactory) -> CustomResource:
        environment = self.environment(through_proxy=False)
        admin_secret: secretsmanager.Secret | None = None
        if config.admin_email:
            # A generated password for the first admin; read it once from Secrets Manager
            # and change it after the first login.
            admin_secret = generated_secret(
                self,
                "FirstAdminPassword",
                config,
                name="first-admin-password",
                description=f"Initial password of {config.admin_email}",
                length=32,
            )
            environment["TASKMILL_BOOTSTRAP_ADMIN_EMAIL"] = config.admin_email
            environment["TASKMILL_BOOTSTRAP_ADMIN_SECRET_ARN"] = admin_secret.secret_arn
        self.admin_secret = admin_secret
        function = functions.function(
            self,
            "Migrations",
            name="migrations",
            asset="migrations",
            handler="handler.handler",
            description="Applies schema migrations and creates the first admin (deploy time)",
            environment=environment,
            reserved_concurrency=OTHER_DATABASE_CONCURRENCY["migrations"],
            timeout=Duration.minutes(5),
        )
        self.grant_connect(function)
        if admin_secret is not None:
            admin_secret.grant_read(function)
        provider = cr.Provider(
            self,
            "MigrationsProvider",
            on_event_handler=function,
            log_group=log_group(self, "MigrationsProviderLogs", config),
        )
        resource = CustomResource(
            self,
            "Schema",
            service_token=provider.service_token,
            resource_type="Custom::TaskmillSchema",
            properties={
                "PackageFingerprint": packages_fingerprint(functions.layers.packages),
                "AdminEmail": config.admin_email or "",
            },
        )
        resource.node.add_dependency(self.instance)
        self.migrations_function = function
        return resource
