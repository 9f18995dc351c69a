"""Receipts against moto (API.md "Receipts", property 49): GetReceiptFunction with its sample
event, the JWKS that verifies it, and the authorizer that refuses it."""

from __future__ import annotations

import json
import secrets
from typing import Any

import jwt
import pytest

from bench.harness import counting
from cashew import aws
from cashew.auth import keys
from cashew.ledger import chain
from tests.integration.conftest import add_card, authorize, pay, top_up


def _receipt(stack, user, entry_id: str):
    return stack.call(
        "GetReceiptFunction", "ledger/get_receipt.json",
        authorizer=user.authorizer, path={"id": entry_id},
    )  # fmt: skip


def _history(stack, user) -> list[dict[str, Any]]:
    reply = stack.call("ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=user.authorizer, query={"limit": "100"})  # fmt: skip
    assert reply.status == 200
    data: list[dict[str, Any]] = reply.body["data"]
    return data


def _verify(receipt: str, jwks: dict[str, Any]) -> dict[str, Any]:
    header = jwt.get_unverified_header(receipt)
    assert header["typ"] == "cashew-receipt+jwt"
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims: dict[str, Any] = jwt.decode(receipt, key, algorithms=["EdDSA"])
    return claims


@pytest.fixture
def paid(stack, new_user):
    """A payer who topped up and paid a payee, the log written."""
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    top_up(stack, payer, card, 5_000)
    pay(stack, payer, payee.id, 1_250)
    stack.settle()
    return payer, payee


def test_a_receipt_of_the_callers_entry_verifies_with_the_jwks(stack, paid):
    # Given a payer whose log holds a top-up and a payment
    payer, _ = paid
    entries = _history(stack, payer)
    assert {e["type"] for e in entries} == {"top_up", "payment"}
    payment = next(e for e in entries if e["type"] == "payment")
    # When they ask for the payment's receipt
    reply = _receipt(stack, payer, payment["id"])
    # Then it is the entry as the list shows it, and a JWS the JWKS verifies
    assert reply.status == 200, reply.body
    assert reply.body["entry"] == payment
    jwks = stack.call("JwksFunction", "auth/jwks.json").body
    claims = _verify(reply.body["receipt"], jwks)
    assert (claims["entry_id"], claims["user_id"], claims["amount"], claims["seq"]) == (
        payment["id"], payer.id, 1_250, payment["seq"],
    )  # fmt: skip
    head = max(entries, key=lambda e: e["seq"])
    assert claims["chain_head"] == {"seq": head["seq"], "hash": head["hash"]}
    # ... whose hash is the entry's, recomputed as the chain computes it
    assert chain.entry_hash(reply.body["entry"]) == claims["hash"] == payment["hash"]
    # ... and the chain verifies
    verdict = stack.call("VerifyChainFunction", "ledger/verify_chain.json",
        authorizer=payer.authorizer).body  # fmt: skip
    assert verdict["valid"] is True


def test_another_users_entry_and_an_unknown_id_are_404(stack, paid, new_user):
    payer, payee = paid
    payer_entry = _history(stack, payer)[0]["id"]
    stranger = new_user()
    for user, entry_id in (
        (payee, payer_entry),
        (stranger, payer_entry),
        (payer, "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1"),
        (payer, "not-an-id"),
    ):
        reply = _receipt(stack, user, entry_id)
        assert reply.status == 404, (entry_id, reply.body)
        assert reply.body["code"] == "not_found"
        # as GET /v1/transactions/{id} answers for a user
        same = stack.call("GetTransactionFunction", "ledger/get_transaction.json",
            authorizer=user.authorizer, path={"id": entry_id})  # fmt: skip
        assert same.status == 404


def test_an_id_longer_than_64_is_422(stack, paid):
    payer, _ = paid
    reply = _receipt(stack, payer, "txn_" + "A" * 61)
    assert reply.status == 422 and reply.body["code"] == "validation_error"


def test_the_authorizer_refuses_a_real_receipt_as_an_access_token(stack, paid):
    # Given a real receipt, whose kid is a receipt key and no access-token key
    payer, _ = paid
    receipt = _receipt(stack, payer, _history(stack, payer)[0]["id"]).body["receipt"]
    kid = jwt.get_unverified_header(receipt)["kid"]
    receipt_secret = stack.clients("secretsmanager").get_secret_value(
        SecretId=stack.env["CASHEW_RECEIPT_SECRET_ID"])["SecretString"]  # fmt: skip
    assert (
        kid
        == keys.key_from_seed(json.loads(receipt_secret)["current"], keys.RECEIPT_KID_PREFIX).kid
    )
    assert kid not in keys.key_set().all
    assert authorize(stack, payer.access_token)["principalId"] == payer.id  # the control
    # When it is presented as the Bearer token, Then API Gateway is told "Unauthorized"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(stack, receipt)


def test_the_two_secrets_are_distinct_and_the_jwks_publishes_both(stack, new_user):
    user = new_user()
    client = stack.clients("secretsmanager")
    token_seeds = json.loads(client.get_secret_value(
        SecretId=stack.env["CASHEW_JWT_SECRET_ID"])["SecretString"])  # fmt: skip
    receipt_seeds = json.loads(client.get_secret_value(
        SecretId=stack.env["CASHEW_RECEIPT_SECRET_ID"])["SecretString"])  # fmt: skip
    # Given two secrets generated as the template says, each with a current seed of its own
    assert stack.env["CASHEW_JWT_SECRET_ID"] != stack.env["CASHEW_RECEIPT_SECRET_ID"]
    assert len(receipt_seeds["current"]) >= 32 and receipt_seeds["previous"] == ""
    assert receipt_seeds["current"] != token_seeds["current"]
    # Then the JWKS has the access-token key and the receipt key
    kids = {k["kid"] for k in stack.call("JwksFunction", "auth/jwks.json").body["keys"]}
    assert kids == {
        jwt.get_unverified_header(user.access_token)["kid"],
        keys.key_from_seed(receipt_seeds["current"], keys.RECEIPT_KID_PREFIX).kid,
    }


def test_receipt_rotation_keeps_old_receipts_verifiable_with_the_jwks(stack, paid):
    # Given a receipt signed before the receipt key rotates
    payer, _ = paid
    entry_id = _history(stack, payer)[0]["id"]
    old = _receipt(stack, payer, entry_id).body["receipt"]
    secret_id = stack.env["CASHEW_RECEIPT_SECRET_ID"]
    client = stack.clients("secretsmanager")
    original = client.get_secret_value(SecretId=secret_id)["SecretString"]
    try:
        # When the documented rotation runs: current becomes previous, a new current
        rotated = {
            "current": secrets.token_urlsafe(48),
            "previous": json.loads(original)["current"],
        }
        client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(rotated))
        aws.reset()
        # Then new receipts use the new key, and the JWKS verifies both
        new = _receipt(stack, payer, entry_id).body["receipt"]
        assert (
            jwt.get_unverified_header(new)["kid"]
            == keys.key_from_seed(rotated["current"], keys.RECEIPT_KID_PREFIX).kid
        )
        jwks = stack.call("JwksFunction", "auth/jwks.json").body
        assert _verify(old, jwks)["entry_id"] == _verify(new, jwks)["entry_id"] == entry_id
        # ... and the access tokens did not notice
        assert authorize(stack, payer.access_token)["principalId"] == payer.id
    finally:
        client.put_secret_value(SecretId=secret_id, SecretString=original)
        aws.reset()


