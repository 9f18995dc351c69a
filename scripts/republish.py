"""Publish again what a deployed stack's `PublishFailuresQueue` describes.

    python -m scripts.republish --stack cashew-prod [--region eu-west-1]

Runs the publisher's own code (cashew.republish) with the publisher function's own
environment (read with lambda:GetFunctionConfiguration), using your AWS credentials: they
need cloudformation:DescribeStackResource, lambda:GetFunctionConfiguration, sqs:ReceiveMessage
and sqs:DeleteMessage on the failures queue, dynamodb:Scan and dynamodb:GetItem (a set-aside
record's item, read again) on the payments and disputes tables, sqs:SendMessage on the
outcomes queue and events:PutEvents on the bus. The queue is long-polled (20 s,
`republish.WAIT`); the command stops after a long poll that returned nothing new. Each
failure message is deleted only once the changes it describes are published; the log and the
bus's consumers deduplicate on `outcome_id`, so running it again applies nothing twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "layers/shared/python"))

import boto3  # noqa: E402

PUBLISHER = "PublishOutcomesFunction"


def publisher_environment(stack: str, region: str | None) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=region)
    resource = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=PUBLISHER)
    name = resource["StackResourceDetail"]["PhysicalResourceId"]
    configuration = boto3.client("lambda", region_name=region).get_function_configuration(
        FunctionName=name
    )
    variables: dict[str, str] = configuration.get("Environment", {}).get("Variables", {})
    if "CASHEW_PUBLISH_FAILURES_QUEUE_URL" not in variables:
        raise SystemExit(f"{name} has no CASHEW_PUBLISH_FAILURES_QUEUE_URL: a Cashew stack?")
    return variables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    args = parser.parse_args(argv)
    os.environ.update(publisher_environment(args.stack, args.region))
    if args.region:
        os.environ.setdefault("AWS_DEFAULT_REGION", args.region)

    from cashew import republish  # noqa: PLC0415 - needs the environment

    report = republish.run()
    print(report.summary())
    return 0 if not report.left else 1


if __name__ == "__main__":
    sys.exit(main())
