from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import access
from cashew.errors import UnauthenticatedError
from cashew.observability import logger

aws.prepare("dynamodb", "secretsmanager")


@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerTokenEvent)
def lambda_handler(event: APIGatewayAuthorizerTokenEvent, context: LambdaContext) -> dict[str, Any]:
    try:
        caller = access.authenticate(event.authorization_token or "")
    except UnauthenticatedError as error:
        logger.info("access denied", extra={"reason": error.detail})
        raise Exception("Unauthorized") from None
    arn = event.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=caller.user_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"user_id": caller.user_id, "session_id": caller.session_id, "role": caller.role},
    )
    policy.allow_all_routes()
    return policy.asdict()
