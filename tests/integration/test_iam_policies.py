"""Least privilege that still works: every AWS action a function performs is granted to it
by its policy in template.yaml. The local stack does not enforce IAM, so without this test a
missing grant would only show as AccessDenied after deploying."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cashew import aws
from local.template import load_template
from tests.integration.conftest import PASSWORD, add_card, authorize, pay, top_up

# IAM authorises each item of a TransactWriteItems as its own action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_TARGET_PARAMS = ("TableName", "QueueUrl", "KeyId", "SecretId")


def _granted() -> dict[str, set[tuple[str, str]]]:
    """(action, logical id of the resource) granted to each function by template.yaml."""
    grants: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for function_id, resource in load_template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement["Action"]
                target = statement["Resource"]
                logical = target.get("Ref") or target["Fn::GetAtt"][0]
                for action in [actions] if isinstance(actions, str) else actions:
                    assert "*" not in action, f"{function_id} is granted a wildcard: {action}"
                    grants[function_id].add((action, logical))
    return grants


class _Recorder:
    def __init__(self, resources: dict[str, dict[str, Any]]) -> None:
        self.by_physical = {
            str(value): logical_id
            for logical_id, attributes in resources.items()
            for value in attributes.values()
            if isinstance(value, str)
        }
        self.function: str | None = None
        self.used: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.function is None:
            return
        service = model.service_model.signing_name
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                self._use(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", body["TableName"])
            return
        target = next(params[name] for name in _TARGET_PARAMS if name in params)
        self._use(f"{service}:{model.name}", target)

    def _use(self, action: str, physical: str) -> None:
        assert self.function is not None
        self.used[self.function].add((action, self.by_physical.get(physical, physical)))

    @contextmanager
    def acting_as(self, function_id: str) -> Iterator[None]:
        aws.reset()  # cold: secrets are fetched again, as a new instance would
        aws.session().events.register("before-parameter-build", self)
        self.function = function_id
        try:
            yield
        finally:
            self.function = None


@pytest.fixture
def recorder(stack) -> Iterator[_Recorder]:
    recorder = _Recorder(stack.resources)
    yield recorder
    aws.reset()


def test_every_action_a_function_performs_is_granted(stack, new_user, recorder):
    # Given two users, and every operation of the skeleton run as its function
    payer, payee = new_user(), new_user()

    def run(function_id: str, operation: Callable[[], Any]) -> Any:
        with recorder.acting_as(function_id):
            return operation()

    def consume() -> None:
        sqs = stack.clients("sqs")
        url = stack.env["CASHEW_OUTCOMES_QUEUE_URL"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:outcomes",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }
        assert stack.invoke("LogConsumerFunction", event) == {"batchItemFailures": []}

    email = f"{uuid.uuid4().hex[:12]}@example.com"
    run("RegisterFunction", lambda: stack.call("RegisterFunction", "accounts/register.json",
        body={"email": email, "password": PASSWORD, "name": "Iam"}))  # fmt: skip
    run("LoginFunction", lambda: stack.call("LoginFunction", "auth/login.json",
        body={"email": payer.email, "password": PASSWORD}))  # fmt: skip
    run("AuthorizerFunction", lambda: authorize(stack, payer.access_token))
    run("JwksFunction", lambda: stack.call("JwksFunction", "auth/jwks.json"))
    run("GetMeFunction", lambda: stack.call("GetMeFunction", "accounts/get_me.json",
        authorizer=payer.authorizer))  # fmt: skip
    method = run("AddPaymentMethodFunction", lambda: add_card(stack, payer))
    run("CreateTopUpFunction", lambda: top_up(stack, payer, method, 5_000))
    run("ListBalancesFunction", lambda: stack.call("ListBalancesFunction",
        "accounts/list_balances.json", authorizer=payer.authorizer))  # fmt: skip
    run("CreatePaymentFunction", lambda: pay(stack, payer, payee.id, 100))
    card_payment = run("CreatePaymentFunction", lambda: pay(stack, payer, payee.id, 100,
        source={"type": "card", "payment_method_id": method}))  # fmt: skip
    assert card_payment.status == 201 and card_payment.body["status"] == "succeeded"
    run("LogConsumerFunction", consume)
    run("ListTransactionsFunction", lambda: stack.call("ListTransactionsFunction",
        "ledger/list_transactions.json", authorizer=payer.authorizer))  # fmt: skip

    # Then each function was granted every action it performed, on that very resource
    granted = _granted()
    assert set(recorder.used) == set(stack.functions) - {"HealthFunction"}
    missing = {
        function_id: sorted(used - granted[function_id])
        for function_id, used in recorder.used.items()
        if used - granted[function_id]
    }
    assert missing == {}


def test_no_function_may_update_or_delete_the_transaction_log():
    forbidden = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    for function_id, grants in _granted().items():
        on_log = {action for action, target in grants if target == "TransactionLogTable"}
        assert not on_log & forbidden, function_id
