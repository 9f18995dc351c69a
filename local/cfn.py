"""template.yaml as CloudFormation reads it: the one description of the stack that
everything local derives from.

`load_template` parses it (CloudFormation short tags included), `parameters` checks parameter
values as CloudFormation does (AllowedValues, AllowedPattern and the template's `Rules`), and
`Resources` evaluates intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`...) against the
pseudo parameters, the parameters and whatever has been provisioned. `local.provision` creates
the resources, `local.specs` describes the functions and APIs.

Environment variables read here:
- `CASHEW_LOCAL_PARAMETERS`: template parameter overrides, `Name=value` separated by spaces
  (as `sam deploy --parameter-overrides`), over the local stack's own, `Stage=local
  Gateway=sandbox`. For example `CASHEW_LOCAL_PARAMETERS="Stage=prod Gateway=sandbox"` runs
  the stack as a production stage, which the template's Rules refuse (`ParameterError`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
PARTITION = "aws"
STACK_NAME = "cashew"
API_ID = "local"


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


def resources_of(template: Mapping[str, Any], *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
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
        for logical_id, props in resources_of(template, "AWS::Serverless::Function"):
            name = props.get("FunctionName") or physical_name(logical_id)
            arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            self[logical_id] = {"Ref": name, "Arn": arn}
        for logical_id, _ in resources_of(template, "AWS::Serverless::Api"):
            self[logical_id] = {"Ref": API_ID, "RootResourceId": "root"}
        for logical_id, _ in resources_of(template, "AWS::Serverless::LayerVersion"):
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


def references(value: Any) -> Iterator[str]:
    """The logical ids that `value` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield item[0]
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                yield from (name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text))
                yield from references(item)
            else:
                yield from references(item)
