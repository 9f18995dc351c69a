"""The cold-start baseline B (bench.coldstart): the smallest honest Powertools API function.

Powertools Logger, Metrics and the REST resolver, a DynamoDB client created at module scope,
and one route that reads one item. Its table and key come from the bench's environment.
"""

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="baseline")
metrics = Metrics(namespace="Baseline", service="baseline")
app = APIGatewayRestResolver()
dynamodb = boto3.client("dynamodb")


@app.get("/v1/users/me")
def read() -> dict[str, bool]:
    key = json.loads(os.environ["BENCH_KEY"])
    item = dynamodb.get_item(TableName=os.environ["BENCH_TABLE"], Key=key)
    return {"found": "Item" in item}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
