"""GET /v1/users/me/export against moto: everything stored about the caller, as their own
endpoints show it, paged over sections; no secret of any stored item; read-only grants, each
read keyed by the caller's own items."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from cashew import aws, export
from cashew.identity import Caller
from local.events import api_event
from tests.integration.conftest import add_card, pay, signed_in, top_up
from tests.integration.test_iam_policies import _granted, _Recorder

# Attribute names of stored items that hold a secret, or something derived from one.
SECRETISH = re.compile(r"hash|token|secret|cipher|seal|key|fingerprint|password|otp|recovery", re.I)
# ... except the public ones the contract shows: the ledger's chain hashes, a card's public
# fingerprint (the endpoints' own), the table keys and the idempotency key's echo.
PUBLIC = {"hash", "prev_hash", "fingerprint", "pk", "sk"}


def _export_pages(stack, user, **query: str) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        extra = {"query": {"cursor": cursor, **query}} if cursor else {}
        reply = stack.call(
            "ExportMeFunction", "accounts/export_me.json", authorizer=user.authorizer, **extra
        )
        assert reply.status == 200, reply.body
        pages.append(reply.body)
        if not reply.body["has_more"]:
            assert reply.body["next_cursor"] is None
            return pages
        cursor = reply.body["next_cursor"]


def _merged(pages: list[dict[str, Any]]) -> dict[str, list[Any]]:
    sections = ("payment_methods", "sessions", "payments", "refunds", "disputes", "transactions")
    return {s: [item for page in pages for item in page[s]] for s in sections}


def _listed(stack, user, function_id: str, sample: str, **query: str) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        q = {"limit": "100", **query, **({"cursor": cursor} if cursor else {})}
        reply = stack.call(function_id, sample, authorizer=user.authorizer, query=q)
        assert reply.status == 200, reply.body
        found += reply.body["data"]
        if not reply.body["has_more"]:
            return found
        cursor = reply.body["next_cursor"]


@pytest.fixture
def rich(stack, new_user):
    """A user with two cards, two sessions, a top-up, a payment out (refunded in part, then
    disputed), a payment in, all settled into the log."""
    stack.skip_changes()
    user, other = new_user(), new_user()
    signed_in(stack, user.id, user.email)  # a second session
    card = add_card(stack, user)
    add_card(stack, user, "5555555555554444")
    assert top_up(stack, user, card, 5_000).status == 201
    top_up(stack, other, add_card(stack, other), 5_000)
    out = pay(stack, user, other.id, 1_200, description="rent").body
    assert pay(stack, other, user.id, 300).status == 201
    refund = stack.call(
        "CreateRefundFunction", "payments/create_refund.json", authorizer=other.authorizer,
        path={"id": out["id"]}, body={"amount": 200},
        headers={"Idempotency-Key": "refund-1"},
    )  # fmt: skip
    assert refund.status == 201, refund.body
    stack.settle()
    [entry] = [
        e
        for e in _listed(stack, user, "ListTransactionsFunction", "ledger/list_transactions.json")
        if e["payment_id"] == out["id"] and e["type"] == "payment"
    ]
    dispute = stack.call(
        "OpenDisputeFunction", "disputes/open_dispute.json", authorizer=user.authorizer,
        path={"id": entry["id"]}, body={"reason": "product_not_received"},
    )  # fmt: skip
    assert dispute.status == 201, dispute.body
    stack.settle()
    return user, other


def test_the_export_holds_what_each_endpoint_shows_the_caller(stack, rich):
    # Given a rich user
    user, _ = rich
    # When they export everything, page after page
    pages = _export_pages(stack, user)
    got = _merged(pages)
    # Then every page carries their profile, as GET /v1/users/me shows it
    me = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer).body
    assert all(page["user"] == me for page in pages)
    # ... and each section is what the section's own endpoint lists, item for item
    assert got["payment_methods"] == _listed(
        stack, user, "ListPaymentMethodsFunction", "accounts/list_payment_methods.json"
    )
    assert len(got["payment_methods"]) == 2
    assert got["sessions"] == _listed(
        stack, user, "ListSessionsFunction", "auth/list_sessions.json"
    )
    assert len(got["sessions"]) == 2
    as_payer = _listed(stack, user, "ListPaymentsFunction", "payments/list_payments.json")
    as_payee = _listed(
        stack, user, "ListPaymentsFunction", "payments/list_payments.json", role="payee"
    )
    assert got["payments"] == as_payer + [p for p in as_payee if p["payer_id"] != user.id]
    assert {p["type"] for p in got["payments"]} == {"top_up", "payment"}
    assert len(got["payments"]) == 3  # the top-up (once), the payment out, the payment in
    [refunded] = [p for p in got["payments"] if p["amount_refunded"]]
    refunds = stack.call(
        "ListRefundsFunction", "payments/list_refunds.json", authorizer=user.authorizer,
        path={"id": refunded["id"]},
    ).body["data"]  # fmt: skip
    assert got["refunds"] == refunds and len(refunds) == 1
    assert got["disputes"] == _listed(
        stack, user, "ListDisputesFunction", "disputes/list_disputes.json"
    )
    assert len(got["disputes"]) == 1
    assert got["transactions"] == _listed(
        stack, user, "ListTransactionsFunction", "ledger/list_transactions.json"
    )
    assert len(got["transactions"]) >= 4


def _stored_items_of(stack, user_id: str) -> list[dict[str, Any]]:
    """Every item of every table that names the user anywhere (their own items)."""
    from cashew import dynamo

    found = []
    for logical, attributes in stack.resources.items():
        if not logical.endswith("Table"):
            continue
        table = next(v for v in attributes.values() if isinstance(v, str) and "arn:" not in v)
        client, request = aws.dynamodb(), {"TableName": table}
        while True:
            response = client.scan(**request)
            for raw in response.get("Items", []):
                if user_id in json.dumps(raw, default=str):
                    found.append(dynamo.deserialize(raw))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found


def _secret_values(items: list[dict[str, Any]]) -> dict[str, set[str]]:
    secrets: dict[str, set[str]] = {}
    for item in items:
        for name, value in item.items():
            if SECRETISH.search(name) and name not in PUBLIC:
                texts = [str(value)]
                if isinstance(value, bytes):  # sealed: as bytes, base64 and hex would show
                    texts = [value.hex(), base64.b64encode(value).decode()]
                for text in texts:
                    if len(text) >= 8:
                        secrets.setdefault(name, set()).add(text)
    return secrets


def test_the_export_of_a_rich_user_holds_no_stored_secret(stack, rich):
    # Given a rich user, and every secret-ish attribute of every item stored about them
    user, _ = rich
    secrets = _secret_values(_stored_items_of(stack, user.id))
    expected = {"password_hash", "refresh_hash", "token_ciphertext", "token_data_key"}
    assert expected <= set(secrets), sorted(secrets)
    # When they export everything
    text = json.dumps(_export_pages(stack, user))
    # Then no secret value appears in it, nor any secret-ish field name but the public ones
    for name, values in secrets.items():
        for value in values:
            assert value not in text, name
    names = set(re.findall(r'"(\w+)":', text))
    assert {n for n in names if SECRETISH.search(n)} <= {"hash", "prev_hash", "fingerprint"}
    assert user.access_token not in text and user.refresh_token not in text


def test_many_entries_page_over_sections_and_every_item_comes_once(stack, new_user):
    # Given a user with 7 cards, 3 sessions and 4 top-ups
    user = new_user()
    for _ in range(2):
        signed_in(stack, user.id, user.email)
    cards = [add_card(stack, user) for _ in range(7)]
    for _ in range(4):
        assert top_up(stack, user, cards[0], 100).status == 201
    caller = Caller(user_id=user.id, session_id=user.session_id, role="user")
    # When they export 3 items a page
    pages, cursor = [], None
    while True:
        page = export.export(caller, cursor, page_items=3)
        pages.append(page)
        assert sum(len(getattr(page, s)) for s in ("payment_methods", "sessions", "payments")) <= 3
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then the pages hold every item exactly once, in section order
    methods = [m.id for p in pages for m in p.payment_methods]
    assert sorted(methods) == sorted(cards) and len(set(methods)) == 7
    assert len({s.id for p in pages for s in p.sessions}) == 3
    assert len([x for p in pages for x in p.payments]) == 4
    assert len(pages) >= 5


def test_a_cursor_of_someone_else_or_forged_is_a_422(stack, rich, new_user):
    # Given a cursor of the rich user's export
    user, _ = rich
    caller = Caller(user_id=user.id, session_id=user.session_id, role="user")
    cursor = export.export(caller, None, page_items=1).next_cursor
    assert cursor
    # When another user, or anyone with a forged cursor, asks for that page
    other = new_user()
    for query in ({"cursor": cursor}, {"cursor": "bm9wZQ"}, {"cursor": cursor[:-4] + "AAAA"}):
        reply = stack.call(
            "ExportMeFunction", "accounts/export_me.json", authorizer=other.authorizer,
            query=query,
        )  # fmt: skip
        # Then it is a precise 422, never a 500 and never their data
        assert (reply.status, reply.body["code"]) == (422, "validation_error"), reply.body


def test_the_export_is_read_only_granted_and_reads_the_callers_items_only(stack, rich):
    # Given a rich user, and every AWS call of the export recorded
    user, _ = rich
    recorder = _Recorder(stack.resources)
    keys: list[tuple[str, str]] = []

    def keyed(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetItem":
            keys.append((model.name, params["Key"]["pk"]["S"]))
        elif model.name == "Query":
            keys.append((model.name, str(params["ExpressionAttributeValues"])))

    try:
        with recorder.acting_as("ExportMeFunction"):
            aws.session().events.register("before-parameter-build", keyed)
            pages = _export_pages(stack, user)
    finally:
        aws.reset()
    assert pages
    # Then every action was granted by its policy, and only reads
    assert recorder.used["ExportMeFunction"] <= _granted()["ExportMeFunction"]
    actions = {a for a, _ in _granted()["ExportMeFunction"]}
    assert actions == {"dynamodb:GetItem", "dynamodb:Query"}
    # ... one page, in 11 reads: the profile, the methods and the default, the sessions, the
    # payments as payer and as payee, the refunds of the one refunded, the payouts, the
    # disputes as payer and as payee, the log
    assert len(pages) == 1 and len(keys) == 11, keys
    # ... and each read was keyed by the caller's own id, or by one of their payments
    mine = {p["id"] for p in _merged(pages)["payments"]}
    for name, key in keys:
        assert user.id in key or any(pid in key for pid in mine), (name, key)


def test_more_than_a_page_of_payments_at_the_default_size_stays_far_below_6_mb(stack, new_user):
    # Given a user paid 112 times by 4 payers, each payment with the longest description
    # (500 characters that JSON escapes to 2 bytes each)
    user = new_user()
    description = '"\\' * 250
    paid = set()
    for _ in range(4):
        payer = new_user()
        assert top_up(stack, payer, add_card(stack, payer), 100_000).status == 201
        for _ in range(28):
            reply = pay(stack, payer, user.id, 1, description=description)
            assert reply.status == 201, reply.body
            paid.add(reply.body["id"])
    # When they export everything at the default page size
    replies, cursor = [], None
    while True:
        extra = {"query": {"cursor": cursor}} if cursor else {}
        raw = stack.invoke(
            "ExportMeFunction",
            api_event("accounts/export_me.json", authorizer=user.authorizer, **extra),
        )
        assert raw["statusCode"] == 200
        replies.append(raw["body"])
        body = json.loads(raw["body"])
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    # Then their session and the 112 payments come in two pages, each once, the first a full
    # page of 100 items
    pages = [json.loads(r) for r in replies]
    assert [(len(p["sessions"]), len(p["payments"])) for p in pages] == [(1, 99), (0, 13)]
    assert {p["id"] for page in pages for p in page["payments"]} == paid
    # ... and a full page of the largest items is a few hundred KB, far below Lambda's 6 MB
    biggest = max(len(r.encode()) for r in replies)
    print(f"export: a page of 100 payments with 500-character descriptions is {biggest} bytes")
    assert biggest < 1_000_000


def test_a_payment_with_more_refunds_than_a_page_holds_goes_on_over_pages(stack, new_user):
    # Given a user who paid two payees, the first of whom refunded them 8 times (1 each)
    user, payee, third = new_user(), new_user(), new_user()
    assert top_up(stack, user, add_card(stack, user), 1_000).status == 201
    first = pay(stack, user, payee.id, 100).body
    second = pay(stack, user, third.id, 50).body
    refunds = set()
    for n in range(8):
        refund = stack.call(
            "CreateRefundFunction", "payments/create_refund.json", authorizer=payee.authorizer,
            path={"id": first["id"]}, body={"amount": 1}, headers={"Idempotency-Key": f"r{n}"},
        )  # fmt: skip
        assert refund.status == 201, refund.body
        refunds.add(refund.body["id"])
    caller = Caller(user_id=user.id, session_id=user.session_id, role="user")
    # When they export 3 items a page
    pages, cursor = [], None
    while True:
        page = export.export(caller, cursor, page_items=3)
        pages.append(page)
        counted = ("payment_methods", "sessions", "payments", "refunds", "transactions")
        assert sum(len(getattr(page, s)) for s in counted) <= 3
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then every payment and every refund comes exactly once
    got_refunds = [r.id for p in pages for r in p.refunds]
    assert sorted(got_refunds) == sorted(refunds)
    assert sum(1 for page in pages if page.refunds) >= 3  # 8 refunds, at most 3 a page
    got_payments = [p.id for page in pages for p in page.payments]
    assert len(got_payments) == len(set(got_payments)) == 3  # the top-up, and the two
    assert {first["id"], second["id"]} <= set(got_payments)
    # ... and a cursor edited to go on with someone else's payment's refunds is a 422
    theirs = pay(stack, payee, third.id, 1).body
    state = {"user": user.id, "section": "transactions", "inner": "",
             "refunds_of": theirs["id"], "refunds_inner": ""}  # fmt: skip
    forged = export.cursor_codec.encode(state)
    reply = stack.call(
        "ExportMeFunction", "accounts/export_me.json", authorizer=user.authorizer,
        query={"cursor": forged},
    )  # fmt: skip
    assert (reply.status, reply.body["code"]) == (422, "validation_error"), reply.body
    # ... while the same cursor naming their own payment goes on with its refunds
    state["refunds_of"] = first["id"]
    own = stack.call(
        "ExportMeFunction", "accounts/export_me.json", authorizer=user.authorizer,
        query={"cursor": export.cursor_codec.encode(state)},
    )  # fmt: skip
    assert own.status == 200 and len(own.body["refunds"]) == 8
