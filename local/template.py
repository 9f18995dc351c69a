"""template.yaml, read as the one description of the stack that everything local derives from.

`load_template` parses it (CloudFormation short tags included), `provision` creates its tables,
queues, event buses, keys and secrets on an AWS endpoint, `functions` and `apis` describe what the
Serverless transform would build from it, and `function_env` resolves a function's environment
against what was provisioned.

Environment variables read here:
- `CASHEW_LOCAL_VISIBILITY_TIMEOUT` (seconds): replaces every queue's `VisibilityTimeout` at
  provision time, so that a message a consumer failed is redelivered (and, after
  `maxReceiveCount` receives, moved to its dead-letter queue) in seconds rather than minutes.
- `CASHEW_LOCAL_PARAMETERS`: template parameter overrides, `Name=value` separated by spaces
  (as `sam deploy --parameter-overrides`), over the local stack's own, `Stage=local
  Gateway=sandbox`. For example `CASHEW_LOCAL_PARAMETERS="Stage=prod Gateway=sandbox"` runs
  the stack as a production stage, which the template's Rules refuse (`ParameterError`).
- `CASHEW_*`: passed through to every function, over the template's value.
"""

from __future__ import annotations

import contextlib
import graphlib
import json
import os
import re
import secrets
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
PARTITION = "aws"
STACK_NAME = "cashew"
API_ID = "local"

ClientFactory = Callable[[str], Any]
"""service name -> boto3 client, e.g. `boto3.Session().client` or `local.aws.clients(url)`."""


# ------------------------------------------------------------------------------ loading
class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus `!Ref`, `!GetAtt`, `!Sub`... ; dates stay strings, as in CloudFormation."""


_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_tag(loader: _CfnLoader, suffix: str, node: Any) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_tag)  # type: ignore[no-untyped-call]


def load_template(path: str | Path = REPO_ROOT / "template.yaml") -> dict[str, Any]:
    """The template as plain data, short tags in their long form (`!Ref X` -> `{"Ref": "X"}`)."""
    with open(path, encoding="utf-8") as file:
        template: dict[str, Any] = yaml.load(file, Loader=_CfnLoader)  # noqa: S506 # nosec B506 # SafeLoader subclass
    return template


def _resources_of(template: Mapping[str, Any], *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] in types:
            yield logical_id, resource.get("Properties", {})


def physical_name(logical_id: str) -> str:
    return f"{STACK_NAME}-{logical_id}"


# --------------------------------------------------------------------------- parameters
LOCAL_PARAMETERS = {"Stage": "local", "Gateway": "sandbox"}
"""What the local stack runs with, over the template's defaults."""
PARAMETERS_VARIABLE = "CASHEW_LOCAL_PARAMETERS"


class ParameterError(ValueError):
    """Parameters CloudFormation would refuse: unknown, not allowed, or failing a Rule."""


def parse_overrides(text: str) -> dict[str, str]:
    """`Name=value Name2=value2` (as `--parameter-overrides`) -> {Name: value, ...}."""
    overrides = {}
    for pair in text.split():
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"{PARAMETERS_VARIABLE}: expected Name=value, got {pair!r}")
        overrides[name] = value
    return overrides


