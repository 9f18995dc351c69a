"""Provisioning: every table, queue (and queue policy), event bus (and rule), KMS key, secret,
SES identity and S3 bucket of template.yaml created on an AWS endpoint (the embedded one of
`local.aws`, usually), as CloudFormation would.

Environment variables read here:
- `CASHEW_LOCAL_VISIBILITY_TIMEOUT` (seconds): replaces every queue's `VisibilityTimeout` at
  provision time, so that a message a consumer failed is redelivered (and, after
  `maxReceiveCount` receives, moved to its dead-letter queue) in seconds rather than minutes.
"""

from __future__ import annotations

import contextlib
import graphlib
import json
import os
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

from local.cfn import Resources, local_parameters, physical_name, references, resources_of

ClientFactory = Callable[[str], Any]
"""service name -> boto3 client, e.g. `boto3.Session().client` or `local.aws.clients(url)`."""


def provision(
    template: Mapping[str, Any],
    clients: ClientFactory,
    parameter_values: Mapping[str, Any] | None = None,
) -> Resources:
    """Create every table, queue, KMS key and secret of the template; safe to call again.

    The parameters are `parameter_values`, by default the local stack's (`local_parameters`:
    a ParameterError, before anything is created, when they break the template's Rules).
    Resources are created in dependency order (a queue after its dead-letter queue); one that
    already exists under its physical name (`cashew-<LogicalId>`) is looked up, not recreated.
    """
    if parameter_values is None:
        parameter_values = local_parameters(template)
    resources = Resources(template, parameter_values)
    declared = dict(resources_of(template, *_CREATORS))
    graph = {
        logical_id: {ref for ref in references(props) if ref in declared}
        for logical_id, props in declared.items()
    }
    types = {logical_id: template["Resources"][logical_id]["Type"] for logical_id in declared}
    for logical_id in graphlib.TopologicalSorter(graph).static_order():
        props = resources.resolve(declared[logical_id])
        resources[logical_id] = _CREATORS[types[logical_id]](clients, logical_id, props)
    return resources


