"""Least privilege that still works: every AWS action a function performs is granted to it
by its policy in template.yaml. The local stack does not enforce IAM, so without this test a
missing grant would only show as AccessDenied after deploying."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parseaddr
from typing import Any

import pytest

from cashew import aws, dynamo
from cashew.gateways.base import sign_webhook
from cashew.payments import store as payments_store
from local.cfn import Resources, load_template
from tests.integration.conftest import (
    PASSWORD,
    add_card,
    add_card_by_token,
    authorize,
    call_with_id,
    card_update_webhook,
    pay,
    sandbox_token,
    top_up,
)

# IAM authorises each item of a TransactWriteItems as its own action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_TARGET_PARAMS = ("TableName", "QueueUrl", "KeyId", "SecretId", "Bucket")
_AUTHORISED_AS = {  # the services' IAM references
    "SendMessageBatch": "sqs:SendMessage",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}
# The functions that move money, each holding UpdateItem on the accounts table.
MONEY_FUNCTIONS = (
    "CreateTopUpFunction", "CreatePaymentFunction", "CapturePaymentFunction",
    "CreateRefundFunction", "GatewayWebhookFunction", "ResolveDisputeFunction",
    "CreatePayoutFunction",
)  # fmt: skip
# The calls authorised once for each table (or bus) they name: (action, those names).
_PER_TARGET: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "BatchGetItem": ("dynamodb:BatchGetItem", lambda params: list(params["RequestItems"])),
    "PutEvents": ("events:PutEvents", lambda p: [e["EventBusName"] for e in p["Entries"]]),
}  # fmt: skip
_KEY_ATTRIBUTES = {"pk", "sk"}
_NOT_ATTRIBUTES = {
    "SET", "ADD", "REMOVE", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN", "attribute_exists",
    "attribute_not_exists", "attribute_type", "begins_with", "contains", "size", "if_not_exists",
    "list_append",
}  # fmt: skip


def _attributes_of(update: dict[str, Any]) -> set[str]:
    """The top-level attributes an Update names (key, update and condition expressions), as
    IAM's `dynamodb:Attributes` sees them."""
    names = update.get("ExpressionAttributeNames", {})
    found = set(update["Key"])
    for field in ("UpdateExpression", "ConditionExpression"):
        text = re.sub(r":\w+", " ", update.get(field, ""))
        for token in re.findall(r"(?<![\w.#])#?[A-Za-z_]\w*", text):
            if token not in _NOT_ATTRIBUTES:
                found.add(names.get(token, token))
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _accounts_update_grants(function_id: str) -> list[dict[str, Any]]:
    """The statements that let `function_id` update items of the accounts table."""
    resource = load_template()["Resources"][function_id]
    return [
        statement
        for policy in resource["Properties"].get("Policies", [])
        for statement in policy["Statement"]
        if "dynamodb:UpdateItem" in _actions(statement)
        and statement["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    ]


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
                resources = statement["Resource"]
                for target in resources if isinstance(resources, list) else [resources]:
                    logical = _logical(target)
                    for action in [actions] if isinstance(actions, str) else actions:
                        assert "*" not in action, f"{function_id} is granted a wildcard: {action}"
                        grants[function_id].add((action, logical))
    return grants


def _logical(resource: dict[str, Any]) -> str:
    """`!Ref X` / `!GetAtt X.Arn` -> X; `!Sub ${X.Arn}/index/I` -> X/index/I."""
    if "Fn::Sub" in resource and resource["Fn::Sub"].endswith(":identity/${EmailIdentity}"):
        return "EmailIdentity"  # SES identities have no Arn attribute: their ARN is built
    if "Fn::Sub" in resource and (
        objects := re.fullmatch(r"\$\{(\w+)\.Arn\}/[\w/]*\*", resource["Fn::Sub"])
    ):
        return objects.group(1)  # a bucket's objects: calls name the bucket
    if "Fn::Sub" in resource:
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(/index/\w+)", resource["Fn::Sub"])
        assert match, f"unexpected resource {resource}"
        return match.group(1) + match.group(2)
    return str(resource.get("Ref") or resource["Fn::GetAtt"][0])


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
        # Every Update of an accounts-table item each function sent: (its attributes, its
        # partition key, its ReturnValues).
        self.account_updates: dict[str, list[tuple[set[str], str, str]]] = defaultdict(list)
        # Every PutItem of an accounts-table item: (its attributes, its partition key).
        self.account_puts: dict[str, list[tuple[set[str], str]]] = defaultdict(list)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.function is None:
            return
        service = model.service_model.signing_name
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                self._use(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", body["TableName"])
                if kind == "Update":
                    self._update(body)
                if kind == "Put":
                    self._put(body)
            return
        if model.name == "UpdateItem":
            self._update(params)
        if model.name == "PutItem":
            self._put(params)
        if model.name == "SendEmail":  # authorised on the identity of its From
            address = parseaddr(params["FromEmailAddress"])[1]
            identity = address if address in self.by_physical else address.rpartition("@")[2]
            self._use("ses:SendEmail", identity)
            return
        if model.name in _PER_TARGET:  # authorised on each table or bus it names
            action, targets = _PER_TARGET[model.name]
            for target in targets(params):
                self._use(action, target)
            return
        target = next(params[name] for name in _TARGET_PARAMS if name in params)
        action = _AUTHORISED_AS.get(model.name, f"{service}:{model.name}")
        self._use(action, target, params.get("IndexName"))

    def _use(self, action: str, physical: str, index: str | None = None) -> None:
        assert self.function is not None
        logical = self.by_physical.get(physical, physical)
        target = f"{logical}/index/{index}" if index else logical
        self.used[self.function].add((action, target))

    def gateway_readers(self) -> set[str]:
        """The functions that read the gateway's secret (that is, built the gateway)."""
        return {f for f, used in self.used.items() if GATEWAY_SECRET_READ in used}

    def _put(self, put: dict[str, Any]) -> None:
        assert self.function is not None
        if self.by_physical.get(put["TableName"]) == "AccountsTable":
            self.account_puts[self.function].append((set(put["Item"]), put["Item"]["pk"]["S"]))

    def _update(self, update: dict[str, Any]) -> None:
        assert self.function is not None
        if self.by_physical.get(update["TableName"]) != "AccountsTable":
            return
        self.account_updates[self.function].append(
            (_attributes_of(update), update["Key"]["pk"]["S"], update.get("ReturnValues", "NONE"))
        )

    def ungranted(self) -> dict[str, list[tuple[str, str]]]:
        """What each function did that its policy in template.yaml does not allow."""
        granted = _granted()
        return {
            function_id: sorted(used - granted[function_id])
            for function_id, used in self.used.items()
            if used - granted[function_id]
        }

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


GATEWAY_SECRET_READ = ("secretsmanager:GetSecretValue", "GatewaySecret")
# Every function that builds the payment gateway (calls get_gateway), and no other: they
# alone may read the Stripe key and the webhook secret.
GATEWAY_FUNCTIONS = {
    "AddPaymentMethodFunction", "CreateTopUpFunction", "CreatePaymentFunction",
    "CapturePaymentFunction", "CancelPaymentFunction", "CreateRefundFunction",
    "GatewayWebhookFunction", "ResolveDisputeFunction", "ReconcileFunction",
    "CreatePayoutFunction",
}  # fmt: skip

COVERED_HERE = {
    "RegisterFunction", "LoginFunction", "AuthorizerFunction", "JwksFunction", "GetMeFunction",
    "AddPaymentMethodFunction", "CreateTopUpFunction", "ListBalancesFunction",
    "CreatePaymentFunction", "PublishOutcomesFunction", "LogConsumerFunction",
    "ListTransactionsFunction",
    "RefreshFunction", "ListSessionsFunction", "ChangePasswordFunction",
    "RevokeSessionFunction", "LogoutFunction",
}  # fmt: skip
COVERED_BELOW = {
    "UpdateMeFunction", "ListPaymentMethodsFunction", "GetPaymentMethodFunction",
    "UpdatePaymentMethodFunction", "DeletePaymentMethodFunction", "GetPaymentFunction",
    "ListPaymentsFunction",
    "CapturePaymentFunction", "CancelPaymentFunction", "CreateRefundFunction",
    "ListRefundsFunction", "GatewayWebhookFunction", "GetTransactionFunction",
    "GetReceiptFunction", "VerifyChainFunction", "OpenDisputeFunction", "ListDisputesFunction",
    "AdminListTransactionsFunction", "AdminListDisputesFunction", "ResolveDisputeFunction",
    "ReportSummaryFunction", "ReportCsvFunction", "AuditVerifyFunction", "SendEmailsFunction",
    "ExportMeFunction",  # tests/integration/test_export.py checks it
}  # fmt: skip
# tests/integration/test_webhooks.py checks these.
COVERED_BY_WEBHOOKS = {
    "CreateWebhookEndpointFunction", "ListWebhookEndpointsFunction", "GetWebhookEndpointFunction",
    "UpdateWebhookEndpointFunction", "DeleteWebhookEndpointFunction",
    "RotateWebhookSecretFunction", "ListWebhookDeliveriesFunction",
    "RetryWebhookDeliveryFunction", "RouteWebhookEventsFunction", "SendWebhookDeliveriesFunction",
}  # fmt: skip
# tests/integration/test_admin_jobs.py checks these.
COVERED_BY_JOBS = {"StartJobFunction", "GetJobFunction", "RunJobFunction"}
# tests/integration/test_reconcile.py checks it.
COVERED_BY_RECONCILE = {"ReconcileFunction"}
# test_every_action_of_the_payout_functions_is_granted checks these.
COVERED_BY_PAYOUTS = {"CreatePayoutFunction", "ListPayoutsFunction", "GetPayoutFunction"}
# tests/integration/test_password_reset.py checks these.
COVERED_BY_RECOVERY = {"PasswordResetFunction", "PasswordResetConfirmFunction"}
# tests/integration/test_email_verification.py checks these.
COVERED_BY_VERIFICATION = {"VerifyEmailFunction", "ResendVerificationFunction"}
# tests/integration/test_mfa.py checks these.
COVERED_BY_MFA = {
    "MfaEnrolFunction",
    "MfaConfirmFunction",
    "MfaDisableFunction",
    "LoginMfaFunction",
}


def test_every_function_that_calls_aws_is_covered_by_these_tests(stack):
    no_policies = {
        f for f, r in load_template()["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function" and not r["Properties"].get("Policies")
    }  # fmt: skip
    assert set(stack.functions) - no_policies == (
        COVERED_HERE
        | COVERED_BELOW
        | COVERED_BY_WEBHOOKS
        | COVERED_BY_RECOVERY
        | COVERED_BY_MFA
        | COVERED_BY_VERIFICATION
        | COVERED_BY_RECONCILE
        | COVERED_BY_PAYOUTS
        | COVERED_BY_JOBS
    )


def test_every_action_a_function_performs_is_granted(stack, new_user, recorder):
    # Given two users, and every operation of the skeleton run as its function
    stack.skip_changes()
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
        for message in messages:  # as the mapping would: nothing is left in flight
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

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
    run("PublishOutcomesFunction", lambda: [stack.publisher.step() for _ in range(3)])
    run("LogConsumerFunction", consume)
    run("ListTransactionsFunction", lambda: stack.call("ListTransactionsFunction",
        "ledger/list_transactions.json", authorizer=payer.authorizer))  # fmt: skip
    refreshed = run("RefreshFunction", lambda: stack.call("RefreshFunction", "auth/refresh.json",
        body={"refresh_token": payee.refresh_token}))  # fmt: skip
    assert refreshed.status == 200
    run("ListSessionsFunction", lambda: stack.call("ListSessionsFunction",
        "auth/list_sessions.json", authorizer=payer.authorizer))  # fmt: skip
    changed = run("ChangePasswordFunction", lambda: stack.call("ChangePasswordFunction",
        "auth/change_password.json", authorizer=payee.authorizer,
        body={"current_password": PASSWORD, "new_password": "another passphrase"}))  # fmt: skip
    assert changed.status == 204
    second = stack.call("LoginFunction", "auth/login.json",
        body={"email": payer.email, "password": PASSWORD}).body  # fmt: skip
    revoked = run("RevokeSessionFunction", lambda: stack.call("RevokeSessionFunction",
        "auth/revoke_session.json", authorizer=payer.authorizer,
        path={"id": second["session_id"]}))  # fmt: skip
    assert revoked.status == 204
    run("LogoutFunction", lambda: stack.call("LogoutFunction", "auth/logout.json",
        authorizer=payer.authorizer))  # fmt: skip

    # Then each function was granted every action it performed, on that very resource
    assert set(recorder.used) == COVERED_HERE
    assert recorder.ungranted() == {}
    assert recorder.gateway_readers() == GATEWAY_FUNCTIONS & set(recorder.used)


def test_exactly_the_functions_that_build_the_gateway_may_read_its_secret():
    # Given every grant of every function in template.yaml
    readers = {f for f, granted in _granted().items() if GATEWAY_SECRET_READ in granted}
    # Then the gateway's secret is readable by the functions that build the gateway, and by
    # no other (the tests above check that each of them does read it, and that every read
    # is granted)
    assert readers == GATEWAY_FUNCTIONS
    # ... and nothing else reads it: no grant on it but that one
    for function_id, granted in _granted().items():
        on_secret = {g for g in granted if g[1] == "GatewaySecret"}
        assert on_secret <= {GATEWAY_SECRET_READ}, function_id


RECEIPT_SECRET_READ = ("secretsmanager:GetSecretValue", "ReceiptSigningKeySecret")
JWT_SECRET_READ = ("secretsmanager:GetSecretValue", "JwtSigningKeySecret")


def test_only_the_receipt_signer_and_the_jwks_may_read_the_receipt_keys(stack, new_user, recorder):
    # Given every grant of every function in template.yaml
    grants = _granted()
    readers = {f for f, granted in grants.items() if RECEIPT_SECRET_READ in granted}
    # Then the receipt keys are readable by the functions that sign receipts (for the API and
    # for receipt emails) and the one that publishes the JWKS, and by no other: not the
    # authorizer, nor any token issuer
    assert readers == {"GetReceiptFunction", "SendEmailsFunction", "JwksFunction"}
    for function_id, granted in grants.items():
        on_secret = {g for g in granted if g[1] == "ReceiptSigningKeySecret"}
        assert on_secret <= {RECEIPT_SECRET_READ}, function_id
    # ... and the receipt signers cannot read the access-token keys
    assert JWT_SECRET_READ not in grants["GetReceiptFunction"]
    assert JWT_SECRET_READ not in grants["SendEmailsFunction"]
    # ... and what the authorizer reads, run on a real token, is no receipt key
    user = new_user()
    with recorder.acting_as("AuthorizerFunction"):
        authorize(stack, user.access_token)
    assert JWT_SECRET_READ in recorder.used["AuthorizerFunction"]
    assert RECEIPT_SECRET_READ not in recorder.used["AuthorizerFunction"]


def test_no_function_may_update_or_delete_the_transaction_log():
    # Given every grant of every function in template.yaml
    forbidden = {
        "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete", "dynamodb:DeleteTable",
        "dynamodb:UpdateTable", "dynamodb:RestoreTableFromBackup",
    }  # fmt: skip
    grants = _granted()
    writers = set()
    for function_id, granted in grants.items():
        on_log = {action for action, target in granted if target.startswith("TransactionLogTable")}
        # Then none may change or remove what is in the log
        assert not on_log & forbidden, function_id
        if "dynamodb:PutItem" in on_log:
            writers.add(function_id)
    # ... only the consumer appends to it
    assert writers == {"LogConsumerFunction"}
    # ... and the table survives a mistake: point-in-time recovery, deletion protection, and
    # a stack deletion or replacement keeps it
    template = load_template()
    log = template["Resources"]["TransactionLogTable"]
    assert log["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    # ... on a production stage (a dev stack is torn down whole)
    production, dev = Resources(template), Resources(template)
    production["Stage"], dev["Stage"] = {"Ref": "prod"}, {"Ref": "dev"}
    kept = [log["Properties"]["DeletionProtectionEnabled"], log["DeletionPolicy"],
        log["UpdateReplacePolicy"]]  # fmt: skip
    assert production.resolve(kept) == [True, "RetainExceptOnCreate", "Retain"]
    assert dev.resolve(kept) == [False, "Delete", "Delete"]
    # ... and the table's own policy denies changing or removing items to every principal,
    # whatever their IAM policies allow
    [deny] = log["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Resource"]) == ("Deny", "*", "*")
    assert "Condition" not in deny
    assert set(deny["Action"]) == {
        "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
    }  # fmt: skip


def test_every_action_of_the_profile_and_payment_method_functions_is_granted(
    stack, new_user, recorder
):
    # Given a user with a card, and each profile and payment-method operation run as its
    # function (the happy path, which performs every call the function makes)
    from tests.integration.conftest import call_with_id

    user = new_user()
    method, other = add_card(stack, user), add_card(stack, user)
    replies = {}
    with recorder.acting_as("UpdateMeFunction"):
        replies["UpdateMeFunction"] = stack.call(
            "UpdateMeFunction", "accounts/update_me.json", authorizer=user.authorizer
        )
    with recorder.acting_as("ListPaymentMethodsFunction"):
        replies["ListPaymentMethodsFunction"] = stack.call(
            "ListPaymentMethodsFunction",
            "accounts/list_payment_methods.json",
            authorizer=user.authorizer,
        )
    # (the second card is made the default, then deleted: the first becomes the default)
    for function_id, sample, card in (
        ("GetPaymentMethodFunction", "accounts/get_payment_method.json", method),
        ("UpdatePaymentMethodFunction", "accounts/update_payment_method.json", other),
        ("DeletePaymentMethodFunction", "accounts/delete_payment_method.json", other),
    ):
        with recorder.acting_as(function_id):
            replies[function_id] = call_with_id(
                stack, function_id, sample, card, authorizer=user.authorizer
            )
    assert {f: r.status for f, r in replies.items()} == {
        "UpdateMeFunction": 200,
        "ListPaymentMethodsFunction": 200,
        "GetPaymentMethodFunction": 200,
        "UpdatePaymentMethodFunction": 200,
        "DeletePaymentMethodFunction": 204,
    }
    # ... and the pointer's writes name nothing but the pointer's attributes
    [(put, pk)] = recorder.account_puts["UpdatePaymentMethodFunction"]
    assert (put, pk) == ({"pk", "sk", "method_id"}, f"USER#{user.id}")
    [(updated, pk, _)] = recorder.account_updates["DeletePaymentMethodFunction"]
    assert (updated, pk) == ({"pk", "sk", "method_id"}, f"USER#{user.id}")

    # Then each of them was granted every action it performed, on that very resource
    assert set(recorder.used) == set(replies)
    assert recorder.ungranted() == {}
    assert recorder.gateway_readers() == GATEWAY_FUNCTIONS & set(recorder.used)


def test_every_action_of_the_payment_lifecycle_functions_is_granted(stack, new_user, recorder):
    # Given a card authorisation, a balance payment, and each lifecycle operation run as its
    # function
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer)
    top_up(stack, payer, method, 2_000)
    card = {"type": "card", "payment_method_id": method}
    authorised = pay(stack, payer, payee.id, 500, source=card, capture=False).body
    to_cancel = pay(stack, payer, payee.id, 300, source=card, capture=False).body
    by_balance = pay(stack, payer, payee.id, 400).body
    by_card = pay(stack, payer, payee.id, 200, source=card).body

    def call(function_id, sample, user, payment_id, **variations):
        with recorder.acting_as(function_id):
            reply = stack.call(
                function_id, sample, authorizer=user.authorizer, path={"id": payment_id},
                **variations,
            )  # fmt: skip
            return reply.status

    def fresh() -> dict[str, str]:
        return {"Idempotency-Key": str(uuid.uuid4())}

    key = fresh()
    statuses = {
        "GetPaymentFunction": call("GetPaymentFunction", "payments/get_payment.json",
            payer, by_balance["id"]),
        "CapturePaymentFunction": call("CapturePaymentFunction", "payments/capture_payment.json",
            payee, authorised["id"], body={}, headers=key),
        "CancelPaymentFunction": call("CancelPaymentFunction", "payments/cancel_payment.json",
            payer, to_cancel["id"], body={}, headers=fresh()),
        "CreateRefundFunction": call("CreateRefundFunction", "payments/create_refund.json",
            payee, by_card["id"], body={"amount": 50}, headers=fresh()),
        "ListRefundsFunction": call("ListRefundsFunction", "payments/list_refunds.json",
            payee, by_card["id"]),
    }  # fmt: skip
    with recorder.acting_as("ListPaymentsFunction"):
        statuses["ListPaymentsFunction"] = stack.call(
            "ListPaymentsFunction", "payments/list_payments.json", authorizer=payer.authorizer,
            query={"role": "payee"},
        ).status  # fmt: skip
    deliver = _charge_success_webhook(stack, payer, payee)
    with recorder.acting_as("GatewayWebhookFunction"):
        statuses["GatewayWebhookFunction"] = deliver()
    assert statuses == {
        "GetPaymentFunction": 200, "CapturePaymentFunction": 200, "CancelPaymentFunction": 200,
        "CreateRefundFunction": 201, "ListRefundsFunction": 200, "ListPaymentsFunction": 200,
        "GatewayWebhookFunction": 200,
    }  # fmt: skip
    # Then each was granted every action it performed, on that very resource
    assert recorder.ungranted() == {}
    assert recorder.gateway_readers() == GATEWAY_FUNCTIONS & set(recorder.used)


def test_every_action_of_the_payout_functions_is_granted(stack, new_user, recorder):
    # Given a funded user, and each payout operation run as its function: a payout paid, one
    # refused for too little money, one declined (credited back), one left pending and the
    # gateway's webhook that settles it, a read and a list
    from tests.integration.test_payouts import deliver, payout, payout_webhook

    user = new_user()
    card = add_card(stack, user)
    top_up(stack, user, card, 5_000)
    declined, slow = (
        add_card(stack, user, "4000000000000002"),
        add_card(stack, user, "4000000000003220"),
    )
    with recorder.acting_as("CreatePayoutFunction"):
        paid = payout(stack, user, 1_000, card)
        low = payout(stack, user, 9_000, card)
        failed = payout(stack, user, 1_000, declined)
        pending = payout(stack, user, 1_000, slow)
    assert [r.body["status"] for r in (paid, low, failed, pending)] == [
        "paid",
        "failed",
        "failed",
        "pending",
    ]
    body, signature = payout_webhook(stack, pending.body["id"])
    with recorder.acting_as("GatewayWebhookFunction"):
        assert deliver(stack, body, signature).status == 200
    with recorder.acting_as("GetPayoutFunction"):
        got = call_with_id(stack, "GetPayoutFunction", "payouts/get_payout.json",
                           paid.body["id"], authorizer=user.authorizer)  # fmt: skip
    with recorder.acting_as("ListPayoutsFunction"):
        listed = stack.call("ListPayoutsFunction", "payouts/list_payouts.json",
                            authorizer=user.authorizer)  # fmt: skip
    assert (got.status, listed.status, len(listed.body["data"])) == (200, 200, 4)
    # Then each was granted every action it performed, on that very resource
    assert set(recorder.used) >= COVERED_BY_PAYOUTS
    assert recorder.ungranted() == {}
    assert recorder.gateway_readers() == GATEWAY_FUNCTIONS & set(recorder.used)


def _charging_token(stack, token: str) -> str:
    from cashew.gateways.sandbox import SandboxGateway

    return SandboxGateway(secret=stack.gateway_webhook_secret()).attach_token(token).token


def _charge_success_webhook(stack, payer, payee) -> Callable[[], int]:
    """A card payment the sandbox leaves processing; and the delivery to GatewayWebhookFunction
    of the gateway's signed webhook that it succeeded (which credits the payee): its status."""
    processing_card = add_card(stack, payer, "4000000000003220")
    processing = pay(stack, payer, payee.id, 100,
        source={"type": "card", "payment_method_id": processing_card}).body  # fmt: skip
    charge_id = payments_store.get(processing["id"]).charge_id
    event = json.dumps({"id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": "charge.succeeded",
        "data": {"charge_id": charge_id, "payment_id": processing["id"], "status": "succeeded",
                 "failure_code": None, "amount_captured": 100}})  # fmt: skip
    signature = sign_webhook(event.encode(), stack.gateway_webhook_secret(), int(time.time()))
    return lambda: stack.call("GatewayWebhookFunction", "payments/gateway_webhook.json",
        raw_body=event, headers={"Gateway-Signature": signature}).status  # fmt: skip


def test_every_action_of_the_log_dispute_and_admin_functions_is_granted(
    stack, new_user, new_admin, recorder
):
    # Given a settled balance payment and a card payment, and each operation of the log,
    # the disputes and the admin reports run as its function
    stack.skip_changes()
    payer, payee, admin = new_user(), new_user(), new_admin()
    card = add_card(stack, payer)
    top_up(stack, payer, card, 2_000)
    by_balance = pay(stack, payer, payee.id, 400).body
    by_card = pay(
        stack, payer, payee.id, 300, source={"type": "card", "payment_method_id": card}
    ).body
    stack.settle()
    log = stack.call("ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=payer.authorizer, query={"type": "payment"}).body["data"]  # fmt: skip
    entry_of = {e["payment_id"]: e["id"] for e in log}

    def call(function_id: str, sample: str, user, **variations: Any) -> int:
        with recorder.acting_as(function_id):
            return stack.call(function_id, sample, authorizer=user.authorizer, **variations).status

    statuses = {
        "GetTransactionFunction": call("GetTransactionFunction", "ledger/get_transaction.json",
            payer, path={"id": entry_of[by_balance["id"]]}),
        "GetReceiptFunction": call("GetReceiptFunction", "ledger/get_receipt.json",
            payer, path={"id": entry_of[by_balance["id"]]}),
        "VerifyChainFunction": call("VerifyChainFunction", "ledger/verify_chain.json", payer),
        "OpenDisputeFunction": call("OpenDisputeFunction", "disputes/open_dispute.json", payer,
            path={"id": entry_of[by_balance["id"]]}, body={"reason": "other"}),
        "ListDisputesFunction": call("ListDisputesFunction", "disputes/list_disputes.json", payee,
            query={"role": "payee"}),
        "AdminListTransactionsFunction": call("AdminListTransactionsFunction",
            "ledger/admin_list_transactions.json", admin, query={}),
        "AdminListDisputesFunction": call("AdminListDisputesFunction",
            "disputes/admin_list_disputes.json", admin, query={}),
        "ReportSummaryFunction": call("ReportSummaryFunction", "ledger/report_summary.json",
            admin, query={}),
        "ReportCsvFunction": call("ReportCsvFunction", "ledger/report_csv.json", admin, query={}),
        "AuditVerifyFunction": call("AuditVerifyFunction", "ledger/audit_verify.json", admin),
    }  # fmt: skip
    disputes = stack.call("ListDisputesFunction", "disputes/list_disputes.json",
        authorizer=payer.authorizer, query={}).body["data"]  # fmt: skip
    card_dispute = stack.call("OpenDisputeFunction", "disputes/open_dispute.json",
        authorizer=payer.authorizer, path={"id": entry_of[by_card["id"]]},
        body={"reason": "fraudulent"}).body  # fmt: skip
    statuses["ResolveDisputeFunction"] = call("ResolveDisputeFunction",
        "disputes/resolve_dispute.json", admin, path={"id": disputes[0]["id"]},
        body={"outcome": "won"})  # fmt: skip
    resolved_card = call("ResolveDisputeFunction", "disputes/resolve_dispute.json", admin,
        path={"id": card_dispute["id"]}, body={"outcome": "won"})  # fmt: skip
    with recorder.acting_as("PublishOutcomesFunction"):
        stack.publishers["DisputesTable"].step()
    assert statuses == {
        "GetTransactionFunction": 200, "GetReceiptFunction": 200, "VerifyChainFunction": 200,
        "OpenDisputeFunction": 201,
        "ListDisputesFunction": 200, "AdminListTransactionsFunction": 200,
        "AdminListDisputesFunction": 200, "ReportSummaryFunction": 200,
        "ReportCsvFunction": 200, "AuditVerifyFunction": 200, "ResolveDisputeFunction": 200,
    }  # fmt: skip
    assert resolved_card == 200
    # Then each was granted every action it performed, on that very resource
    assert recorder.ungranted() == {}
    assert recorder.gateway_readers() == GATEWAY_FUNCTIONS & set(recorder.used)


def test_the_audit_reads_balances_only_and_resolving_deletes_locks_only():
    resources = load_template()["Resources"]
    [accounts] = [
        s for p in resources["AuditVerifyFunction"]["Properties"]["Policies"]
        for s in p["Statement"] if s["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    ]  # fmt: skip
    allowed = accounts["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert sorted(allowed) == ["available", "currency", "pk", "sk"]
    assert accounts["Condition"]["StringEquals"]["dynamodb:Select"] == "SPECIFIC_ATTRIBUTES"
    [delete] = [
        s for p in resources["ResolveDisputeFunction"]["Properties"]["Policies"]
        for s in p["Statement"]
        if "DeleteItem" in str(s["Action"])
        and s["Resource"] == {"Fn::GetAtt": ["DisputesTable", "Arn"]}
    ]  # fmt: skip
    assert delete["Action"] == "dynamodb:DeleteItem"
    assert delete["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["OPEN#*"]}}


def test_the_audit_asks_for_no_attribute_its_policy_withholds(stack, new_admin, recorder):
    seen: list[dict[str, Any]] = []
    admin = new_admin()

    def spy(params: dict[str, Any], model: Any, **_: Any) -> None:
        if (
            model.name in ("Scan", "Query")
            and params["TableName"] == stack.env["CASHEW_ACCOUNTS_TABLE"]
        ):
            seen.append(params)

    with recorder.acting_as("AuditVerifyFunction"):
        aws.session().events.register("before-parameter-build", spy)
        assert stack.call("AuditVerifyFunction", "ledger/audit_verify.json",
            authorizer=admin.authorizer).status == 200  # fmt: skip
    assert seen
    for params in seen:
        assert params["Select"] == "SPECIFIC_ATTRIBUTES"
        named = {n.strip() for n in params["ProjectionExpression"].split(",")}
        assert named <= {"pk", "sk", "currency", "available"}


def test_the_audits_re_check_reads_only_what_its_policy_grants(
    stack, new_user, new_admin, recorder
):
    # Given a user with a paid and partly refunded payment, and a balance edited behind the
    # log's back (so the audit reads that user's chain, balances and payments again)
    stack.skip_changes()
    payer, payee, admin = new_user(), new_user(), new_admin()
    top_up(stack, payer, add_card(stack, payer), 500)
    paid = pay(stack, payer, payee.id, 200).body
    assert call_with_id(stack, "CreateRefundFunction", "payments/create_refund.json",
        paid["id"], authorizer=payee.authorizer, body={"amount": 50},
        headers={"Idempotency-Key": str(uuid.uuid4())}).status == 201  # fmt: skip
    stack.settle()
    aws.dynamodb().update_item(
        TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
        Key=dynamo.serialize({"pk": f"USER#{payee.id}", "sk": "BALANCE#USD"}),
        UpdateExpression="SET available = available + :one",
        ExpressionAttributeValues=dynamo.serialize({":one": 1}),
    )
    seen: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            seen.append(params)

    # When the admin audits, as the audit function
    with recorder.acting_as("AuditVerifyFunction"):
        aws.session().events.register("before-parameter-build", spy)
        report = stack.call("AuditVerifyFunction", "ledger/audit_verify.json",
            authorizer=admin.authorizer).body  # fmt: skip
    # Then the edit is found on every re-read, and each re-read was granted
    assert [d["kind"] for d in report["discrepancies"] if d["user_id"] == payee.id] == ["balance"]
    assert recorder.ungranted() == {}
    assert {p.get("IndexName") for p in seen} >= {"PayerIndex", "PayeeIndex", "RefundIndex"}
    for params in seen:
        if params["TableName"] == stack.env["CASHEW_ACCOUNTS_TABLE"]:
            assert params["Select"] == "SPECIFIC_ATTRIBUTES"
            named = {n.strip() for n in params["ProjectionExpression"].split(",")}
            assert named <= {"pk", "sk", "currency", "available"}


def _allowed_attributes(function_id: str) -> set[str]:
    """What `function_id`'s one UpdateItem grant on the accounts table lets it write, checking
    that the grant is conditioned as a money function's must be."""
    grants = _accounts_update_grants(function_id)
    assert len(grants) == 1, f"{function_id}: one statement grants UpdateItem on AccountsTable"
    condition = grants[0].get("Condition", {})
    attributes = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
    assert attributes, f"{function_id} may update any attribute of the accounts table"
    # ... of USER# items only (never EMAIL#<email> / CREDENTIALS), returning no whole item
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["USER#*"]
    returns = condition["StringEqualsIfExists"]["dynamodb:ReturnValues"]
    assert set(returns) <= {"NONE", "UPDATED_OLD", "UPDATED_NEW"}
    return set(attributes)


def test_money_functions_may_update_balances_and_attempts_only():
    # Given each money function's grant to update the accounts table
    credentials_and_profile = {
        "password_hash", "password_version", "role", "user_id", "email", "name", "phone",
        "settings", "created_at", "updated_at",
    }  # fmt: skip
    for function_id in MONEY_FUNCTIONS:
        allowed = _allowed_attributes(function_id)
        # Then it names the key and nothing of a credential or a profile
        assert allowed >= _KEY_ATTRIBUTES, function_id
        assert not allowed & credentials_and_profile, function_id
    # ... and no other statement of theirs grants UpdateItem on the accounts table unconditioned
    # (checked by _allowed_attributes: exactly one grant each)


def test_money_functions_write_exactly_the_account_attributes_their_policies_allow(
    stack, new_user, new_admin, recorder
):
    # Given every operation that writes a balance or the payer's attempts, each run as its
    # function: a card top-up, a balance and a card payment, a capture, a refund of a balance
    # payment (which credits the payer) and of a card payment, a webhook that completes a
    # charge, and a dispute won (which refunds)
    stack.skip_changes()
    payer, payee, admin = new_user(), new_user(), new_admin()
    card = add_card(stack, payer)
    source = {"type": "card", "payment_method_id": card}

    def run(function_id: str, operation: Callable[[], Any]) -> Any:
        with recorder.acting_as(function_id):
            return operation()

    def fresh() -> dict[str, str]:
        return {"Idempotency-Key": str(uuid.uuid4())}

    assert run("CreateTopUpFunction", lambda: top_up(stack, payer, card, 5_000)).status == 201
    by_balance = run("CreatePaymentFunction", lambda: pay(stack, payer, payee.id, 700)).body
    by_card = run("CreatePaymentFunction",
        lambda: pay(stack, payer, payee.id, 300, source=source)).body  # fmt: skip
    assert (by_balance["status"], by_card["status"]) == ("succeeded", "succeeded")
    # (a card the issuer declines as expired: each charge function marks it expired)
    for function_id in ("CreateTopUpFunction", "CreatePaymentFunction"):
        expired = add_card(stack, payer, "4000000000000069")
        gone = {"type": "card", "payment_method_id": expired}
        declined = run(function_id, lambda m=expired, g=gone, f=function_id: (
            top_up(stack, payer, m, 100) if f == "CreateTopUpFunction"
            else pay(stack, payer, payee.id, 100, source=g))).body  # fmt: skip
        assert declined["failure_code"] == "expired_card", declined
    # (payouts: one paid, which debits, and one declined, which credits the money back)
    from tests.integration.test_payouts import payout

    refused_card = add_card(stack, payer, "4000000000000002")
    paid_out = [run("CreatePayoutFunction", lambda m=m: payout(stack, payer, 200, m)).body
                for m in (card, refused_card)]  # fmt: skip
    assert [p["status"] for p in paid_out] == ["paid", "failed"]
    authorised = pay(stack, payer, payee.id, 500, source=source, capture=False).body
    deliver = _charge_success_webhook(stack, payer, payee)
    by_token = sandbox_token(stack)
    assert add_card_by_token(stack, payer, by_token).status == 201
    statuses = [
        run("CapturePaymentFunction", lambda: stack.call("CapturePaymentFunction",
            "payments/capture_payment.json", authorizer=payee.authorizer,
            path={"id": authorised["id"]}, body={}, headers=fresh()).status),
        *(
            run("CreateRefundFunction", lambda p=payment: stack.call("CreateRefundFunction",
                "payments/create_refund.json", authorizer=payee.authorizer,
                path={"id": p["id"]}, body={"amount": 50}, headers=fresh()).status)
            for payment in (by_balance, by_card)
        ),
        run("GatewayWebhookFunction", deliver),
        # (the gateway's card update of a card added by token: its last4, expiry, status)
        run("GatewayWebhookFunction", card_update_webhook(
            stack, _charging_token(stack, by_token), "1881", 5, 2033)[1]).status,
    ]  # fmt: skip
    stack.settle()
    log = stack.call("ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=payer.authorizer, query={"type": "payment"}).body["data"]  # fmt: skip
    [entry] = [e["id"] for e in log if e["payment_id"] == by_balance["id"]]
    dispute = stack.call("OpenDisputeFunction", "disputes/open_dispute.json",
        authorizer=payer.authorizer, path={"id": entry}, body={"reason": "other"}).body  # fmt: skip
    statuses.append(run("ResolveDisputeFunction", lambda: stack.call("ResolveDisputeFunction",
        "disputes/resolve_dispute.json", authorizer=admin.authorizer, path={"id": dispute["id"]},
        body={"outcome": "won"}).status))  # fmt: skip
    assert statuses == [200, 201, 201, 200, 200, 200]

    for function_id in MONEY_FUNCTIONS:
        allowed = _allowed_attributes(function_id)
        updates = recorder.account_updates[function_id]
        assert updates, f"{function_id} wrote no balance"
        written = set().union(*(attributes for attributes, _, _ in updates))
        # Then every update it sent names only attributes its policy allows, of USER# items,
        # asking for no whole item back
        assert written <= allowed, (function_id, sorted(written - allowed))
        for _, pk, returns in updates:
            assert pk.startswith("USER#"), (function_id, pk)
            assert returns in ("NONE", "UPDATED_OLD", "UPDATED_NEW"), (function_id, returns)
        # ... and its policy allows no attribute it never writes
        assert allowed - _KEY_ATTRIBUTES <= written, (function_id, sorted(allowed - written))


def test_adding_a_card_may_put_payment_methods_only_never_credentials_or_profiles(
    stack, new_user, recorder
):
    # Given the only function besides registration that puts accounts-table items, whose
    # grant is conditioned to USER# items with a payment method's attributes (so it cannot
    # overwrite EMAIL#.../CREDENTIALS, the password hash and role, or a PROFILE's role)
    [grant] = [
        statement
        for policy in load_template()["Resources"]["AddPaymentMethodFunction"]["Properties"][
            "Policies"
        ]
        for statement in policy["Statement"]
        if "dynamodb:PutItem" in _actions(statement)
    ]
    condition = grant["Condition"]
    assert condition["ForAllValues:StringLike"] == {
        "dynamodb:LeadingKeys": ["USER#*", "GATEWAY_TOKEN#*"]  # (the marker of its token)
    }
    allowed = set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert not allowed & {"role", "password_hash", "email", "user_id", "available"}
    # When a card (with a billing name, so every attribute is written) is added as that function
    user = new_user()
    with recorder.acting_as("AddPaymentMethodFunction"):
        reply = stack.call(
            "AddPaymentMethodFunction", "accounts/add_payment_method.json",
            authorizer=user.authorizer,
        )  # fmt: skip
    assert reply.status == 201, reply.body
    # Then what it put (the method, and the default pointer: it is the user's first card) is
    # exactly what the grant allows, on the user's own items
    puts = recorder.account_puts["AddPaymentMethodFunction"]
    # (the first card's transaction is tried twice: with a default there, then without)
    markers = {(frozenset(a), pk) for a, pk in puts if not pk.startswith("USER#")}
    [(marker, marker_pk)] = markers
    assert {pk for _, pk in puts} == {f"USER#{user.id}", marker_pk}
    assert marker_pk.startswith("GATEWAY_TOKEN#")  # and nothing of a user's: only its digest
    assert marker == {"pk", "sk", "owner", "method_id", "created_at"}
    assert set().union(*(attributes for attributes, _ in puts)) == allowed


PAYMENT_METHOD_FUNCTIONS = (
    "AddPaymentMethodFunction", "ListPaymentMethodsFunction", "GetPaymentMethodFunction",
    "UpdatePaymentMethodFunction", "DeletePaymentMethodFunction",
)  # fmt: skip


@pytest.mark.parametrize("function_id", PAYMENT_METHOD_FUNCTIONS)
def test_payment_method_functions_reach_user_items_only_never_credentials(function_id):
    # Given a payment-method function: everything it touches is under USER#<id> (the methods
    # and the default pointer), so each of its grants on the accounts table, reads and checks
    # and deletes included, is conditioned to USER# partition keys: none of them can read,
    # probe with a condition, or delete EMAIL#.../CREDENTIALS (the password hash and role)
    statements = [
        statement
        for policy in load_template()["Resources"][function_id]["Properties"]["Policies"]
        for statement in policy["Statement"]
        if statement["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    ]
    assert statements
    for statement in statements:
        leading = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
        expected = ["USER#*"]
        if function_id == "AddPaymentMethodFunction" and _actions(statement) == [
            "dynamodb:PutItem"
        ]:
            expected = ["USER#*", "GATEWAY_TOKEN#*"]  # it puts the marker of its gateway token
        assert leading.get("dynamodb:LeadingKeys") == expected, (function_id, statement)


def test_every_action_of_the_email_consumer_is_granted_and_sends_from_the_identity_only(
    stack, new_user, recorder, monkeypatch
):
    # Given a card payment and a refund of it, published and in the log, their events on
    # EmailQueue
    from local.consumers import sqs_event

    monkeypatch.setenv("CASHEW_NOTIFICATIONS_TABLE", stack.resources["NotificationsTable"]["Ref"])
    monkeypatch.setenv("CASHEW_EMAIL_QUEUE_URL", stack.resources["EmailQueue"]["Ref"])
    from cashew.config import get_settings

    get_settings.cache_clear()
    stack.skip_changes()
    sqs, url = stack.clients("sqs"), stack.resources["EmailQueue"]["Ref"]
    while earlier := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in earlier:  # earlier tests' events
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    payment = pay(stack, payer, payee.id, 500, source={"type": "card", "payment_method_id": card})
    refund = call_with_id(stack, "CreateRefundFunction", "payments/create_refund.json",
        payment.body["id"], authorizer=payee.authorizer, body={"amount": 100},
        headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert refund.status == 201, refund.body
    stack.settle()
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"],
        VisibilityTimeout=60,
    )["Messages"]  # fmt: skip
    # When the consumer sends their emails (and a message whose entry is missing waits)
    with recorder.acting_as("SendEmailsFunction"):
        result = stack.invoke("SendEmailsFunction", sqs_event(messages, "arn:aws:sqs:x:1:q"))
    assert result == {"batchItemFailures": []}
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    monkeypatch.delenv("CASHEW_EMAIL_QUEUE_URL")
    get_settings.cache_clear()
    # Then it was granted every action it performed, SendEmail on the identity included
    used = recorder.used["SendEmailsFunction"]
    assert ("ses:SendEmail", "EmailIdentity") in used
    assert ("dynamodb:PutItem", "NotificationsTable") in used
    assert recorder.ungranted() == {}
    # ... and its SendEmail grant is on the stack's identity only
    assert {g for g in _granted()["SendEmailsFunction"] if g[0].startswith("ses:")} == {
        ("ses:SendEmail", "EmailIdentity")
    }


# The functions that set a new password: since revocation at once they write the
# credentials' hash and version and the profile's copy of the version (the authorizer reads
# it), and nothing else of the accounts table. The reset confirm is public.
PASSWORD_WRITERS = ("PasswordResetConfirmFunction", "ChangePasswordFunction")
_PASSWORD_ATTRIBUTES = {"pk", "sk", "password_hash", "password_version", "user_id"}


@pytest.mark.parametrize("function_id", PASSWORD_WRITERS)
def test_password_writers_may_update_the_password_attributes_only(function_id):
    # Given the function's grants to update the accounts table
    grants = _accounts_update_grants(function_id)
    assert len(grants) == 1, f"{function_id}: one statement grants UpdateItem on AccountsTable"
    condition = grants[0].get("Condition", {})
    attributes = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
    # Then it names the password's attributes alone: never a balance, a role, a profile's
    # email_verified or mfa_enabled (a public function with a free UpdateItem could set any)
    assert attributes, f"{function_id} may update any attribute of the accounts table"
    assert set(attributes) == _PASSWORD_ATTRIBUTES, function_id
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["EMAIL#*", "USER#*"]
    assert condition["StringEqualsIfExists"]["dynamodb:ReturnValues"] == ["NONE"]


def test_password_writers_write_exactly_the_attributes_their_policies_allow(
    stack, new_user, recorder
):
    from tests.integration.test_password_reset import NEW_PASSWORD, _confirm, _token

    # Given a password change and a reset, each run as its function
    changing, resetting = new_user(), new_user()
    with recorder.acting_as("ChangePasswordFunction"):
        changed = stack.call(
            "ChangePasswordFunction", "auth/change_password.json",
            authorizer=changing.authorizer,
            body={"current_password": PASSWORD, "new_password": "another passphrase"},
        )  # fmt: skip
    assert changed.status == 204, changed.body
    token = _token(stack, resetting.email)
    with recorder.acting_as("PasswordResetConfirmFunction"):
        assert _confirm(stack, token, NEW_PASSWORD).status == 204
    # Then each wrote the credentials and the profile, within its grant
    assert recorder.ungranted() == {}
    for function_id, user in zip(PASSWORD_WRITERS, (resetting, changing), strict=True):
        updates = recorder.account_updates[function_id]
        assert {pk for _, pk, _ in updates} == {f"EMAIL#{user.email}", f"USER#{user.id}"}
        for attributes, _, returns in updates:
            assert attributes <= _PASSWORD_ATTRIBUTES, (function_id, attributes)
            assert returns == "NONE"


def test_the_login_may_update_the_credentials_hash_only(stack, new_user, recorder):
    # Given the public login's grant to update the accounts table (a rehash on login)
    [grant] = _accounts_update_grants("LoginFunction")
    condition = grant.get("Condition", {})
    attributes = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
    # Then it may write a credential's hash alone: no balance, role, version or profile
    assert attributes, "LoginFunction may update any attribute of the accounts table"
    assert set(attributes) == {"pk", "sk", "password_hash"}
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["EMAIL#*"]
    assert condition["StringEqualsIfExists"]["dynamodb:ReturnValues"] == ["NONE"]
    # When a login rehashes a password stored with weaker parameters, as that function
    from argon2 import PasswordHasher

    user = new_user()
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    table, key = (
        stack.env["CASHEW_ACCOUNTS_TABLE"],
        {"pk": f"EMAIL#{user.email}", "sk": "CREDENTIALS"},
    )
    dynamo.update_item(table, key, "SET password_hash = :weak", {":weak": weak})
    with recorder.acting_as("LoginFunction"):
        reply = stack.call(
            "LoginFunction", "auth/login.json", body={"email": user.email, "password": PASSWORD}
        )
    assert reply.status == 200, reply.body
    # Then its one update was the credentials' hash, within the grant
    assert dynamo.get_item(table, key)["password_hash"] != weak
    assert recorder.ungranted() == {}
    assert recorder.account_updates["LoginFunction"] == [
        ({"pk", "sk", "password_hash"}, f"EMAIL#{user.email}", "NONE")
    ]


@pytest.mark.parametrize("function_id", ["LoginFunction", "LoginMfaFunction"])
def test_the_public_logins_check_credentials_only(function_id):
    # The logins' ConditionCheckItem on the accounts table is the password unchanged since
    # it was checked (EMAIL#<email> / CREDENTIALS): a free one lets a public function probe
    # any item's attributes (a balance, a role, a payment method) with a condition
    checks = [
        statement
        for policy in load_template()["Resources"][function_id]["Properties"]["Policies"]
        for statement in policy["Statement"]
        if "dynamodb:ConditionCheckItem" in _actions(statement)
        and statement["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    ]
    assert checks
    for statement in checks:
        condition = statement.get("Condition", {})
        assert condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys") == [
            "EMAIL#*"
        ], (function_id, statement)


def _read_grants(function_id: str, action: str) -> list[set[str] | None]:
    """The attributes each of `function_id`'s statements lets `action` read of the accounts
    table's USER# items: None for a statement that names none (any attribute)."""
    policies = load_template()["Resources"][function_id]["Properties"]["Policies"]
    grants: list[set[str] | None] = []
    for statement in (s for p in policies for s in p["Statement"]):
        actions = statement["Action"]
        if statement["Resource"] != {"Fn::GetAtt": ["AccountsTable", "Arn"]} or action not in (
            [actions] if isinstance(actions, str) else actions
        ):
            continue
        condition = statement.get("Condition")
        if condition is None:
            grants.append(None)
        elif condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys") == ["USER#*"]:
            named = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
            grants.append(None if named is None else set(named))
    return grants


def test_a_hot_payees_balance_reads_ask_only_for_what_their_grants_allow(
    stack, new_user, recorder, monkeypatch
):
    # Given a hot merchant whose money is in its credit shards (CASHEW_HOT_PAYEES)
    from cashew.config import get_settings
    from tests.integration.test_payouts import payout

    merchant, payer, supplier = new_user("Merchant"), new_user(), new_user("Supplier")
    monkeypatch.setenv("CASHEW_HOT_PAYEES", merchant.id)
    get_settings.cache_clear()
    top_up(stack, payer, add_card(stack, payer), 300)
    paid = [pay(stack, payer, merchant.id, 100).body for _ in range(3)]
    card = add_card(stack, merchant)
    reads: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    function: list[str] = []

    def spy(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" and params["TableName"] == stack.env["CASHEW_ACCOUNTS_TABLE"]:
            reads[function[0]].append(("dynamodb:Query", params))
        if (
            model.name == "GetItem"
            and params["TableName"] == stack.env["CASHEW_ACCOUNTS_TABLE"]
            and params["Key"]["sk"]["S"].startswith("BALANCE#")
        ):
            reads[function[0]].append(("dynamodb:GetItem", params))

    def run(function_id: str, operation: Callable[[], Any]) -> Any:
        function[:] = [function_id]
        with recorder.acting_as(function_id):
            aws.session().events.register("before-parameter-build", spy)
            return operation()

    # When, as their functions, it pays and pays out more than its shards hold (each read of
    # its balance ending in the reads that confirm the shortfall), then pays and pays out
    # less (its shards gathered into its main item first), and refunds more than is left
    low = [
        run("CreatePaymentFunction", lambda: pay(stack, merchant, supplier.id, 400)),
        run("CreatePayoutFunction", lambda: payout(stack, merchant, 400, card)),
    ]
    assert [r.body["failure_code"] for r in low] == ["insufficient_funds"] * 2
    paid_out = [
        run("CreatePaymentFunction", lambda: pay(stack, merchant, supplier.id, 150)),
        run("CreatePayoutFunction", lambda: payout(stack, merchant, 100, card)),
    ]
    assert [r.status for r in paid_out] == [201, 201], [r.body for r in paid_out]
    refund = run("CreateRefundFunction", lambda: stack.call("CreateRefundFunction",
        "payments/create_refund.json", authorizer=merchant.authorizer,
        path={"id": paid[0]["id"]}, body={"amount": 100},
        headers={"Idempotency-Key": str(uuid.uuid4())}))  # fmt: skip
    assert refund.status == 409, refund.body
    # Then each shortfall was confirmed (the shards, then the main item), granted, and asked
    # only for attributes a statement of its function's allows
    assert recorder.ungranted() == {}
    for function_id in ("CreatePaymentFunction", "CreatePayoutFunction", "CreateRefundFunction"):
        written = set().union(*(a for a, _, _ in recorder.account_updates[function_id]))
        assert written <= _allowed_attributes(function_id), function_id  # gathering too
        actions = {action for action, _ in reads[function_id]}
        assert actions == {"dynamodb:Query", "dynamodb:GetItem"}, (function_id, actions)
        for action, params in reads[function_id]:
            named = {n.strip() for n in params["ProjectionExpression"].split(",")}
            named = {params.get("ExpressionAttributeNames", {}).get(n, n) for n in named}
            assert any(g is None or named <= g for g in _read_grants(function_id, action)), (
                function_id, action, named,
            )  # fmt: skip
