"""The email consumer against moto (API.md "Notifications", properties 38 and 39): the bus's
events reach EmailQueue through the template's rule, SendEmailsFunction sends each email once
through the embedded SES, and the receipt it carries verifies with the JWKS."""

from __future__ import annotations

import json
import re
import threading
from email import message_from_bytes, policy
from typing import Any

import jwt
import pytest
from moto.ses.models import ses_backends

from cashew.ledger import chain
from cashew.notifications import render, ses
from local.cfn import ACCOUNT_ID, REGION
from local.consumers import sqs_event
from tests.integration.conftest import add_card, pay, take_messages, top_up

FUNCTION = "SendEmailsFunction"


def _sent() -> list[Any]:
    return list(ses_backends[ACCOUNT_ID][REGION].sent_messages)


def _to(address: str, since: int = 0) -> list[Any]:
    return [m for m in _sent()[since:] if address in m.destinations]


def _body(raw: str, subtype: str) -> str:
    message = message_from_bytes(raw.encode(), policy=policy.default)
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def _drain(stack) -> list[dict[str, Any]]:
    """Every message now on EmailQueue, taken (the test redelivers by hand)."""
    return take_messages(stack, "EmailQueue")


def _deliver(stack, messages: list[dict[str, Any]], receives: int = 1) -> Any:
    event = sqs_event(messages, stack.resources["EmailQueue"]["Arn"])
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(receives)
        record["receiptHandle"] = "gone"  # deleted: a visibility change is not asked for
    return stack.invocation(FUNCTION, event)


@pytest.fixture(autouse=True)
def _function_env(stack, monkeypatch):
    """SendEmailsFunction's own variables (the table; no queue URL: the messages are deleted
    as they are taken, so no visibility change is asked for)."""
    from cashew.config import get_settings

    monkeypatch.setenv("CASHEW_NOTIFICATIONS_TABLE", stack.resources["NotificationsTable"]["Ref"])
    monkeypatch.delenv("CASHEW_EMAIL_QUEUE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    _drain(stack)  # the queue is shared by the process's endpoints: leave nothing on it


@pytest.fixture
def paid(stack, new_user):
    """A payer (who topped up by card) paid a payee 25.00; the log written; the bus's events
    of both on EmailQueue, taken."""
    stack.skip_changes()
    _drain(stack)
    payer, payee = new_user("Alice Payer"), new_user("Bob <b>Payee</b>")
    card = add_card(stack, payer)
    top_up(stack, payer, card, 5_000)
    payment = pay(stack, payer, payee.id, 2_500)
    assert payment.status == 201
    stack.settle()
    messages = _drain(stack)
    assert {json.loads(m["Body"])["detail-type"] for m in messages} == {"payment.succeeded"}
    return payer, payee, payment.body, messages


def test_a_payment_emails_payer_and_payee_once_each_under_duplicates_and_reordering(stack, paid):
    payer, payee, payment, messages = paid
    since = len(_sent())
    # When the batch is delivered twice over, reversed, and then again
    doubled = messages + list(reversed(messages))
    invocation = _deliver(stack, doubled)
    assert invocation.ok and invocation.payload == {"batchItemFailures": []}, invocation
    assert _deliver(stack, list(reversed(messages))).payload == {"batchItemFailures": []}
    # Then the payer has one email of the payment and the payee one
    to_payer, to_payee = _to(payer.email, since), _to(payee.email, since)
    paid_by_card = [m for m in to_payer if payment["id"] in m.raw_data]
    assert len(paid_by_card) == 1 and len(to_payee) == 1
    payer_text = _body(paid_by_card[0].raw_data, "plain")
    assert "You paid $25.00 to Bob <b>Payee</b>." in payer_text
    payee_html = _body(to_payee[0].raw_data, "html")
    assert "by Alice Payer" in payee_html and payment["id"] in payee_html
    # ... the HTML escapes the payee's name, the text shows it as written
    assert "Bob &lt;b&gt;Payee&lt;/b&gt;" in _body(paid_by_card[0].raw_data, "html")
    assert "<b>Payee</b>" not in _body(paid_by_card[0].raw_data, "html")


def test_two_concurrent_consumers_send_each_email_once(stack, paid):
    payer, payee, _, messages = paid
    since = len(_sent())
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(_deliver(stack, messages))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.ok for r in results), results
    # the payer's top-up and payment, the payee's payment: once each
    assert len(_to(payer.email, since)) == 2 and len(_to(payee.email, since)) == 1


