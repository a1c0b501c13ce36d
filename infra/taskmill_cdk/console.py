"""The web console (console/, SPEC §7) in AWS: a private S3 bucket read by CloudFront through
origin access control, security headers on every answer (a CSP whose connect-src is this
environment's API and nothing else), and config.json written at deploy time with the API's
URL. The API's CORS allows this distribution's origin (`stack.py` passes `origin`)."""

from __future__ import annotations

from pathlib import Path

import jsii
from aws_cdk import Duration, IStableStringProducer, Lazy, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from taskmill_cdk.config import TaskmillConfig
from taskmill_cdk.log_groups import log_group
from taskmill_cdk.removal import data_removal_policy

# The checkout's console/ (two levels up), or the copy an installed wheel carries (setup.py).
_CHECKOUT_CONSOLE = Path(__file__).resolve().parents[2] / "console"
CONSOLE_DIR = (
    _CHECKOUT_CONSOLE
    if (_CHECKOUT_CONSOLE / "index.html").is_file()
    else Path(__file__).resolve().parent / "console_static"
)
PRICE_CLASSES = {
    "100": cloudfront.PriceClass.PRICE_CLASS_100,
    "200": cloudfront.PriceClass.PRICE_CLASS_200,
    "All": cloudfront.PriceClass.PRICE_CLASS_ALL,
}


def content_security_policy(api_origin: str) -> str:
    """The console's CSP: its own files only, no inline script or style, and requests to
    `api_origin` alone (local/taskmill_local/console.py serves the same with the API on 'self')."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {api_origin}; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )


@jsii.implements(IStableStringProducer)
class _Later:
    """A value known only once the API exists (the distribution is made before it, because
    the API's CORS needs the distribution's origin)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.value: str | None = None

    def produce(self) -> str:
        if self.value is None:
            raise ValueError(f"the console's {self.what} was never set (Console.point_at)")
        return self.value


class Console(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TaskmillConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._api_origin = _Later("API origin")
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Static files rebuilt from the repository on every deploy: nothing to keep. The
            # deployment empties the bucket when it is removed (retain_on_delete below).
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            response_headers_policy_name=f"{config.resource_prefix}-console",
            comment="Taskmill console: CSP allowing only this environment's API",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(Lazy.string(self._api_origin)),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Cross-Origin-Opener-Policy", value="same-origin", override=True
                    ),
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy",
                        value="camera=(), microphone=(), geolocation=()",
                        override=True,
                    ),
                ]
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{config.resource_prefix} web console",
            default_root_object="index.html",
            price_class=PRICE_CLASSES[config.console.price_class],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                compress=True,
            ),
        )

    @property
    def origin(self) -> str:
        """The console's origin (what the API's CORS allows)."""
        return f"https://{self.distribution.distribution_domain_name}"

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    def point_at(self, rest_api: apigw.RestApi) -> None:
        """Point the console at the environment's API: the CSP's connect-src (the API's
        origin, from its id: no reference to its stage, which depends on the CORS that
        depends on this distribution) and config.json (the stage's URL)."""
        stack = Stack.of(self)
        self._api_origin.value = (
            f"https://{rest_api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}"
        )
        self.deployment = s3_deployment.BucketDeployment(
            self,
            "Deploy",
            sources=[
                s3_deployment.Source.asset(str(CONSOLE_DIR), exclude=["config.json", ".*"]),
                s3_deployment.Source.json_data("config.json", {"apiUrl": rest_api.url}),
            ],
            destination_bucket=self.bucket,
            # Browsers revalidate every file (the names carry no content hash); CloudFront's
            # copies are invalidated on each deployment.
            cache_control=[s3_deployment.CacheControl.no_cache()],
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            retain_on_delete=data_removal_policy(self._config) == RemovalPolicy.RETAIN,
            memory_limit=256,
            # The environment's retention and removal policy, as every log group here.
            log_group=log_group(self, "DeployLogs", self._config),
        )
