"""Create the first admin of a deployed stack (or promote an existing user to admin).

    make create-admin STACK=cashew-prod EMAIL=ops@example.com [NAME="Ops"] [REGION=eu-west-1]

The password is read from the terminal (or from CASHEW_ADMIN_PASSWORD when there is none),
never from the command line. Uses your AWS credentials; needs cloudformation:
ListStackResources and DescribeStacks on the stack and dynamodb:PutItem/GetItem/UpdateItem
on its accounts table (and UpdateItem on the sessions of a promoted user). The environment is
derived from template.yaml's Globals, resolved against the deployed stack, so it is the
environment every function has. Writes through the same code as the API, so the admin is an
ordinary user with role `admin` and an argon2id password hash.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "layers/shared/python"), str(REPO)]

import boto3  # noqa: E402

from local.cfn import Resources, load_template  # noqa: E402 - after the path is set


def stack_environment(
    stack: str, region: str | None, template: dict[str, Any] | None = None
) -> dict[str, str]:
    """The environment template.yaml's Globals give every function of the deployed `stack`:
    its Refs to resources resolved to their physical ids (ListStackResources), its Refs
    to parameters to the stack's values (DescribeStacks), literals as they are."""
    template = template or load_template()
    cloudformation = boto3.client("cloudformation", region_name=region)
    # ListStackResources, paged: DescribeStackResources answers with the first 100 only, and
    # a deployed stack has several hundred (each function brings its role and permissions).
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in pages
        for r in page["StackResourceSummaries"]
        if "PhysicalResourceId" in r
    }
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
    resolver = Resources(template, values)
    for logical_id, physical_id in physical.items():
        resolver[logical_id] = {"Ref": physical_id}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    wanted = {ref for value in variables.values() for ref in _refs(value)}
    missing = sorted(wanted - set(physical) - set(resolver))
    if missing:
        raise SystemExit(f"stack {stack} has no {', '.join(missing)}: is it a Cashew stack?")
    try:
        return {name: str(resolver.resolve(value)) for name, value in variables.items()}
    except KeyError as error:
        raise SystemExit(f"cannot resolve the stack's environment: {error}") from None


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return [str(value["Ref"])]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", default="Administrator")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    args = parser.parse_args(argv)
    password = os.environ.get("CASHEW_ADMIN_PASSWORD") or getpass.getpass("admin password: ")
    os.environ.update(stack_environment(args.stack, args.region))

    from cashew.auth.admins import create_admin  # noqa: PLC0415 - needs the environment
    from cashew.errors import CashewError  # noqa: PLC0415

    try:
        admin, created = create_admin(args.email, password, args.name)
    except CashewError as error:
        print(f"not done: {error.detail}", file=sys.stderr)
        return 1
    print(f"{'created' if created else 'promoted'} admin {admin.email} ({admin.id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
