"""The functions and APIs of template.yaml as the Serverless transform builds them:
`functions` gives each function's code, handler, layers, limits, environment and event
sources, `apis` each API's stage, authorizers and gateway responses, and `function_env` a
function's environment resolved against what was provisioned (`local.provision`).

Environment variables read here:
- `CASHEW_*`: passed through to every function, over the template's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.cfn import (
    REGION,
    REPO_ROOT,
    Resources,
    physical_name,
    resources_of,
)


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
class ScheduleEvent:
    """A `Schedule` (EventBridge rule) or `ScheduleV2` (EventBridge Scheduler) event:
    `function_id` runs every `rate_seconds` (the template's `rate(...)` expression)."""

    function_id: str
    name: str
    expression: str
    rate_seconds: int


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """The interval of a `rate(N unit)` schedule expression, in seconds. The local stack runs
    rate expressions only: a cron(...) schedule is refused by name rather than run wrongly."""
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise ValueError(f"the local stack runs rate(...) schedules only, not {expression!r}")
    return int(match[1]) * _UNIT_SECONDS[match[2].removesuffix("s")]


def _schedule_event(
    function_id: str, name: str, kind: str, props: Mapping[str, Any]
) -> ScheduleEvent:
    expression = str(props["Schedule" if kind == "Schedule" else "ScheduleExpression"])
    return ScheduleEvent(function_id, name, expression, rate_seconds(expression))


def _enabled(kind: str, props: Mapping[str, Any]) -> bool:
    if kind == "ScheduleV2":
        return str(props.get("State", "ENABLED")).upper() == "ENABLED"
    return (
        bool(props.get("Enabled", True)) and str(props.get("State", "ENABLED")).upper() == "ENABLED"
    )


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
    schedule_events: tuple[ScheduleEvent, ...] = ()


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
        for api_id, props in resources_of(template, "AWS::Serverless::Api")
    }
    specs = {}
    for logical_id, own in resources_of(template, "AWS::Serverless::Function"):
        props = _merge_globals(defaults, own)
        module, _, attr = props["Handler"].rpartition(".")
        layers = [
            _logical_id(layer) for layer in props.get("Layers", []) if isinstance(layer, dict)
        ]
        named_events = props.get("Events", {})
        events = named_events.values()
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
            schedule_events=tuple(
                _schedule_event(logical_id, name, event["Type"], event["Properties"])
                for name, event in named_events.items()
                if event["Type"] in ("Schedule", "ScheduleV2")
                and _enabled(event["Type"], event["Properties"])
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
    for logical_id, props in resources_of(template, "AWS::Serverless::Api"):
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
