"""The HTTP API: API Gateway REST API -> the API function, with the JWT authorizer on every
route except `taskmill.api.public.PUBLIC_ROUTES` (the list the local gateway also reads).

API Gateway answers some errors itself (no token, throttled, WAF); those come in the SPEC's
error envelope from `taskmill.api.gateway_responses`, as they do locally.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Size
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct
from taskmill.api.gateway_responses import GATEWAY_RESPONSES, MIN_COMPRESSION_BYTES
from taskmill.api.public import PUBLIC_ROUTES

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.database import Database
from taskmill_cdk.functions import FunctionFactory
from taskmill_cdk.log_groups import log_group
from taskmill_cdk.queues import JobQueues
from taskmill_cdk.secrets import generated_secret

AUTHORIZATION_FORMAT = r"^Bearer [-0-9A-Za-z_.~+/]+=*$"
AUTHORIZATION_HEADER = "method.request.header.Authorization"
# Policies are cached per token for the whole stage. The API handler checks the account and
# the session in Postgres on every request, so the cache never extends a revoked role or
# session; it only bounds how long a token whose signature key changed keeps passing here.
AUTHORIZER_CACHE = Duration.seconds(60)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        functions: FunctionFactory,
        database: Database,
        queues: JobQueues,
        redrive_function: lambda_.IFunction,
        webhook_secret: secretsmanager.ISecret,
        cors_origins: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.api
        # The browser origins allowed to call the API: the config's, unless the stack says
        # (the web console's origin, infra/taskmill_cdk/console.py).
        origins = settings.cors_origins if cors_origins is None else cors_origins
        self.jwt_secret = generated_secret(
            self,
            "JwtSigningKey",
            config,
            name="jwt-signing-key",
            description="HS256 key signing Taskmill access tokens",
        )
        jwt_environment = {"TASKMILL_JWT_SECRET_ARN": self.jwt_secret.secret_arn}

        # Verifies a signature only: no database, so it stays outside the VPC.
        self.authorizer_function = functions.function(
            self,
            "Authorizer",
            name="authorizer",
            asset="api",
            handler="authorizer.handler",
            description="JWT authorizer for the Taskmill API",
            environment=jwt_environment,
            reserved_concurrency=None,
            timeout=Duration.seconds(10),
            memory_mb=512,
            in_vpc=False,
            snap_start="authorizer" in settings.snap_start,
        )
        self.jwt_secret.grant_read(self.authorizer_function)

        self.function = functions.function(
            self,
            "Handler",
            name="api",
            asset="api",
            handler="handler.handler",
            description="The Taskmill HTTP API",
            environment={
                **database.environment(),
                **queues.environment(),
                **jwt_environment,
                **functions.job_types,
                **config.flow_environment(),
                "TASKMILL_ALLOW_SIGNUP": str(config.allow_signup).lower(),
                "TASKMILL_MAX_UNFINISHED_JOBS": str(config.max_unfinished_jobs),
                "TASKMILL_MAX_SCHEDULES_PER_USER": str(config.max_schedules_per_user),
                "TASKMILL_IDEMPOTENCY_TTL_SECONDS": str(config.idempotency_ttl_seconds),
                "TASKMILL_CORS_ORIGINS": ",".join(origins),
                "TASKMILL_REDRIVE_FUNCTION_NAME": redrive_function.function_name,
                # Each user reads their own key derived from it (GET /v1/auth/me/webhook-secret).
                "TASKMILL_WEBHOOK_SECRET_ARN": webhook_secret.secret_arn,
            },
            reserved_concurrency=settings.reserved_concurrency,
            timeout=Duration.seconds(29),  # API Gateway's integration timeout
            memory_mb=settings.memory_mb,
            snap_start="api" in settings.snap_start,
        )
        database.grant_connect(self.function)
        self.jwt_secret.grant_read(self.function)
        webhook_secret.grant_read(self.function)
        queues.grant_send_jobs(self.function)
        queues.grant_read_depths(self.function)
        queues.grant_redrive(self.function)
        redrive_function.grant_invoke(self.function)

        access_logs = log_group(self, "AccessLogs", config)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{config.resource_prefix}-api",
            description="Taskmill job API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway gzips answers this large for clients that accept it (Swagger UI's
            # page, the OpenAPI document, long lists); the function returns plain text.
            min_compression_size=Size.bytes(MIN_COMPRESSION_BYTES),
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=config.name,
                throttling_rate_limit=settings.throttle_rate_limit,
                throttling_burst_limit=settings.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies may carry secrets
                metrics_enabled=True,
                tracing_enabled=True,
            ),
            default_cors_preflight_options=(
                apigw.CorsOptions(
                    allow_origins=list(origins),
                    allow_methods=apigw.Cors.ALL_METHODS,
                    allow_headers=[
                        "Authorization",
                        "Content-Type",
                        "Idempotency-Key",
                        "X-Correlation-Id",
                    ],
                    max_age=Duration.hours(1),
                )
                if origins
                else None
            ),
        )
        for response_type, error in GATEWAY_RESPONSES.items():
            headers = {"Content-Type": "'application/json'", **_gateway_cors(origins)}
            self.rest_api.add_gateway_response(
                f"Gateway{response_type.title().replace('_', '')}",
                type=apigw.ResponseType.of(response_type),
                status_code=str(error.status),
                response_headers=headers,
                templates={"application/json": error.body()},
            )

        # What API Gateway invokes: the function, or with SnapStart the alias of its latest
        # published version (SnapStart applies to published versions only, never $LATEST).
        self.authorizer_target = self._invoked(
            self.authorizer_function, "authorizer" in settings.snap_start
        )
        self.target = self._invoked(self.function, "api" in settings.snap_start)
        self.authorizer = apigw.TokenAuthorizer(
            self,
            "TokenAuthorizer",
            authorizer_name=f"{config.resource_prefix}-jwt",
            handler=self.authorizer_target,
            identity_source=apigw.IdentitySource.header("Authorization"),
            validation_regex=AUTHORIZATION_FORMAT,
            results_cache_ttl=AUTHORIZER_CACHE,
        )
        self.validator = apigw.RequestValidator(
            self,
            "RequireAuthorization",
            rest_api=self.rest_api,
            validate_request_parameters=True,
            validate_request_body=False,  # the API validates bodies with detailed errors
        )
        self._routes()
        if settings.waf:
            self.web_acl = self._waf(config)

    @staticmethod
    def _invoked(function: lambda_.Function, snap_start: bool) -> lambda_.IFunction:
        if not snap_start:
            return function
        return lambda_.Alias(function, "Live", alias_name="live", version=function.current_version)

    def _routes(self) -> None:
        # One resource-policy statement for the whole API rather than one per method (which
        # also means no test-invoke permissions: `allow_test_invoke` would be ignored).
        integration = apigw.LambdaIntegration(self.target, scope_permission_to_method=False)
        protected: dict[str, Any] = {
            "authorizer": self.authorizer,
            "authorization_type": apigw.AuthorizationType.CUSTOM,
            "request_validator": self.validator,
            "request_parameters": {AUTHORIZATION_HEADER: True},
        }
        # Every path goes to the API function behind the authorizer ({proxy+}); public routes
        # are explicit resources without it. API Gateway does not fall back from an explicit
        # resource to a sibling {proxy+}, so every explicit resource gets its own protected
        # {proxy+} child and a protected ANY beside its public method.
        self.public_methods: list[apigw.Method] = []
        public: dict[str, list[str]] = {}
        for method, path in sorted(PUBLIC_ROUTES):
            public.setdefault(path, []).append(method)
        explicit: set[str] = {"/"}
        for path in public:
            parts = path.strip("/").split("/")
            explicit.update("/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1))
        for path in sorted(explicit):
            resource = self.rest_api.root.resource_for_path(path)
            resource.add_resource("{proxy+}").add_method("ANY", integration, **protected)
            for method in public.get(path, []):
                self.public_methods.append(
                    resource.add_method(
                        method, integration, authorization_type=apigw.AuthorizationType.NONE
                    )
                )
            if path != "/":
                resource.add_method("ANY", integration, **protected)

    def _waf(self, config: EnvironmentConfig) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True,
                metric_name=f"{config.resource_prefix}-{name}",
                sampled_requests_enabled=True,
            )

        def managed(name: str, priority: int, excluded: list[str]) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule,
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                            for rule in excluded
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{config.resource_prefix}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP", limit=config.api.waf_rate_limit
                        )
                    ),
                    visibility_config=visibility("rate-per-ip"),
                ),
                # Job payloads are JSON up to the API's own limit (checked by the API with a
                # 413); the common rule set's 8 KB body rule would block legitimate jobs.
                managed("AWSManagedRulesCommonRuleSet", 1, ["SizeRestrictions_BODY"]),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2, []),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
        return acl

    @property
    def url(self) -> str:
        return self.rest_api.url


def _gateway_cors(origins: tuple[str, ...]) -> dict[str, str]:
    """The CORS headers of the errors API Gateway answers itself (a 401 for an expired
    token, a 429, a 413), so a browser app on an allowed origin reads their envelope instead
    of a bare CORS failure. A gateway response's headers are fixed or copied from the
    request, never chosen from a list: with several origins it names the request's own
    (`Vary: Origin`). Those answers hold nothing but their fixed error, so another origin
    reading one learns nothing; the function's answers, which hold data, name allowed
    origins only (Powertools' CORS)."""
    if not origins:
        return {}
    if "*" in origins:
        return {"Access-Control-Allow-Origin": "'*'"}
    if len(origins) == 1:
        return {"Access-Control-Allow-Origin": f"'{origins[0]}'"}
    return {"Access-Control-Allow-Origin": "method.request.header.Origin", "Vary": "'Origin'"}
