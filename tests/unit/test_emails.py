"""The email consumer's logic without AWS: recipients per outcome, amounts per currency, the
templates (every email renders, values escaped), and no card data beyond brand and last4."""

from __future__ import annotations

from email import message_from_bytes, policy
from string import Template

import pytest

from cashew.notifications import formatting, recipients, render, service
from cashew.notifications.recipients import Facts, Notice

PAYER, PAYEE = "usr_" + "A" * 26, "usr_" + "B" * 26


def _payment(**changes: object) -> dict[str, object]:
    payment: dict[str, object] = {
        "id": "pay_" + "P" * 26, "type": "payment", "status": "succeeded", "amount": 2500,
        "currency": "USD", "payer_id": PAYER, "payee_id": PAYEE,
        "source": {"type": "card", "payment_method_id": "pm_" + "M" * 26},
        "amount_captured": 2500, "amount_refunded": 0, "failure_code": None,
        "failure_message": None, "risk": {"score": 0, "level": "normal"}, "description": None,
        "created_at": "2026-12-01T22:43:45.000Z", "updated_at": "2026-12-01T22:43:46.000Z",
        "outcome_id": "pay_" + "P" * 26 + ":succeeded",
    }  # fmt: skip
    return {**payment, **changes}


def _who(facts: Facts) -> list[tuple[str, str, str]]:
    return [(n.user_id, n.role, n.template) for n in recipients.notices(facts)]


@pytest.mark.parametrize(
    ("event", "changes", "expected"),
    [
        ("payment.succeeded", {}, [(PAYER, "payer", "payment_succeeded.payer"),
                                   (PAYEE, "payee", "payment_succeeded.payee")]),
        ("payment.failed", {"status": "failed", "failure_code": "card_declined"},
         [(PAYER, "payer", "payment_failed.payer")]),
        ("payment.captured", {}, [(PAYER, "payer", "payment_captured.payer")]),
        ("payment.canceled", {"status": "canceled"}, [(PAYER, "payer", "payment_canceled.payer")]),
        ("payment.succeeded", {"type": "top_up", "payee_id": PAYER},
         [(PAYER, "owner", "top_up_succeeded")]),
        ("payment.failed", {"type": "top_up", "payee_id": PAYER, "status": "failed"},
         [(PAYER, "owner", "top_up_failed")]),
    ],
)  # fmt: skip
def test_payment_outcomes_email_the_recipients_of_the_table(event, changes, expected):
    facts = recipients.of_event(event, _payment(**changes), None)
    assert _who(facts) == expected


def test_refunds_and_disputes_email_payer_and_payee_of_their_payment():
    refund = {"id": "re_" + "R" * 26, "payment_id": "pay_" + "P" * 26, "amount": 1000,
              "currency": "USD", "status": "succeeded", "reason": None,
              "created_at": "2026-12-02T10:00:00.000Z", "outcome_id": "re_x:succeeded"}  # fmt: skip
    facts = recipients.of_event("refund.succeeded", refund, _payment())
    assert _who(facts) == [(PAYER, "payer", "refund_succeeded.payer"),
                           (PAYEE, "payee", "refund_succeeded.payee")]  # fmt: skip
    assert (facts.amount, facts.object_id, facts.type) == (1000, refund["id"], "refund")
    dispute = {"id": "dsp_" + "D" * 26, "transaction_id": "txn_x", "payment_id": "pay_" + "P" * 26,
               "payer_id": PAYER, "payee_id": PAYEE, "status": "won", "reason": "fraudulent",
               "details": None, "amount": 2500, "currency": "USD",
               "created_at": "2026-12-02T10:00:00.000Z", "resolved_at": "2026-12-03T10:00:00.000Z",
               "outcome_id": "dsp_x:won"}  # fmt: skip
    facts = recipients.of_event("dispute.won", dispute, _payment())
    assert [r for _, r, _ in _who(facts)] == ["payer", "payee"]
    assert facts.occurred_at == "2026-12-03T10:00:00.000Z"
    with pytest.raises(LookupError):
        recipients.of_event("refund.succeeded", refund, None)


def test_every_email_the_table_names_has_its_words():
    # Given every event for a payment and a top-up
    keys = set()
    for event in recipients.EVENTS:
        for changes in ({}, {"type": "top_up", "payee_id": PAYER}):
            detail = _payment(**changes)
            if not event.startswith("payment."):
                detail = {**detail, "payment_id": detail["id"], "created_at": detail["created_at"]}
            facts = recipients.of_event(event, detail, _payment(**changes))
            keys |= {n.template for n in recipients.notices(facts)}
    # Then each has a subject and a headline whose placeholders are known
    words = render.wording()
    assert keys <= set(words)
    for key in keys:
        for text in words[key].values():
            Template(text).substitute(amount="a", counterparty="c", payment_id="p")


