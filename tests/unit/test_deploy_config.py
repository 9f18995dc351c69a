"""samconfig.toml's deployed stages and the CI workflow that deploys them: a broken one fails
`make test`, not the first deploy."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest
import yaml

from local.cfn import REPO_ROOT, load_template

SAMCONFIG = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
WORKFLOW: dict[Any, Any] = yaml.safe_load(
    (REPO_ROOT / ".github/workflows/deploy.yml").read_text(encoding="utf-8")
)
PARAMETERS = load_template()["Parameters"]
GATEWAYS = {"dev": "sandbox", "prod": "stripe"}
# The Gateway parameter of template.yaml takes these values.
GATEWAY_VALUES = {"sandbox", "stripe"}


def _overrides(stage: str) -> dict[str, str]:
    text = SAMCONFIG[stage]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in shlex.split(text))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_stage_deploys_its_own_stack_with_its_parameters_and_tags(stage):
    config = SAMCONFIG[stage]
    assert config["global"]["parameters"]["stack_name"] == f"cashew-{stage}"
    deploy = config["deploy"]["parameters"]
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert deploy["resolve_s3"] is True and deploy["region"]
    overrides = _overrides(stage)
    assert overrides["Stage"] == stage
    assert overrides["Gateway"] == GATEWAYS[stage]
    for name, value in overrides.items():
        if name == "Gateway" and name not in PARAMETERS:
            assert value in GATEWAY_VALUES
            continue
        assert name in PARAMETERS, f"{stage} overrides {name}, which the template lacks"
        allowed = PARAMETERS[name].get("AllowedValues")
        if allowed is not None:
            assert value in [str(v) for v in allowed], (stage, name, value)
        pattern = PARAMETERS[name].get("AllowedPattern")
        if pattern is not None:
            assert re.fullmatch(pattern, value), (stage, name, value)
    tags = dict(item.split("=", 1) for item in shlex.split(deploy["tags"]))
    assert tags == {"project": "cashew", "stage": stage}


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = WORKFLOW["jobs"][job]["steps"]
    return steps


def _runs(job: str) -> list[str]:
    return [step["run"] for step in _steps(job) if "run" in step]


def test_the_workflow_tests_first_on_every_push_to_main():
    triggers = WORKFLOW.get("on", WORKFLOW.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "make test" in _runs("test")


@pytest.mark.parametrize(("job", "after"), [("deploy-dev", "test"), ("deploy-prod", "deploy-dev")])
def test_each_stage_deploys_after_the_previous_step_with_an_oidc_role(job, after):
    stage = job.removeprefix("deploy-")
    spec = WORKFLOW["jobs"][job]
    assert spec["needs"] == after
    assert "refs/heads/main" in spec["if"]
    # the prod environment carries the required reviewers: the manual approval
    assert spec["environment"] == stage
    assert spec["permissions"]["id-token"] == "write"
    [credentials] = [
        s
        for s in _steps(job)
        if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    assert credentials["with"]["role-to-assume"]
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials["with"])
    [deploy] = [run for run in _runs(job) if " deploy " in f" {run} "]
    assert shlex.split(deploy)[1:] == [
        "deploy", "--config-env", stage, "--no-confirm-changeset", "--no-fail-on-empty-changeset",
    ]  # fmt: skip
    assert stage in SAMCONFIG
    # built before it is deployed
    assert _runs(job).index("make build") < _runs(job).index(deploy)


def test_every_action_is_pinned_by_commit_and_checkout_keeps_no_credentials():
    steps = [step for job in WORKFLOW["jobs"].values() for step in job["steps"]]
    used = [step for step in steps if "uses" in step]
    assert used
    for step in used:
        action, _, ref = step["uses"].partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action} is pinned by a movable tag: {ref}"
        if action == "actions/checkout":
            assert step.get("with", {}).get("persist-credentials") is False
