"""What template.yaml ships for operating the stack (issue 10): throttles, alarms that notify
someone, logs that are kept, capacity limits, deletion that depends on the stage, names that
cannot collide, the card key's policy, and the outputs the README's commands use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cashew.accounts import cards
from local.cfn import Resources, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
TOPIC = [{"Ref": "AlarmTopic"}]
REPO = Path(__file__).resolve().parents[2]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in RESOURCES.items() if r["Type"] == kind}


def _props(logical_id: str) -> dict[str, Any]:
    return RESOURCES[logical_id]["Properties"]


def _on(stage: str, value: Any) -> Any:
    resolver = Resources(TEMPLATE)
    resolver["Stage"] = {"Ref": stage}
    return resolver.resolve(value)


ALARMS = _of_type("AWS::CloudWatch::Alarm")
FUNCTIONS = _of_type("AWS::Serverless::Function")
GLOBALS = TEMPLATE["Globals"]["Function"]


def _metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric, dimensions) of each metric an alarm watches."""
    props = alarm["Properties"]
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        return [(props["Namespace"], props["MetricName"], dims)]
    found = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


def _watched(metric: str) -> list[dict[str, Any]]:
    return [
        dims for alarm in ALARMS.values() for _, name, dims in _metrics(alarm) if name == metric
    ]


