"""Issue 12, "done when" 3 (PROPERTIES 39): after a run that adds cards by number and by
gateway token, tops up, pays by card and by balance, refunds and rotates a webhook secret,
every stored email, every webhook delivery (as received and as stored) and every event of the
bus holds no card number, CVC, token, password or secret."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, User, top_up
from tests.support.receiver import Receiver
from tests.support.secrets_seen import all_items, standing_alone

pytestmark = pytest.mark.e2e


def _client(stack: Stack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bus_events(stack: Stack) -> Iterator[Callable[[], list[str]]]:
    """Every event put on the payments bus from now on, through a rule and queue of the test's
    own (as a service subscribing to the bus would see them)."""
    events, sqs = _client(stack, "events"), _client(stack, "sqs")
    [bus] = [b["Name"] for b in events.list_event_buses()["EventBuses"] if b["Name"] != "default"]
    name = f"scan-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["cashew.payments"]})
    )
    events.put_targets(
        Rule=name, EventBusName=bus, Targets=[{"Id": "scan", "Arn": arn["QueueArn"]}]
    )
    seen: list[str] = []

    def read() -> list[str]:
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            seen.extend(message["Body"] for message in batch)
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return seen

    yield read
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["scan"])
    events.delete_rule(Name=name, EventBusName=bus)
    sqs.delete_queue(QueueUrl=url)


def _until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _mails(stack: Stack, address: str) -> list[dict[str, Any]]:
    reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["data"])


def _outcome_mails(stack: Stack, address: str) -> list[dict[str, Any]]:
    """The address's emails but the new-sign-in ones (each login sends one), which are
    scanned too but do not say the outcomes' emails have come."""
    sign_in = "New sign-in to your Cashew account"
    return [m for m in _mails(stack, address) if m["subject"] != sign_in]


def _post(stack: Stack, path: str, token: str, body: dict[str, Any], status: int) -> Any:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    reply = stack.request("POST", path, token, headers=headers, json=body)
    assert reply.status_code == status, reply.text
    return reply.json()


def test_no_email_delivery_or_event_holds_card_data_tokens_passwords_or_secrets(
    stack: Stack, new_user: Callable[..., User], bus_events: Callable[[], list[str]]
) -> None:
    # Given an admin's endpoint for every event, on a loopback receiver, its secret rotated
    receiver = Receiver().start()
    try:
        admin = stack.request(
            "POST", "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ).json()["access_token"]
        created = _post(
            stack, "/v1/admin/webhook-endpoints", admin, {"url": receiver.url, "events": ["*"]}, 201
        )
        rotated = _post(
            stack, f"/v1/admin/webhook-endpoints/{created['id']}/rotate-secret", admin, {}, 200
        )
        # ... a payer with a distinctive password, a card added by number and one by token
        password = "pw-" + secrets.token_urlsafe(18)
        payer, payee = new_user("Scan Payer", password=password), new_user("Scan Payee")
        number, cvc = "5555555555554444", "0731"  # a leading zero: no count is written so
        card = {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": cvc}
        by_number = _post(stack, "/v1/users/me/payment-methods", payer.token, {"card": card}, 201)[
            "id"
        ]
        tokenised = stack.request(
            "POST", "/_sandbox/v1/tokens",
            json={"card": {"number": "4242424242424242", "exp_month": 11, "exp_year": 2031,
                           "cvc": "0528"}},
        )  # fmt: skip
        assert tokenised.status_code == 200, tokenised.text
        gateway_token = tokenised.json()["id"]
        by_token = _post(
            stack,
            "/v1/users/me/payment-methods",
            payer.token,
            {"gateway_token": gateway_token},
            201,
        )["id"]
        # When they top up by each card, pay by card and by balance, and one is refunded
        assert top_up(stack, payer, by_number, 20_000).status_code == 201
        assert top_up(stack, payer, by_token, 10_000).status_code == 201
        card_source = {"type": "card", "payment_method_id": by_token}
        payment = {"amount": 1_500, "currency": "USD", "payee_id": payee.id}
        _post(stack, "/v1/payments", payer.token, {**payment, "source": card_source}, 201)
        paid = _post(
            stack, "/v1/payments", payer.token, {**payment, "source": {"type": "balance"}}, 201
        )
        _post(stack, f"/v1/payments/{paid['id']}/refunds", payee.token, {"amount": 500}, 201)
        # ... and every email (each user's verification email first), delivery and event of
        # it has arrived
        _until(
            lambda: (
                len(_outcome_mails(stack, payer.email)) >= 6
                and len(_outcome_mails(stack, payee.email)) >= 4
            )
        )
        _until(lambda: len({r.headers["Cashew-Event-Id"] for r in receiver.requests}) >= 5)
        _until(lambda: len(bus_events()) >= 5)
        # Then none of them holds any of these, nor does any stored item
        jwt_secret = payer.token.rsplit(".", 1)[1]
        stack_secrets = _stack_secrets(stack)
        assert len(stack_secrets) >= 4, stack_secrets.keys()  # the signing seeds, the gateway's
        forbidden = {
            "card number": number,
            "tokenised card number": "4242424242424242",
            "cvc": cvc,
            "tokenised cvc": "0528",
            "gateway token": gateway_token,
            "password": password,
            "access token": jwt_secret,
            "refresh token": payer.refresh_token.split(".", 1)[1],
            "webhook secret": created["secret"],
            "rotated webhook secret": rotated["secret"],
            **stack_secrets,
        }
        scanned = {
            "emails": json.dumps(_mails(stack, payer.email) + _mails(stack, payee.email)),
            "deliveries received": "\n".join(
                json.dumps(r.headers) + r.body.decode() for r in receiver.requests
            ),
            "bus events": "\n".join(bus_events()),
            "stored items": all_items(stack.aws_url),
        }
        for where, text in scanned.items():
            assert len(text) > 500, f"{where}: too little to prove anything"
            for name, value in forbidden.items():
                alone = standing_alone(value)
                assert not alone.search(text), f"{name} found in {where}"
        # ... and a card shows as brand and last4 at most
        assert "4444" in scanned["emails"] and "555555" not in scanned["emails"]
    finally:
        receiver.stop()


def _stack_secrets(stack: Stack) -> dict[str, str]:
    """Every string value of every secret of the stack (signing seeds, the gateway's keys)."""
    manager = _client(stack, "secretsmanager")
    found: dict[str, str] = {}
    for listed in manager.list_secrets()["SecretList"]:
        value = manager.get_secret_value(SecretId=listed["ARN"])["SecretString"]
        document = json.loads(value) if value.startswith("{") else {"value": value}
        for key, item in _strings(document):
            if len(item) >= 16:  # a secret, not a kid or a flag
                found[f"{listed['Name']}:{key}"] = item
    return found


def _strings(document: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(document, str):
        yield path, document