def test_a_warm_receipt_costs_two_queries_and_a_cold_one_a_secret_read_too(stack, paid):
    # Given a payer's entry, and every client of the layer made from a hooked session
    payer, _ = paid
    entry_id = _history(stack, payer)[0]["id"]
    with counting() as counter:
        # When the first receipt is signed (cold: the receipt secret is read), then another
        with counter.window() as cold:
            assert _receipt(stack, payer, entry_id).status == 200
        with counter.window() as warm:
            assert _receipt(stack, payer, entry_id).status == 200
    # Then a receipt costs the entry by id and the head of the chain; the keys are cached
    assert sorted(cold) == ["DynamoDB.Query", "DynamoDB.Query", "SecretsManager.GetSecretValue"]
    assert sorted(warm) == ["DynamoDB.Query", "DynamoDB.Query"]


def test_an_entry_edited_in_the_table_gets_no_receipt(stack, paid):
    # Given the payer's payment entry, its amount then edited in the table (its hash kept)
    payer, _ = paid
    payment = next(e for e in _history(stack, payer) if e["type"] == "payment")
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_LOG_TABLE"],
        Key={"pk": {"S": f"USER#{payer.id}"}, "sk": {"S": f"SEQ#{payment['seq']:012d}"}},
        UpdateExpression="SET amount = :more",
        ExpressionAttributeValues={":more": {"N": "99999"}},
        ConditionExpression="attribute_exists(pk)",
    )
    # When they ask for its receipt
    reply = _receipt(stack, payer, payment["id"])
    # Then nothing is signed: no receipt vouches for what the log no longer holds
    assert (reply.status, reply.body["code"]) == (500, "internal_error")
    assert "receipt" not in reply.body