@pytest.mark.parametrize(
    ("minor", "currency", "written"),
    [(2500, "USD", "$25.00"), (1000, "EUR", "€10.00"), (100, "GBP", "£1.00"), (500, "JPY", "¥500"),
     (123456789, "USD", "$1,234,567.89"), (5, "USD", "$0.05"), (1234567, "JPY", "¥1,234,567")],
)  # fmt: skip
def test_amounts_are_written_per_currency(minor, currency, written):
    assert formatting.amount(minor, currency) == written


def test_a_card_is_its_brand_and_last4_and_times_read_as_dates():
    assert formatting.card("visa", "4242") == "Visa •••• 4242"
    assert formatting.moment("2026-12-01T22:43:45.000Z") == "1 December 2026, 22:43 UTC"
    assert formatting.one_line("Bob\r\nBcc: x@y") == "Bob Bcc: x@y"


def _email(**changes: object) -> render.Email:
    fields: dict[str, object] = {
        "template": "payment_succeeded.payer", "name": "Al <script>alert(1)</script>",
        "amount": "$25.00", "counterparty": "Bob & <i>Co</i>", "payment_id": "pay_1",
        "rows": (("Amount", "$25.00"), ("Paid to", "Bob & <i>Co</i>"), ("Card", "Visa •••• 4242")),
    }  # fmt: skip
    return render.Email(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_html_body_escapes_every_value_and_the_text_shows_it():
    rendered = render.render(_email(receipt=render.Receipt("txn_1", "eyJ.<x>.sig")))
    assert rendered.subject == "You paid $25.00 to Bob & <i>Co</i>"
    assert "<script>" not in rendered.html and "<i>Co</i>" not in rendered.html
    assert (
        "Al &lt;script&gt;" in rendered.html and "Bob &amp; &lt;i&gt;Co&lt;/i&gt;" in rendered.html
    )
    assert "eyJ.&lt;x&gt;.sig" in rendered.html and "txn_1" in rendered.html
    assert "You paid $25.00 to Bob & <i>Co</i>." in rendered.text
    assert "Card: Visa •••• 4242" in rendered.text and "eyJ.<x>.sig" in rendered.text


def test_an_email_without_its_receipt_says_so():
    rendered = render.render(_email(receipt_pending=True))
    assert "not ready" in rendered.text and "not ready" in rendered.html


def test_the_mime_message_holds_text_and_html_alternatives():
    raw = render.mime("Cashew <no-reply@cashew.local>", "al@example.com", render.render(_email()))
    message = message_from_bytes(raw, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == "al@example.com" and "Bob & <i>Co</i>" in message["Subject"]
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Visa •••• 4242" in text.get_content()


def test_the_email_holds_no_card_number_token_or_fingerprint(monkeypatch):
    # Given a card payment whose stored method has a token and a fingerprint
    class Method:
        brand, last4 = "visa", "4242"
        fingerprint, token_ciphertext = "fp_secret_fingerprint", b"tok_sealed"

    class Profile:
        def __init__(self, name: str) -> None:
            self.name, self.email = name, f"{name}@example.com"

    monkeypatch.setattr(service.accounts, "get_payment_method", lambda user, method: Method())
    facts = recipients.of_event("payment.succeeded", _payment(), None)
    notice = Notice(PAYER, "payer", "payment_succeeded.payer")
    profiles = {PAYER: Profile("al"), PAYEE: Profile("bo")}
    email = service._email(notice, facts, profiles, None, False)  # type: ignore[arg-type]
    rendered = render.render(email)
    # Then the card is its brand and last4, and nothing more of it
    for body in (rendered.text, rendered.html, rendered.subject):
        assert "fp_secret" not in body and "tok_" not in body and "4242424242424242" not in body
    assert ("Card", "Visa •••• 4242") in email.rows
    # ... and the payee is never shown the payer's card
    to_payee = service._email(Notice(PAYEE, "payee", "payment_succeeded.payee"), facts,
                              profiles, None, False)  # type: ignore[arg-type]  # fmt: skip
    assert not [row for row in to_payee.rows if row[0] == "Card"]


def test_a_refused_send_comes_back_later_each_time():
    assert [service.backoff(n) for n in range(1, 9)] == [30, 60, 120, 240, 480, 900, 900, 900]
