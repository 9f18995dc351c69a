"""`make create-admin` (scripts/create_admin.py) on a deployed stack: its environment is the
one template.yaml's Globals give every function, and it creates the admin."""

from __future__ import annotations

import copy
import importlib.util
import os
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cashew import aws
from cashew.config import Settings, get_settings
from local.cfn import load_template
from tests.integration.conftest import PASSWORD, authorize

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "create_admin.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("create_admin_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CloudFormation:
    """ListStackResources (in pages of 100, as CloudFormation gives them), DescribeStackResources
    (the first 100 only, as CloudFormation answers it) and DescribeStacks of one deployed stack.
    Like a real stack it has hundreds of resources: the template's, and the roles and
    permissions the Serverless transform adds for each function."""

    PAGE = 100

    def __init__(self, physical: dict[str, str], parameters: dict[str, str]) -> None:
        generated = {
            f"{logical}{suffix}": f"physical-{logical}{suffix}"
            for logical in load_template()["Resources"]
            for suffix in ("Role", "ApiPermission", "EventInvokeConfig")
        }
        self.physical = {**generated, **physical}  # the template's own resources last
        self.parameters = parameters
        self.asked: list[str] = []

    def _summaries(self) -> list[dict[str, str]]:
        return [
            {"LogicalResourceId": logical, "PhysicalResourceId": physical}
            for logical, physical in self.physical.items()
        ]

    def describe_stack_resources(self, *, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        return {"StackResources": self._summaries()[: self.PAGE]}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_stack_resources"
        summaries = self._summaries()
        cfn = self

        class Paginator:
            def paginate(self, *, StackName: str) -> Any:
                cfn.asked.append(StackName)
                for start in range(0, len(summaries), cfn.PAGE):
                    yield {"StackResourceSummaries": summaries[start : start + cfn.PAGE]}

        return Paginator()

    def describe_stacks(self, *, StackName: str) -> dict[str, Any]:
        parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()]
        return {"Stacks": [{"StackName": StackName, "Parameters": parameters}]}


def _deployed(monkeypatch: pytest.MonkeyPatch, script: ModuleType, cfn: CloudFormation) -> None:
    def client(service: str, **kwargs: Any) -> Any:
        assert service == "cloudformation"
        return cfn

    monkeypatch.setattr(script.boto3, "client", client)


def _every_resource() -> dict[str, str]:
    return {logical: f"physical-{logical}" for logical in load_template()["Resources"]}


def test_the_scripts_environment_is_the_one_the_template_gives_every_function(monkeypatch):
    # Given a deployed stack with every resource of the template
    script = _script()
    cfn = CloudFormation(_every_resource(), {"Stage": "prod", "Gateway": "stripe"})
    _deployed(monkeypatch, script, cfn)
    # When the script computes the environment of its stack
    env = script.stack_environment("cashew-prod", "eu-west-1")
    # Then it sets exactly the variables of the template's Globals, each Ref resolved to the
    # deployed resource or the stack's parameter
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert set(env) == set(variables)
    for name, value in variables.items():
        if isinstance(value, dict) and value.get("Ref") in cfn.physical:
            assert env[name] == f"physical-{value['Ref']}"
    assert (env["CASHEW_STAGE"], env["CASHEW_GATEWAY"]) == ("prod", "stripe")
    assert env["CASHEW_DISPUTES_TABLE"] == "physical-DisputesTable"
    # ... which is all the settings need
    Settings.model_validate(env)


def test_a_globals_variable_the_script_cannot_provide_fails(monkeypatch):
    # Given a template whose Globals gained a variable that names no resource of the stack
    # by Ref (a GetAtt, which DescribeStackResources cannot answer)
    script = _script()
    _deployed(monkeypatch, script, CloudFormation(_every_resource(), {}))
    template = copy.deepcopy(load_template())
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    variables["CASHEW_NEW_TABLE_ARN"] = {"Fn::GetAtt": ["PaymentsTable", "Arn"]}
    # Then the script refuses rather than run with part of the environment
    with pytest.raises(SystemExit, match="PaymentsTable"):
        script.stack_environment("cashew-prod", None, template)
    # ... and so does a stack that lacks a resource the Globals name
    del variables["CASHEW_NEW_TABLE_ARN"]
    physical = _every_resource()
    del physical["DisputesTable"]
    _deployed(monkeypatch, script, CloudFormation(physical, {}))
    with pytest.raises(SystemExit, match="DisputesTable"):
        script.stack_environment("cashew-prod", None, template)


def test_the_script_creates_the_first_admin_of_a_deployed_stack(stack, monkeypatch, capsys):
    # Given a deployed stack (the embedded endpoint, its resources as CloudFormation would
    # describe them) and an operator's shell with none of the stack's variables
    script = _script()
    physical = {logical: str(attrs["Ref"]) for logical, attrs in stack.resources.items()}
    _deployed(monkeypatch, script, CloudFormation(physical, {"Stage": "prod"}))
    for name in list(os.environ):
        if name.startswith("CASHEW_"):
            monkeypatch.delenv(name)
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    monkeypatch.setenv("CASHEW_ADMIN_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    aws.reset()
    try:
        # When the operator runs it
        code = script.main(["--stack", "cashew-prod", "--email", email, "--name", "Ops"])
    finally:
        get_settings.cache_clear()
        aws.reset()
    # Then the admin was created, and can sign in as an admin
    assert code == 0
    assert f"created admin {email}" in capsys.readouterr().out
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    login = stack.call(
        "LoginFunction", "auth/login.json", body={"email": email, "password": PASSWORD}
    )
    assert login.status == 200
    assert authorize(stack, login.body["access_token"])["context"]["role"] == "admin"
