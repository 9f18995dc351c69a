"""The payments table: one immutable-id item per attempted payment."""

from __future__ import annotations

from typing import Any

from cashew import dynamo
from cashew.config import get_settings
from cashew.payments.models import PaymentResponse


def put_item(payment: PaymentResponse, fired_rules: list[str]) -> dict[str, Any]:
    """The payment's first write: conditional on its id being new."""
    item = {"pk": payment.id, **payment.model_dump(mode="json"), "fired_rules": fired_rules}
    return {
        "Put": {
            "TableName": get_settings().payments_table,
            "Item": dynamo.serialize(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def get(payment_id: str) -> PaymentResponse | None:
    item = dynamo.get_item(get_settings().payments_table, {"pk": payment_id})
    return PaymentResponse.model_validate(item, strict=False) if item else None