def test_api_throttles_are_parameters_sized_for_production_within_the_account_ceilings():
    [settings] = _props("CashewApi")["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    parameters = TEMPLATE["Parameters"]
    # the old 100 rps per method is far below what a payment API needs; the account's regional
    # ceilings are 10,000 rps and a 5,000 burst
    assert 1_000 <= parameters["ApiThrottleRateLimit"]["Default"] <= 10_000
    assert 1_000 <= parameters["ApiThrottleBurstLimit"]["Default"] <= 5_000


def test_every_alarm_notifies_the_alarm_topic_going_off_and_coming_back():
    assert len(ALARMS) > 3
    for logical_id, alarm in ALARMS.items():
        props = alarm["Properties"]
        assert (props.get("AlarmActions"), props.get("OKActions")) == (TOPIC, TOPIC), logical_id
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_the_alarm_email_is_subscribed_only_when_given():
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    resolver = Resources(TEMPLATE)
    assert resolver.resolve({"Condition": "HasAlarmEmail"}) is False
    resolver["AlarmEmail"] = {"Ref": "ops@example.com"}
    assert resolver.resolve({"Condition": "HasAlarmEmail"}) is True


def test_alarms_watch_the_api_functions_tables_queues_and_the_account():
    api = [d for d in _watched("5XXError") if set(d) == {"ApiName", "Stage"}]
    assert api and any(
        a["Properties"].get("ExtendedStatistic") == "p99"
        for a in ALARMS.values()
        if a["Properties"].get("MetricName") == "Latency"
    )
    for metric in ("Errors", "Throttles", "Duration"):
        functions = {d["FunctionName"]["Ref"] for d in _watched(metric) if "FunctionName" in d}
        assert {"CreatePaymentFunction", "CreateTopUpFunction", "AuthorizerFunction"} <= functions
        assert {"PublishOutcomesFunction", "LogConsumerFunction"} <= functions
    assert {} in _watched("Errors") and {} in _watched("Throttles")  # every function of the region
    assert {} in _watched("ConcurrentExecutions")
    tables = set(_of_type("AWS::DynamoDB::Table"))
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert {d["TableName"]["Ref"] for d in _watched(metric)} == tables
    assert {"AccountsTable", "PaymentsTable"} <= {
        d["TableName"]["Ref"] for d in _watched("TransactionConflict")
    }
    queues = set(_of_type("AWS::SQS::Queue"))
    aged = {d["QueueName"]["Fn::GetAtt"][0] for d in _watched("ApproximateAgeOfOldestMessage")}
    assert aged == queues


def test_duration_alarms_go_off_before_the_timeout():
    for alarm in ALARMS.values():
        props = alarm["Properties"]
        if props.get("MetricName") != "Duration":
            continue
        function = props["Dimensions"][0]["Value"]["Ref"]
        timeout = FUNCTIONS[function]["Properties"].get("Timeout", GLOBALS["Timeout"])
        assert props["Threshold"] < timeout * 1000, function


def test_every_api_function_times_out_before_api_gateway_does():
    for logical_id, function in FUNCTIONS.items():
        events = function["Properties"].get("Events", {}).values()
        if any(e["Type"] == "Api" for e in events):
            timeout = function["Properties"].get("Timeout", GLOBALS["Timeout"])
            assert timeout < 29, logical_id


def test_every_log_group_is_kept_at_least_a_year_by_one_parameter():
    retention = TEMPLATE["Parameters"]["LogRetentionDays"]
    assert retention["Default"] == 400
    assert min(retention["AllowedValues"]) >= 365  # PROPERTIES 33: audit logs kept 12 months
    groups = _of_type("AWS::Logs::LogGroup")
    assert set(groups) == {"FunctionLogGroup", "ApiAccessLogGroup"}
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
        assert _on("prod", group["DeletionPolicy"]) == "Retain", logical_id
    # every function logs there (none sets a group of its own), and API Gateway logs access
    assert GLOBALS["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    assert not [f for f, r in FUNCTIONS.items() if "LoggingConfig" in r["Properties"]]
    access = _props("CashewApi")["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}


def test_the_payment_path_has_reserved_concurrency_and_consumers_a_maximum():
    for function in ("CreatePaymentFunction", "CreateTopUpFunction"):
        reserved = _props(function)["ReservedConcurrentExecutions"]
        assert (
            _on("prod", reserved)
            == TEMPLATE["Parameters"]["PaymentsReservedConcurrency"]["Default"]
        )
    for function_id, function in FUNCTIONS.items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS" and function_id == "RunJobFunction":
                # an admin's few long jobs: a fixed handful, never the consumers' share
                assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
            elif event["Type"] == "SQS":
                assert event["Properties"]["ScalingConfig"] == {
                    "MaximumConcurrency": {"Ref": "ConsumerMaxConcurrency"}
                }, function_id
            if event["Type"] == "DynamoDB":
                assert event["Properties"]["ParallelizationFactor"] == {
                    "Ref": "PublisherParallelizationFactor"
                }, function_id


STATEFUL = (
    "AccountsTable", "PaymentsTable", "IdempotencyTable", "TransactionLogTable", "DisputesTable",
    "CardDataKey", "OutcomesQueue", "OutcomesDeadLetterQueue", "PublishFailuresQueue",
)  # fmt: skip


@pytest.mark.parametrize("logical_id", STATEFUL)
def test_production_keeps_its_data_and_a_dev_stack_can_be_torn_down(logical_id):
    resource = RESOURCES[logical_id]
    policies = [resource["DeletionPolicy"], resource["UpdateReplacePolicy"]]
    assert _on("prod", policies) == ["RetainExceptOnCreate", "Retain"]
    assert _on("dev", policies) == ["Delete", "Delete"]
    if "DeletionProtectionEnabled" in resource["Properties"]:
        protection = resource["Properties"]["DeletionProtectionEnabled"]
        assert (_on("prod", protection), _on("dev", protection)) == (True, False)


def test_named_resources_are_named_after_the_stack_not_the_stage():
    for logical_id, resource in RESOURCES.items():
        for key in ("Name", "TableName", "QueueName", "LayerName", "FunctionName", "TopicName"):
            name = resource.get("Properties", {}).get(key)
            if name is not None and resource["Type"] != "AWS::Serverless::Api":
                assert "${AWS::StackName}" in str(name.get("Fn::Sub")), (logical_id, name)
    assert _props("PaymentEventBus")["Name"] == {"Fn::Sub": "${AWS::StackName}-payments"}


def test_the_card_key_separates_administration_from_use_and_requires_the_cards_context():
    statements = {s["Sid"]: s for s in _props("CardDataKey")["KeyPolicy"]["Statement"]}
    admin = statements.pop("Administration")
    using = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
        "kms:ReEncryptTo", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext"}  # fmt: skip
    assert not any("*" in action for action in admin["Action"])
    assert not set(admin["Action"]) & using
    [use] = statements.values()
    assert set(use["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    context_keys = set(cards._context("user", "method"))
    condition = use["Condition"]
    role_pattern = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-*"
    assert condition["ArnLike"] == {"aws:PrincipalArn": {"Fn::Sub": role_pattern}}
    # ... and the account keeps administering it whoever else does (no lockout)
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    with_admin, without = admin["Principal"]["AWS"]["Fn::If"][1:]
    assert root in with_admin and without == root
    assert set(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) == context_keys
    assert condition["Null"] == {f"kms:EncryptionContext:{k}": "false" for k in context_keys}


def test_outputs_name_every_queue_and_table():
    outputs = [o["Value"] for o in TEMPLATE["Outputs"].values()]
    for queue in _of_type("AWS::SQS::Queue"):
        assert {"Ref": queue} in outputs and {"Fn::GetAtt": [queue, "Arn"]} in outputs, queue
    for table in _of_type("AWS::DynamoDB::Table"):
        assert {"Ref": table} in outputs, table
    assert {"Ref": "AlarmTopic"} in outputs


def test_a_refused_webhook_amount_alarms_on_the_metric_the_code_emits():
    # The webhook refuses an event that would move more than its payment authorised and
    # counts it; the payment stays processing, the gateway gets 200: only the alarm tells
    variables = GLOBALS["Environment"]["Variables"]
    namespace, service = (
        variables["POWERTOOLS_METRICS_NAMESPACE"],
        variables["POWERTOOLS_SERVICE_NAME"],
    )
    watched = [
        (ns, dims) for alarm in ALARMS.values() for ns, name, dims in _metrics(alarm)
        if name == "WebhookAmountRefused"
    ]  # fmt: skip
    assert watched == [(namespace, {"service": service})]
    source = (REPO / "layers/shared/python/cashew/payments/webhooks.py").read_text()
    assert 'name="WebhookAmountRefused"' in source


def test_snapstart_is_off_by_default_and_only_where_a_version_is_published():
    # The parameter defaults to off; each function it turns on publishes a version behind an
    # alias (SnapStart restores published versions only; API Gateway then invokes the alias)
    assert TEMPLATE["Parameters"]["SnapStart"]["Default"] == "false"
    assert TEMPLATE["Conditions"]["UsesSnapStart"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}
    snap = {
        f: p for f, p in ((f, r["Properties"]) for f, r in FUNCTIONS.items()) if "SnapStart" in p
    }
    assert "CreatePaymentFunction" in snap
    for function_id, props in snap.items():
        assert props["SnapStart"] == {
            "ApplyOn": {"Fn::If": ["UsesSnapStart", "PublishedVersions", "None"]}
        }, function_id
        assert props["AutoPublishAlias"] == "live", function_id
        # ... and its handler registers the restore hook (cashew.aws.prepare, in INIT)
        module = props["Handler"].split(".")[0]
        source = (REPO / props["CodeUri"] / f"{module}.py").read_text(encoding="utf-8")
        assert "\naws.prepare(" in source, function_id
