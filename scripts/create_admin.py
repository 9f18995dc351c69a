"""Create the first admin of a deployed stack (or promote an existing user to admin).

    make create-admin STACK=cashew EMAIL=ops@example.com [NAME="Ops"] [REGION=eu-west-1]

The password is read from the terminal (or from CASHEW_ADMIN_PASSWORD when there is none),
never from the command line. Uses your AWS credentials; needs cloudformation:
DescribeStackResources on the stack and dynamodb:PutItem/GetItem/UpdateItem on its accounts
table. Writes through the same code as the API, so the admin is an ordinary user with role
`admin` and an argon2id password hash.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "layers/shared/python"))

import boto3  # noqa: E402

# The variables every function gets from template.yaml's Globals, by logical id.
_RESOURCE_ENV = {
    "SessionsTable": "CASHEW_SESSIONS_TABLE",
    "AccountsTable": "CASHEW_ACCOUNTS_TABLE",
    "PaymentsTable": "CASHEW_PAYMENTS_TABLE",
    "IdempotencyTable": "CASHEW_IDEMPOTENCY_TABLE",
    "TransactionLogTable": "CASHEW_LOG_TABLE",
    "OutcomesQueue": "CASHEW_OUTCOMES_QUEUE_URL",
    "PaymentEventBus": "CASHEW_EVENT_BUS_NAME",
    "CardDataKey": "CASHEW_CARD_KEY_ID",
    "JwtSigningKeySecret": "CASHEW_JWT_SECRET_ID",
    "CardFingerprintSecret": "CASHEW_FINGERPRINT_SECRET_ID",
}


def stack_environment(stack: str, region: str | None) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=region)
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    missing = sorted(set(_RESOURCE_ENV) - set(physical))
    if missing:
        raise SystemExit(f"stack {stack} has no {', '.join(missing)}: is it a Cashew stack?")
    return {variable: physical[logical] for logical, variable in _RESOURCE_ENV.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", default="Administrator")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    args = parser.parse_args(argv)
    password = os.environ.get("CASHEW_ADMIN_PASSWORD") or getpass.getpass("admin password: ")
    os.environ.update(stack_environment(args.stack, args.region))

    from cashew.accounts.admins import create_admin  # noqa: PLC0415 - needs the environment
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