def test_the_messages_of_a_batch_are_delivered_at_once_each_as_alone(stack, paid, monkeypatch):
    payer, payee, _, messages = paid
    assert len(messages) == 2  # the top-up's event and the payment's
    since = len(_sent())
    real_send = ses.send
    # The first send of each message waits until the other message's first send arrives:
    # delivered one after another, the first would wait alone and fail (BrokenBarrierError).
    meeting, met, lock = threading.Barrier(2, timeout=10), set(), threading.Lock()

    def rendezvous(sender: str, to: str, raw: bytes) -> str:
        with lock:
            first = threading.get_ident() not in met
            met.add(threading.get_ident())
        if first:
            meeting.wait()
        return real_send(sender, to, raw)

    monkeypatch.setattr(ses, "send", rendezvous)
    # When the batch of the two messages is delivered
    invocation = _deliver(stack, messages)
    # Then both were under way at the same time, and each sent its emails once
    assert invocation.ok and invocation.payload == {"batchItemFailures": []}, invocation
    assert len(met) >= 2 and not meeting.broken
    assert len(_to(payer.email, since)) == 2 and len(_to(payee.email, since)) == 1


def test_a_failing_message_fails_alone_while_the_rest_of_its_batch_is_sent(
    stack, paid, monkeypatch
):
    payer, payee, payment, messages = paid
    since = len(_sent())
    real_mime = render.mime

    def broken_for_the_payee(sender: str, to: str, email: render.Rendered) -> bytes:
        if to == payee.email:
            raise RuntimeError("the payee's email broke before SES was called")
        return real_mime(sender, to, email)

    monkeypatch.setattr(render, "mime", broken_for_the_payee)
    # When a batch holds the payment's message (whose payee send breaks) and the top-up's
    invocation = _deliver(stack, messages)
    # Then only the payment's message fails, and nothing of its payee's went
    assert invocation.ok
    failed = {f["itemIdentifier"] for f in invocation.payload["batchItemFailures"]}
    payment_message = next(m for m in messages if payment["id"] in m["Body"])
    assert failed == {payment_message["MessageId"]}
    assert _to(payee.email, since) == []
    # ... and its retry sends the payee's email once, the payer's not again
    monkeypatch.setattr(render, "mime", real_mime)
    assert _deliver(stack, [payment_message], receives=2).payload == {"batchItemFailures": []}
    assert len(_to(payee.email, since)) == 1 and len(_to(payer.email, since)) == 2


def test_a_refused_send_is_retried_then_sends_once(stack, paid, monkeypatch):
    payer, payee, _, messages = paid
    since = len(_sent())
    real_send, calls = ses.send, []

    def flaky(sender: str, to: str, raw: bytes) -> str:
        calls.append(to)
        if len(calls) == 1:
            raise ses.Refused("TooManyRequestsException (429)")
        return real_send(sender, to, raw)

    monkeypatch.setattr(ses, "send", flaky)
    # When the first send is refused
    first = _deliver(stack, messages)
    # Then that message fails (to come back), and the other emails went
    assert first.ok and len(first.payload["batchItemFailures"]) == 1
    assert len(_to(payer.email, since)) + len(_to(payee.email, since)) == 2
    # When it is delivered again (twice)
    assert _deliver(stack, messages, receives=2).payload == {"batchItemFailures": []}
    assert _deliver(stack, messages, receives=3).payload == {"batchItemFailures": []}
    # Then each email went exactly once
    assert len(_to(payer.email, since)) == 2 and len(_to(payee.email, since)) == 1


def test_an_unknown_send_outcome_is_never_sent_again(stack, paid, monkeypatch):
    payer, payee, _, messages = paid
    since = len(_sent())

    def lost(sender: str, to: str, raw: bytes) -> str:
        raise ses.Unknown("ReadTimeoutError")

    monkeypatch.setattr(ses, "send", lost)
    assert _deliver(stack, messages).payload == {"batchItemFailures": []}
    monkeypatch.undo()
    assert _deliver(stack, messages, receives=2).payload == {"batchItemFailures": []}
    # at most once: what may have been sent is not sent again
    assert _to(payer.email, since) == [] and _to(payee.email, since) == []


def test_the_receipt_in_the_email_verifies_with_the_jwks(stack, paid):
    payer, _, payment, messages = paid
    since = len(_sent())
    _deliver(stack, messages)
    (email,) = [m for m in _to(payer.email, since) if payment["id"] in m.raw_data]
    text = _body(email.raw_data, "plain")
    receipt = next(line.strip() for line in text.splitlines() if line.count(".") == 2
                   and line.strip().startswith("ey"))  # fmt: skip
    jwks = stack.call("JwksFunction", "auth/jwks.json").body
    header = jwt.get_unverified_header(receipt)
    assert header["typ"] == "cashew-receipt+jwt"
    claims = jwt.decode(receipt, jwt.PyJWKSet.from_dict(jwks)[header["kid"]], algorithms=["EdDSA"])
    assert (claims["user_id"], claims["payment_id"], claims["amount"]) == (
        payer.id, payment["id"], 2_500,
    )  # fmt: skip
    assert claims["entry_id"] in text
    entry = stack.call("GetTransactionFunction", "ledger/get_transaction.json",
        authorizer=payer.authorizer, path={"id": claims["entry_id"]}).body  # fmt: skip
    assert chain.entry_hash(entry) == claims["hash"]