def parameters(
    template: Mapping[str, Any], overrides: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The parameter values of a stack created with `overrides`, checked as CloudFormation
    checks them: each must be declared, within its AllowedValues and AllowedPattern, and every
    Rule of the template must hold (else ParameterError, naming the rule's
    AssertDescription)."""
    declared: dict[str, Any] = template.get("Parameters", {})
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ParameterError(f"the template has no parameter {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        value = overrides.get(name, spec.get("Default"))
        if value is None:
            raise ParameterError(f"parameter {name} has no default and no value")
        if "AllowedValues" in spec and str(value) not in [str(v) for v in spec["AllowedValues"]]:
            allowed = ", ".join(str(v) for v in spec["AllowedValues"])
            raise ParameterError(f"parameter {name}={value} is not one of {allowed}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], str(value)):
            raise ParameterError(f"parameter {name}={value} does not match its AllowedPattern")
        values[name] = value
    check_rules(template, values)
    return values


def local_parameters(template: Mapping[str, Any]) -> dict[str, Any]:
    """The local stack's parameters: LOCAL_PARAMETERS, then CASHEW_LOCAL_PARAMETERS."""
    overrides = {**LOCAL_PARAMETERS, **parse_overrides(os.environ.get(PARAMETERS_VARIABLE, ""))}
    return parameters(template, overrides)


def check_rules(template: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Evaluate the template's `Rules` as CloudFormation does before it creates anything: a
    rule whose RuleCondition holds (or that has none) must have every Assert true."""
    resolver = Resources({"Parameters": {name: {"Default": v} for name, v in values.items()}})
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _holds(resolver, name, rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not _holds(resolver, name, assertion["Assert"]):
                description = assertion.get("AssertDescription", "an assertion failed")
                raise ParameterError(f"rule {name}: {description}")


def _holds(resolver: Resources, rule: str, condition: Any) -> bool:
    value = resolver.resolve(condition)
    if not isinstance(value, bool):  # a function this evaluator does not know
        raise ParameterError(f"rule {rule}: cannot evaluate {condition!r} locally")
    return value


# ---------------------------------------------------------------------------- resolving
class Resources(dict[str, dict[str, Any]]):
    """Logical id (or parameter, or pseudo parameter) -> {"Ref": ..., "Arn": ..., ...}.

    `resolve` evaluates intrinsic functions against it the way CloudFormation does.
    Parameters take `parameter_values` (see `parameters`), or their defaults.
    """

    def __init__(
        self, template: Mapping[str, Any], parameter_values: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self._conditions: dict[str, Any] = template.get("Conditions", {})
        self._mappings: dict[str, Any] = template.get("Mappings", {})
        pseudo = {
            "Region": REGION,
            "AccountId": ACCOUNT_ID,
            "Partition": PARTITION,
            "StackName": STACK_NAME,
            "URLSuffix": "amazonaws.com",
            "NoValue": None,
        }
        for name, value in pseudo.items():
            self[f"AWS::{name}"] = {"Ref": value}
        for name, parameter in template.get("Parameters", {}).items():
            self[name] = {"Ref": parameter.get("Default")}
        for name, value in (parameter_values or {}).items():
            self[name] = {"Ref": value}
        # What the Serverless transform creates is not provisioned locally, but can be named.
        for logical_id, props in _resources_of(template, "AWS::Serverless::Function"):
            name = props.get("FunctionName") or physical_name(logical_id)
            arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            self[logical_id] = {"Ref": name, "Arn": arn}
        for logical_id, _ in _resources_of(template, "AWS::Serverless::Api"):
            self[logical_id] = {"Ref": API_ID, "RootResourceId": "root"}
        for logical_id, _ in _resources_of(template, "AWS::Serverless::LayerVersion"):
            arn = (
                f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:layer:{physical_name(logical_id)}:1"
            )
            self[logical_id] = {"Ref": arn}

    def ref(self, name: str) -> Any:
        if name not in self:
            raise KeyError(f"Ref to {name}, which is neither provisioned nor a parameter")
        return self[name]["Ref"]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return self[logical_id][attribute]
        except KeyError:
            raise KeyError(f"GetAtt {logical_id}.{attribute} cannot be resolved locally") from None

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function (Ref, Fn::GetAtt, Fn::Sub...) evaluated."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            intrinsic = getattr(self, "_fn_" + key.removeprefix("Fn::"), None)
            plain = key in ("Ref", "Condition") and isinstance(argument, str)
            if intrinsic is not None and (key.startswith("Fn::") or plain):
                return intrinsic(argument)
        return {key: self.resolve(item) for key, item in value.items()}

    def _fn_Ref(self, name: str) -> Any:
        return self.ref(name)

    def _fn_GetAtt(self, argument: list[str]) -> Any:
        logical_id, attribute = self.resolve(argument)
        return self.get_att(logical_id, attribute)

    def _fn_Sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = self.resolve(variables)

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def _fn_Join(self, argument: list[Any]) -> str:
        delimiter, items = self.resolve(argument)
        return str(delimiter).join(str(item) for item in items)

    def _fn_Select(self, argument: list[Any]) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _fn_Split(self, argument: list[Any]) -> list[str]:
        delimiter, text = self.resolve(argument)
        return str(text).split(delimiter)

    def _fn_FindInMap(self, argument: list[Any]) -> Any:
        name, top, second = self.resolve(argument)
        return self._mappings[name][top][second]

    def _fn_If(self, argument: list[Any]) -> Any:
        condition, if_true, if_false = argument
        return self.resolve(if_true if self._fn_Condition(condition) else if_false)

    def _fn_Condition(self, name: str) -> bool:
        return bool(self.resolve(self._conditions[name]))

    def _fn_Equals(self, argument: list[Any]) -> bool:
        left, right = self.resolve(argument)
        return bool(left == right)

    def _fn_Not(self, argument: list[Any]) -> bool:
        return not self.resolve(argument[0])

    def _fn_And(self, argument: list[Any]) -> bool:
        return all(self.resolve(argument))

    def _fn_Or(self, argument: list[Any]) -> bool:
        return any(self.resolve(argument))

    # The functions only Rules may use.
    def _fn_Contains(self, argument: list[Any]) -> bool:
        items, value = self.resolve(argument)
        return value in items

    def _fn_EachMemberEquals(self, argument: list[Any]) -> bool:
        items, value = self.resolve(argument)
        return all(item == value for item in items)

    def _fn_EachMemberIn(self, argument: list[Any]) -> bool:
        items, allowed = self.resolve(argument)
        return all(item in allowed for item in items)


def _references(value: Any) -> Iterator[str]:
    """The logical ids that `value` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield item[0]
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                yield from (name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text))
                yield from _references(item)
            else:
                yield from _references(item)


# --------------------------------------------------------------------------- provisioning
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
    declared = dict(_resources_of(template, *_CREATORS))
    graph = {
        logical_id: {ref for ref in _references(props) if ref in declared}
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


_CREATORS: dict[str, Callable[[ClientFactory, str, dict[str, Any]], dict[str, Any]]] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::Events::EventBus": _create_event_bus,
    "AWS::SQS::Queue": _create_queue,
    "AWS::KMS::Key": _create_key,
    "AWS::SecretsManager::Secret": _create_secret,
}


# ------------------------------------------------------------------------------ functions
@dataclass(frozen=True)
class ApiEvent:
    """An `Api` event: this method and path (API Gateway syntax, `{id}`) invoke `function_id`."""

    function_id: str
    api_id: str | None
    path: str
    method: str  # upper case; "ANY" matches every method
    authorizer: str | None  # the authorizer that guards the route; None when Auth is NONE


@dataclass(frozen=True)
class SqsEvent:
    """An `SQS` event source mapping from the queue `queue_id` to `function_id`."""

    function_id: str
    queue_id: str
    batch_size: int
    batching_window: float
    report_batch_item_failures: bool


@dataclass(frozen=True)
class StreamEvent:
    """A `DynamoDB` event source mapping from the stream of the table `table_id`."""

    function_id: str
    table_id: str
    starting_position: str  # TRIM_HORIZON or LATEST
    batch_size: int
    batching_window: float
    report_batch_item_failures: bool
    maximum_retry_attempts: int  # -1: until the record is too old
    maximum_record_age: int  # seconds; -1: no limit
    on_failure_queue_id: str | None  # where a batch given up on is described


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler_module: str
    handler_attr: str
    timeout: int
    memory: int
    environment: dict[str, Any]  # Globals merged with the function's own, unresolved
    layer_dirs: tuple[Path, ...]
    api_events: tuple[ApiEvent, ...]
    sqs_events: tuple[SqsEvent, ...]
    stream_events: tuple[StreamEvent, ...] = ()


def _merge_globals(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """The Serverless transform's rule: maps merge, lists add up (Globals first), the rest is
    overridden."""
    merged = dict(defaults)
    for key, value in own.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = _merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged


def _logical_id(reference: Any) -> str:
    """The logical id in `!Ref X` or `!GetAtt X.Attr`."""
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return str(reference["Fn::GetAtt"][0])
    raise ValueError(f"expected a reference to a resource of the template, got {reference!r}")


def _api_event(
    function_id: str, props: Mapping[str, Any], default_authorizers: Mapping[str, str | None]
) -> ApiEvent:
    api_id = _logical_id(props["RestApiId"]) if "RestApiId" in props else None
    default = default_authorizers.get(api_id or "")
    authorizer = props.get("Auth", {}).get("Authorizer", default)
    return ApiEvent(
        function_id,
        api_id,
        props["Path"],
        props["Method"].upper(),
        None if authorizer in (None, "NONE") else authorizer,
    )


def _sqs_event(function_id: str, props: Mapping[str, Any]) -> SqsEvent:
    return SqsEvent(
        function_id,
        _logical_id(props["Queue"]),
        int(props.get("BatchSize", 10)),
        float(props.get("MaximumBatchingWindowInSeconds", 0)),
        "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
    )


def _stream_event(function_id: str, props: Mapping[str, Any]) -> StreamEvent:
    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {})
    return StreamEvent(
        function_id,
        _logical_id(props["Stream"]),
        str(props["StartingPosition"]),
        int(props.get("BatchSize", 100)),
        float(props.get("MaximumBatchingWindowInSeconds", 0)),
        "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        int(props.get("MaximumRetryAttempts", -1)),
        int(props.get("MaximumRecordAgeInSeconds", -1)),
        _logical_id(on_failure["Destination"]) if "Destination" in on_failure else None,
    )


def functions(template: Mapping[str, Any], root: Path = REPO_ROOT) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function, as the Serverless transform would build it."""
    defaults = template.get("Globals", {}).get("Function", {})
    resources = template.get("Resources", {})
    api_defaults = {
        api_id: props.get("Auth", {}).get("DefaultAuthorizer")
        for api_id, props in _resources_of(template, "AWS::Serverless::Api")
    }
    specs = {}
    for logical_id, own in _resources_of(template, "AWS::Serverless::Function"):
        props = _merge_globals(defaults, own)
        module, _, attr = props["Handler"].rpartition(".")
        layers = [
            _logical_id(layer) for layer in props.get("Layers", []) if isinstance(layer, dict)
        ]
        events = props.get("Events", {}).values()
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=props.get("FunctionName") or physical_name(logical_id),
            code_dir=(root / props["CodeUri"]).resolve(),
            handler_module=module,
            handler_attr=attr,
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
            environment=dict(props.get("Environment", {}).get("Variables", {})),
            layer_dirs=tuple(
                (root / resources[layer]["Properties"]["ContentUri"]).resolve()
                for layer in layers
                if layer in resources
            ),
            api_events=tuple(
                _api_event(logical_id, event["Properties"], api_defaults)
                for event in events
                if event["Type"] == "Api"
            ),
            sqs_events=tuple(
                _sqs_event(logical_id, event["Properties"])
                for event in events
                if event["Type"] == "SQS" and event["Properties"].get("Enabled", True)
            ),
            stream_events=tuple(
                _stream_event(logical_id, event["Properties"])
                for event in events
                if event["Type"] == "DynamoDB" and event["Properties"].get("Enabled", True)
            ),
        )
    return specs


# ------------------------------------------------------------------------- environments
def _aws_environment(endpoint_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105 # moto's fixed credentials, local only
        "POWERTOOLS_TRACE_DISABLED": os.environ.get("POWERTOOLS_TRACE_DISABLED", "true"),
        # Metrics stay on and print their EMF lines, as in Lambda: with metrics disabled,
        # Powertools never empties its buffer and fails once a metric has 100 values.
    }


def _resolved(variables: Mapping[str, Any], resources: Resources) -> dict[str, str]:
    values = {name: resources.resolve(value) for name, value in variables.items()}
    return {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in values.items()
        if value is not None
    }


def _user_overrides() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith("CASHEW_")}


def function_env(spec: FunctionSpec, resources: Resources, endpoint_url: str) -> dict[str, str]:
    """The environment of `spec` as Lambda would set it, pointed at `endpoint_url`."""
    return {
        **_resolved(spec.environment, resources),
        **_aws_environment(endpoint_url),
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "TZ": "UTC",
        **_user_overrides(),
    }


def stack_env(
    template: Mapping[str, Any], resources: Resources, endpoint_url: str
) -> dict[str, str]:
    """The environment every function shares (Globals), for code that runs outside a function."""
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    return {
        **_resolved(variables.get("Variables", {}), resources),
        **_aws_environment(endpoint_url),
        **_user_overrides(),
    }


# ------------------------------------------------------------------------------- the API
@dataclass(frozen=True)
class Authorizer:
    """A Lambda TOKEN authorizer: the identity header's value goes to `function_id`."""

    name: str
    function_id: str
    header: str
    validation_expression: str | None


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: dict[str, str]  # header -> mapping expression: "'literal'" or "context.requestId"
    templates: dict[str, str]  # content type -> body template


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage: str
    authorizers: dict[str, Authorizer]
    gateway_responses: dict[str, GatewayResponse]


def apis(template: Mapping[str, Any]) -> dict[str, ApiSpec]:
    """Every AWS::Serverless::Api: its stage, authorizers and gateway responses."""
    resolver = Resources(template)
    specs = {}
    for logical_id, props in _resources_of(template, "AWS::Serverless::Api"):
        authorizers = {}
        for name, auth in props.get("Auth", {}).get("Authorizers", {}).items():
            if auth.get("FunctionPayloadType", "TOKEN") != "TOKEN":
                raise NotImplementedError(f"authorizer {name}: only TOKEN authorizers run locally")
            identity = auth.get("Identity", {})
            authorizers[name] = Authorizer(
                name,
                _logical_id(auth["FunctionArn"]),
                identity.get("Header", "Authorization"),
                identity.get("ValidationExpression"),
            )
        responses = {
            kind: GatewayResponse(
                int(response["StatusCode"]) if "StatusCode" in response else None,
                dict(response.get("ResponseParameters", {}).get("Headers", {})),
                dict(response.get("ResponseTemplates", {})),
            )
            for kind, response in resolver.resolve(props.get("GatewayResponses", {})).items()
        }
        specs[logical_id] = ApiSpec(
            logical_id, str(resolver.resolve(props["StageName"])), authorizers, responses
        )
    return specs
