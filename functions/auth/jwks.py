from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth.keys import published_jwks
from cashew.auth.models import JwkSet
from cashew.http import CashewResolver
from cashew.observability import logger

aws.prepare("secretsmanager")

app = CashewResolver()


@app.get("/.well-known/jwks.json")
def get_jwks() -> JwkSet:
    return JwkSet.model_validate(published_jwks())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
