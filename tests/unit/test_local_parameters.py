"""The local stack's template parameters: `Stage=local Gateway=sandbox` by default,
CASHEW_LOCAL_PARAMETERS over them, checked as CloudFormation checks them (AllowedValues,
AllowedPattern and the template's Rules) before anything is provisioned."""

from __future__ import annotations

from typing import Any

import pytest

from local.cfn import ParameterError, load_template, local_parameters, parameters, parse_overrides
from local.provision import provision

TEMPLATE = load_template()
RULE = TEMPLATE["Rules"]["ProductionRefusesTheSandbox"]["Assertions"][0]["AssertDescription"]


def test_the_deployed_defaults_are_stripe_on_a_production_stage() -> None:
    values = parameters(TEMPLATE)
    assert (values["Stage"], values["Gateway"], values["AllowSandbox"]) == (
        "prod",
        "stripe",
        "false",
    )


def test_the_local_stack_runs_a_local_stage_with_the_sandbox() -> None:
    values = local_parameters(TEMPLATE)
    assert (values["Stage"], values["Gateway"]) == ("local", "sandbox")


def test_a_production_stage_with_the_sandbox_breaks_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASHEW_LOCAL_PARAMETERS", "Stage=prod Gateway=sandbox")
    with pytest.raises(ParameterError) as refused:
        local_parameters(TEMPLATE)
    assert str(refused.value) == f"rule ProductionRefusesTheSandbox: {RULE}"
    # ... and nothing is provisioned
    called: list[str] = []

    def clients(service: str) -> Any:
        called.append(service)
        raise AssertionError("provisioned despite the rule")

    with pytest.raises(ParameterError):
        provision(TEMPLATE, clients)
    assert called == []


@pytest.mark.parametrize(
    "overrides",
    [
        "Stage=prod Gateway=sandbox AllowSandbox=true",
        "Stage=prod Gateway=stripe",
        "Stage=dev Gateway=sandbox",
    ],
)
def test_what_the_rule_allows(overrides: str) -> None:
    parameters(TEMPLATE, parse_overrides(overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("Gateway=paypal", "not one of sandbox, stripe"),
        ("AllowSandbox=yes", "not one of false, true"),
        ("Stage=Prod!", "AllowedPattern"),
        ("Nope=1", "no parameter Nope"),
        ("Stage", "expected Name=value"),
    ],
)
def test_parameters_cloudformation_would_refuse(overrides: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parameters(TEMPLATE, parse_overrides(overrides))
