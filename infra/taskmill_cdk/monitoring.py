"""Monitoring: one CloudWatch dashboard per environment and the alarms an operator is paged
for, sent to an SNS topic (with the configured e-mail subscribed)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from taskmill.lambda_support import NAMESPACE as METRICS_NAMESPACE

from taskmill_cdk.config import EnvironmentConfig
from taskmill_cdk.queues import JobQueues
from taskmill_cdk.removal import data_removal_policy

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
JOB_METRICS = ("JobsCreated", "JobsSucceeded", "JobsFailed", "JobsRetried")


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        queues: JobQueues,
        functions: Mapping[str, lambda_.Function],
        rest_api: apigw.RestApi,
        database: rds.DatabaseInstance,
        proxy: rds.DatabaseProxy | None,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key.
        self.topic_key = key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts Taskmill's alarm topic",
            enable_key_rotation=True,
            removal_policy=data_removal_policy(config),
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=f"{config.resource_prefix}-alarms",
            display_name=f"Taskmill {config.name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.action = cw_actions.SnsAction(self.topic)

        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=config.resource_prefix,
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# Taskmill `{config.name}`\nQueues, functions, API, database and "
                "jobs. Alarms go to the SNS topic "
                f"`{config.resource_prefix}-alarms`.",
                width=24,
                height=2,
            )
        )
        self.thresholds = config.alarms
        self._queues(queues)
        self._functions(functions)
        self._api(rest_api)
        self._database(database, proxy)
        self._jobs()
        self._sweep_failures()

    def _alarm(
        self,
        construct_id: str,
        description: str,
        *,
        metric: cw.IMetric,
        threshold: float,
        comparison_operator: cw.ComparisonOperator,
        evaluation_periods: int,
    ) -> None:
        alarm = cw.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison_operator,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self.action)
        alarm.add_ok_action(self.action)

    def _alarm_on_any(self, construct_id: str, description: str, metric: cw.IMetric) -> None:
        """Pages on a single occurrence (a dead-lettered job, a failed invocation)."""
        self._alarm(
            construct_id,
            description,
            metric=metric,
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
        )

    def _queues(self, queues: JobQueues) -> None:
        widgets: list[cw.IWidget] = []
        for priority, queue in queues.queues.items():
            dlq = queues.dead_letter_queues[priority]
            name = priority.value
            visible = queue.metric_approximate_number_of_messages_visible(
                label="visible", period=ONE_MINUTE, statistic="Maximum"
            )
            in_flight = queue.metric_approximate_number_of_messages_not_visible(
                label="in flight", period=ONE_MINUTE, statistic="Maximum"
            )
            oldest = queue.metric_approximate_age_of_oldest_message(
                label="age of oldest (s)", period=ONE_MINUTE, statistic="Maximum"
            )
            dlq_depth = dlq.metric_approximate_number_of_messages_visible(
                label="DLQ depth", period=ONE_MINUTE, statistic="Maximum"
            )
            widgets.append(
                cw.GraphWidget(
                    title=f"queue {name}",
                    left=[visible, in_flight, dlq_depth],
                    right=[oldest],
                    width=8,
                )
            )
            self._alarm_on_any(
                f"{name.title()}DlqNotEmpty",
                f"Jobs were dead-lettered on the {name} queue: inspect and redrive them",
                dlq_depth,
            )
            self._alarm(
                f"{name.title()}OldestMessage",
                f"The {name} queue is falling behind (oldest message older than "
                f"{self.thresholds.oldest_message_age_seconds[priority]} s)",
                metric=oldest,
                threshold=self.thresholds.oldest_message_age_seconds[priority],
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=5,
            )
        self.dashboard.add_widgets(*widgets)

    def _functions(self, functions: Mapping[str, lambda_.Function]) -> None:
        widgets: list[cw.IWidget] = []
        for name, function in functions.items():
            errors = function.metric_errors(label="errors", period=FIVE_MINUTES, statistic="Sum")
            widgets.append(
                cw.GraphWidget(
                    title=f"{name}: invocations, errors, throttles",
                    left=[
                        function.metric_invocations(label="invocations", period=FIVE_MINUTES),
                        errors,
                        function.metric_throttles(label="throttles", period=FIVE_MINUTES),
                    ],
                    right=[
                        function.metric(
                            "ConcurrentExecutions",
                            label="concurrency",
                            statistic="Maximum",
                            period=FIVE_MINUTES,
                        )
                    ],
                    width=8,
                )
            )
            widgets.append(
                cw.GraphWidget(
                    title=f"{name}: duration",
                    left=[
                        function.metric_duration(label="p50", statistic="p50", period=FIVE_MINUTES),
                        function.metric_duration(label="p99", statistic="p99", period=FIVE_MINUTES),
                    ],
                    width=4,
                )
            )
            self._alarm_on_any(
                f"{name.title().replace('-', '')}Errors",
                f"The {name} function failed whole invocations (see its log group)",
                errors,
            )
        self.dashboard.add_widgets(*widgets)

    def _api(self, rest_api: apigw.RestApi) -> None:
        count = rest_api.metric_count(label="requests", period=FIVE_MINUTES, statistic="Sum")
        server_errors = rest_api.metric_server_error(
            label="5xx", period=FIVE_MINUTES, statistic="Sum"
        )
        client_errors = rest_api.metric_client_error(
            label="4xx", period=FIVE_MINUTES, statistic="Sum"
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests", left=[count, client_errors, server_errors], width=12
            ),
            cw.GraphWidget(
                title="API latency",
                left=[
                    rest_api.metric_latency(label="p50", statistic="p50", period=FIVE_MINUTES),
                    rest_api.metric_latency(label="p99", statistic="p99", period=FIVE_MINUTES),
                ],
                width=12,
            ),
        )
        self._alarm(
            "Api5xxRate",
            f"More than {self.thresholds.api_5xx_percent}% of API requests failed with a 5xx",
            metric=cw.MathExpression(
                expression="IF(requests > 0, 100 * errors / requests, 0)",
                using_metrics={"errors": server_errors, "requests": count},
                label="5xx %",
                period=FIVE_MINUTES,
            ),
            threshold=self.thresholds.api_5xx_percent,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
        )

    def _database(self, database: rds.DatabaseInstance, proxy: rds.DatabaseProxy | None) -> None:
        cpu = database.metric_cpu_utilization(period=FIVE_MINUTES, label="CPU %")
        free_storage = database.metric_free_storage_space(period=FIVE_MINUTES, label="free storage")
        connections: list[cw.IMetric] = [
            database.metric_database_connections(
                period=FIVE_MINUTES, statistic="Maximum", label="database connections"
            )
        ]
        if proxy is not None:
            connections.append(
                cw.Metric(
                    namespace="AWS/RDS",
                    metric_name="ClientConnections",
                    dimensions_map={"ProxyName": proxy.db_proxy_name},
                    statistic="Maximum",
                    period=FIVE_MINUTES,
                    label="proxy client connections",
                )
            )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="RDS CPU", left=[cpu], width=8),
            cw.GraphWidget(title="RDS connections", left=connections, width=8),
            cw.GraphWidget(title="RDS free storage", left=[free_storage], width=8),
        )
        self._alarm(
            "RdsCpuHigh",
            f"Database CPU above {self.thresholds.rds_cpu_percent}% for 15 minutes",
            metric=cpu,
            threshold=self.thresholds.rds_cpu_percent,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
        )
        self._alarm(
            "RdsStorageLow",
            f"Database free storage below {self.thresholds.rds_free_storage_gb} GiB",
            metric=free_storage,
            threshold=self.thresholds.rds_free_storage_gb * 1024**3,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
        )

    def _sweep_failures(self) -> None:
        """A sweep run that a dependency being down stopped ends its invocation normally
        (one warning line, not a traceback every minute: functions/retry/sweep.py), so the
        function's error alarm does not see it; this one does."""
        self._alarm_on_any(
            "RecoverySweepFailed",
            "The recovery sweep could not run: the database, SQS or Secrets Manager was "
            "unavailable (see the recovery function's log group)",
            cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="Sweep_failed_runs",
                dimensions_map={"service": "taskmill-recovery"},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
        )

    def _jobs(self) -> None:
        """Taskmill's own metrics (EMF from the API and worker), one line per job type."""

        def per_type(metric: str, statistic: str) -> cw.MathExpression:
            return cw.MathExpression(
                expression=(
                    f"SEARCH('{{{METRICS_NAMESPACE},job_type,service}} "
                    f"MetricName=\"{metric}\"', '{statistic}', 300)"
                ),
                label=metric,
                period=FIVE_MINUTES,
            )

        created = cw.MathExpression(
            expression=(
                f"SEARCH('{{{METRICS_NAMESPACE},job_type,priority,service}} "
                "MetricName=\"JobsCreated\"', 'Sum', 300)"
            ),
            label="JobsCreated",
            period=FIVE_MINUTES,
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="jobs created per type", left=[created], width=6),
            *[
                cw.GraphWidget(title=f"{name} per type", left=[per_type(name, "Sum")], width=6)
                for name in JOB_METRICS[1:]
            ],
            cw.GraphWidget(
                title="queue wait per type (s, max)",
                left=[per_type("QueueWait", "Maximum")],
                width=12,
            ),
            cw.GraphWidget(
                title="job duration per type (s, max)",
                left=[per_type("JobDuration", "Maximum")],
                width=12,
            ),
            cw.GraphWidget(
                title="jobs held back by a pause or a limit, per reason and key family",
                left=[self._held_back()],
                width=12,
            ),
        )

    @staticmethod
    def _held_back() -> cw.MathExpression:
        """The worker's `JobsHeldBack` (SPEC §6): a line per reason (paused, concurrency,
        rate, not_due) and key family (`customer` for `customer:42`, `none` for a pause), so the
        dimensions stay few however many keys there are."""
        return cw.MathExpression(
            expression=(
                f"SEARCH('{{{METRICS_NAMESPACE},key,reason,service}} "
                "MetricName=\"JobsHeldBack\"', 'Sum', 300)"
            ),
            label="JobsHeldBack",
            period=FIVE_MINUTES,
        )