def _create_table(clients: ClientFactory, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    dynamodb = clients("dynamodb")
    name = props.get("TableName") or physical_name(logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in props:
            request[key] = props[key]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    table = dynamodb.describe_table(TableName=name)["Table"]
    stream = {"StreamArn": table["LatestStreamArn"]} if "LatestStreamArn" in table else {}
    return {"Ref": name, "Arn": table["TableArn"], **stream}


_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)


def _attribute(value: Any) -> str:
    """A queue attribute as SQS takes it: a string, JSON for a policy."""
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _create_queue(clients: ClientFactory, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    sqs = clients("sqs")
    name = props.get("QueueName") or physical_name(logical_id) + (
        ".fifo" if props.get("FifoQueue") else ""
    )
    attributes = {
        key: _attribute(value) for key, value in props.items() if key in _QUEUE_ATTRIBUTES
    }
    if override := os.environ.get("CASHEW_LOCAL_VISIBILITY_TIMEOUT"):
        attributes["VisibilityTimeout"] = str(int(override))
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:  # exists with other attributes: converge
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        mutable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    arn = attributes["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def _create_key(clients: ClientFactory, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    """A KMS key, found again later through the alias `alias/cashew-<LogicalId>`."""
    kms = clients("kms")
    alias = f"alias/{physical_name(logical_id)}"
    try:
        metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        request = {
            "Description": props.get("Description", ""),
            "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        }
        if "KeyPolicy" in props:
            request["Policy"] = json.dumps(props["KeyPolicy"])
        metadata = kms.create_key(**request)["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return {"Ref": metadata["KeyId"], "Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}


def _create_secret(
    clients: ClientFactory, logical_id: str, props: dict[str, Any]
) -> dict[str, Any]:
    secretsmanager = clients("secretsmanager")
    name = props.get("Name") or physical_name(logical_id)
    value = props.get("SecretString")
    if value is None:
        value = generate_secret_string(props.get("GenerateSecretString", {}))
    request = {"Name": name, "Description": props.get("Description", ""), "SecretString": value}
    if "KmsKeyId" in props:
        request["KmsKeyId"] = props["KmsKeyId"]
    try:
        arn = secretsmanager.create_secret(**request)["ARN"]
    except secretsmanager.exceptions.ResourceExistsException:  # keep the value it has
        arn = secretsmanager.describe_secret(SecretId=name)["ARN"]
    return {"Ref": arn, "Id": arn, "Arn": arn}


def generate_secret_string(spec: Mapping[str, Any]) -> str:
    """What CloudFormation's `GenerateSecretString` produces, from `secrets`."""
    wanted = (
        (string.ascii_lowercase, not spec.get("ExcludeLowercase")),
        (string.ascii_uppercase, not spec.get("ExcludeUppercase")),
        (string.digits, not spec.get("ExcludeNumbers")),
        (string.punctuation, not spec.get("ExcludePunctuation")),
        (" ", spec.get("IncludeSpace")),
    )
    banned = set(spec.get("ExcludeCharacters", ""))
    classes = [
        kept
        for chars, included in wanted
        if included and (kept := "".join(c for c in chars if c not in banned))
    ]
    alphabet = "".join(classes)
    length = int(spec.get("PasswordLength", 32))
    require_each = spec.get("RequireEachIncludedType", True) and length >= len(classes)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if not require_each or all(set(password) & set(cls) for cls in classes):
            break
    if "SecretStringTemplate" not in spec:
        return password
    document = json.loads(spec["SecretStringTemplate"])
    document[spec["GenerateStringKey"]] = password
    return json.dumps(document)


def _create_event_bus(
    clients: ClientFactory, logical_id: str, props: dict[str, Any]
) -> dict[str, Any]:
    events = clients("events")
    name = props.get("Name") or physical_name(logical_id)
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=name)
    arn = events.describe_event_bus(Name=name)["Arn"]
    return {"Ref": name, "Arn": arn, "Name": name}


def _create_rule(clients: ClientFactory, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge rule and its targets (SQS queues, here): the embedded endpoint delivers
    every matching event of the bus to them, as EventBridge does."""
    events = clients("events")
    name = props.get("Name") or physical_name(logical_id)
    bus = props.get("EventBusName", "default")
    request: dict[str, Any] = {
        "Name": name,
        "EventBusName": bus,
        "State": props.get("State", "ENABLED"),
    }
    if "EventPattern" in props:
        request["EventPattern"] = json.dumps(props["EventPattern"])
    if "ScheduleExpression" in props:
        request["ScheduleExpression"] = props["ScheduleExpression"]
    arn = events.put_rule(**request)["RuleArn"]  # put_rule creates or replaces
    targets = [
        {key: target[key] for key in _TARGET_KEYS if key in target}
        for target in props.get("Targets", [])
    ]
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return {"Ref": f"{bus}|{name}", "Arn": arn}


_TARGET_KEYS = ("Id", "Arn", "Input", "InputPath", "DeadLetterConfig", "RetryPolicy")


def _create_queue_policy(
    clients: ClientFactory, logical_id: str, props: dict[str, Any]
) -> dict[str, Any]:
    """The policy set on each of its queues (the embedded endpoint keeps it; it does not
    enforce it)."""
    sqs = clients("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )
    return {"Ref": physical_name(logical_id)}


def _create_email_identity(
    clients: ClientFactory, logical_id: str, props: dict[str, Any]
) -> dict[str, Any]:
    """An SES identity (an address or a domain) that may send: verified at once here, where a
    deployed one waits for its DNS records or the address's confirmation."""
    sesv2 = clients("sesv2")
    identity = props["EmailIdentity"]
    with contextlib.suppress(sesv2.exceptions.AlreadyExistsException):
        sesv2.create_email_identity(EmailIdentity=identity)
    return {"Ref": identity}


def _create_bucket(
    clients: ClientFactory, logical_id: str, props: dict[str, Any]
) -> dict[str, Any]:
    """An S3 bucket (its name in lower case, as S3 requires), with its lifecycle rules; its
    policy (ReportsBucketPolicy: TLS only) is not provisioned, the local endpoint being
    plain HTTP on loopback."""
    s3 = clients("s3")
    name = (props.get("BucketName") or physical_name(logical_id)).lower()
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=name)
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": ""},
                        "Expiration": {"Days": rule["ExpirationInDays"]},
                        "AbortIncompleteMultipartUpload": rule["AbortIncompleteMultipartUpload"],
                    }
                    for rule in props["LifecycleConfiguration"]["Rules"]
                ]
            },
        )  # fmt: skip
    return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}


_CREATORS: dict[str, Callable[[ClientFactory, str, dict[str, Any]], dict[str, Any]]] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::Events::EventBus": _create_event_bus,
    "AWS::SQS::Queue": _create_queue,
    "AWS::KMS::Key": _create_key,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::Events::Rule": _create_rule,
    "AWS::SQS::QueuePolicy": _create_queue_policy,
    "AWS::SES::EmailIdentity": _create_email_identity,
    "AWS::S3::Bucket": _create_bucket,
}
