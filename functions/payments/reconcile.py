"""The scheduled reconciliation run (template.yaml: a Schedule every 5 minutes)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.observability import logger, metrics
from cashew.payments import reconcile
from cashew.payouts import face as payouts

aws.prepare("dynamodb")


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> reconcile.Summary:
    return reconcile.run(context.get_remaining_time_in_millis, more=payouts.SWEEPS).as_dict()