def test_an_email_waits_for_its_log_entry_then_goes_without(stack, new_user):
    stack.skip_changes()
    _drain(stack)
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    top_up(stack, payer, card, 5_000)
    pay(stack, payer, payee.id, 700)
    while sum(poller.step() for poller in stack.publishers.values()):
        pass  # published, but the log's queue not consumed: no entry yet
    messages = [m for m in _drain(stack) if "payment.succeeded" in m["Body"]]
    since = len(_sent())
    # While the entries are not in the log, the message comes back and nothing is sent
    waiting = _deliver(stack, messages, receives=1)  # every record failed: the batch fails
    assert not waiting.ok and "All records failed" in str(waiting.error), waiting
    assert _to(payer.email, since) == []
    # After the last receive that waits, it goes without the receipt, and says so
    assert _deliver(stack, messages, receives=5).payload == {"batchItemFailures": []}
    texts = [_body(m.raw_data, "plain") for m in _to(payee.email, since)]
    assert len(texts) == 1 and "was not ready" in texts[0]
    stack.settle()


def test_notify_email_false_gets_no_email(stack, new_user):
    stack.skip_changes()
    _drain(stack)
    payer, payee = new_user(), new_user()
    muted = stack.call("UpdateMeFunction", "accounts/update_me.json",
        authorizer=payee.authorizer, body={"settings": {"notify_email": False}})  # fmt: skip
    assert muted.status == 200, muted.body
    card = add_card(stack, payer)
    top_up(stack, payer, card, 5_000)
    pay(stack, payer, payee.id, 300)
    stack.settle()
    since = len(_sent())
    assert _deliver(stack, _drain(stack)).payload == {"batchItemFailures": []}
    assert _to(payee.email, since) == []
    assert len(_to(payer.email, since)) == 2  # the top-up's and the payment's


def _not_sign_ins(mails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The emails but the new-sign-in ones (the fixtures' logins each send one)."""
    return [m for m in mails if m["subject"] != "New sign-in to your Cashew account"]


def test_the_local_inbox_shows_the_emails_newest_first_with_html_kept_safe(stack, paid):
    from local import mail

    payer, payee, payment, messages = paid
    _deliver(stack, messages)
    # When the payee's inbox is read as JSON
    response = mail.listing({"queryStringParameters": {"to": payee.email}})
    assert response["statusCode"] == 200
    # (the oldest is the registration's verification email)
    email, welcome = _not_sign_ins(json.loads(response["body"])["data"])
    assert welcome["subject"] == "Confirm your Cashew email address"
    # Then it is the email, every field of the contract there
    assert set(email) == {"id", "to", "from", "subject", "text", "html", "sent_at"}
    assert email["to"] == [payee.email] and email["from"] == "Cashew <no-reply@cashew.local>"
    assert email["subject"] == "You were paid $25.00 by Alice Payer"
    assert payment["id"] in email["text"] and payment["id"] in email["html"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", email["sent_at"])
    # ... the payer's, newest first (the payment after the top-up)
    payer_mail = _not_sign_ins(mail.inbox(payer.email))
    assert [m["subject"][:15] for m in payer_mail] == [
        "You paid $25.00", "You added $50.0", "Confirm your Ca",
    ]  # fmt: skip
    # ... and the page a person reads shows the HTML in a sandboxed frame, escaped
    page = mail.page({"queryStringParameters": None})
    assert page["statusCode"] == 200
    text = page["body"]
    assert '<iframe sandbox="" srcdoc="' in text and "Bob &lt;b&gt;Payee&lt;/b&gt;" in text
    assert "<b>Payee</b>" not in text
    assert page["headers"]["Content-Security-Policy"] == mail._PAGE_POLICY


def test_a_message_that_must_wait_comes_back_after_its_delay_not_the_queues(
    stack, new_user, monkeypatch
):
    # Given a payment published but not in the log yet, its event on EmailQueue
    from cashew.config import get_settings

    url = stack.resources["EmailQueue"]["Ref"]
    monkeypatch.setenv("CASHEW_EMAIL_QUEUE_URL", url)
    get_settings.cache_clear()
    stack.skip_changes()
    _drain(stack)
    payer = new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    while sum(poller.step() for poller in stack.publishers.values()):
        pass
    sqs = stack.clients("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   MessageSystemAttributeNames=["All"])["Messages"]  # fmt: skip
    # When the consumer takes it on its first receive (the entry is missing)
    event = sqs_event(messages, stack.resources["EmailQueue"]["Arn"])
    assert not stack.invocation(FUNCTION, event).ok
    # Then it is not back at once, but within its 5 s (the queue's own timeout is 180 s)
    assert not sqs.receive_message(QueueUrl=url).get("Messages")
    again: list[dict[str, Any]] = []
    for _ in range(40):
        again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        if again:
            break
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in messages]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    stack.settle()
