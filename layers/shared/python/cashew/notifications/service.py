"""The email consumer: each event of the payments bus (through EmailQueue) becomes the emails
of API.md's table, each sent at most once per outcome and recipient.

For one event:
1. its facts (the detail; for a refund or a dispute, its payment, read) and its notices (who
   gets which email); recipients whose profile says `notify_email: false` get none (a
   `security` notice always goes);
2. the receipt of each recipient the log gives an entry of this outcome: while an entry is
   not in the log yet, the message comes back shortly (`RECEIPT_WAIT_RECEIVES` receives);
   after that the email goes without it and says so;
3. for each notice: a claim in the notifications table (a conditional put on outcome id +
   recipient), then the receipt signed and the email sent, then the claim marked `sent`.

Crash windows, and what each does:
- before the claim: nothing was written; the redelivered message does it all again;
- after the claim, before SES is called (a failure signing the receipt, say): the claim is
  released, and the message retried;
- SES refused the send (a 4xx: throttled, rejected): nothing was sent, the claim is released,
  and the message comes back with a growing delay (`backoff`), after maxReceiveCount receives
  the dead-letter queue (with an alarm);
- SES's answer is unknown (a timeout, a 5xx, the function dying during or just after the
  call): the claim stays `sending` and the email is never sent again. An email is sent at most
  once: an unknown outcome may be an email lost, never one sent twice (counted as the metric
  `EmailOutcomeUnknown` and logged with the outcome and user ids, for a person to look at);
- after SES accepted, before the claim is marked `sent`: as an unknown outcome (it was sent).
Concurrent consumers of one outcome race on the claim: one wins, the others skip it.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from cashew import aws, clock
from cashew.accounts import face as accounts
from cashew.auth import receipts
from cashew.config import get_settings
from cashew.ledger import face as ledger
from cashew.ledger.models import Entry
from cashew.notifications import formatting, recipients, render, ses, store
from cashew.notifications.recipients import Facts, Notice
from cashew.observability import logger, metrics
from cashew.payments import face as payments
from cashew.payments.models import PaymentResponse
from cashew.payouts import face as payouts

RECEIPT_WAIT_RECEIVES = 4  # receives that wait for a missing log entry; then send without
RECEIPT_WAIT_SECONDS = 5  # x the receive count
BACKOFF_BASE_SECONDS = 30  # a refused send: 30 s, 60 s, 2 min, ... up to 15 min
BACKOFF_MAX_SECONDS = 900


# SendEmailsFunction delivers a batch's messages in threads; Powertools' metric set is a plain
# dict updated in place, so two threads adding the same metric at once could lose a count.
_COUNTING = threading.Lock()


def _count(name: str) -> None:
    with _COUNTING:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class RetryLater(Exception):
    """The message is to come back in `seconds` (its visibility is set so)."""

    def __init__(self, reason: str, seconds: int) -> None:
        super().__init__(reason)
        self.seconds = seconds


def backoff(receives: int) -> int:
    """Seconds before the next attempt of a message received `receives` times."""
    return int(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, receives - 1)))


@dataclass(frozen=True, slots=True)
class Result:
    """What became of each notice of an event, by recipient: sent, duplicate (claimed
    before), muted (notify_email false), no_profile, refused, unknown."""

    by_user: dict[str, str]


def handle(body: str, receives: int, receipt_handle: str | None) -> Result:
    """One message of EmailQueue (an EventBridge event). RetryLater (and any other error)
    fails the message; RetryLater first sets when it comes back."""
    try:
        return deliver(body, receives)
    except RetryLater as later:
        queue_url = get_settings().email_queue_url
        if queue_url is not None and receipt_handle is not None:
            aws.sqs().change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=later.seconds
            )
        raise


def deliver(body: str, receives: int) -> Result:
    facts = recipients.of_message(body, _payment_of, payouts.owner_of)
    if facts is None:
        logger.info("no email for this event")
        return Result({})
    notices = recipients.notices(facts)
    profiles = {uid: accounts.get_profile(uid) for uid in {facts.payer_id, facts.payee_id}}
    result: dict[str, str] = {}
    wanted: list[Notice] = []
    for notice in notices:
        profile = profiles.get(notice.user_id)
        if profile is None:
            result[notice.user_id] = "no_profile"
        elif notice.kind != "security" and not profile.settings.notify_email:
            result[notice.user_id] = "muted"
        else:
            wanted.append(notice)
    parties = ledger.parties(facts.outcome)
    entries = {
        n.user_id: ledger.entry_for_outcome(n.user_id, facts.outcome_id)
        for n in wanted
        if n.user_id in parties
    }
    missing = sorted(uid for uid, entry in entries.items() if entry is None)
    if missing and receives <= RECEIPT_WAIT_RECEIVES:
        raise RetryLater("a receipt's entry is not in the log yet", RECEIPT_WAIT_SECONDS * receives)
    refused = False
    for notice in wanted:
        status = _send(
            notice, facts, profiles, entries.get(notice.user_id), notice.user_id in missing
        )
        result[notice.user_id] = status
        refused = refused or status == "refused"
    if refused:
        raise RetryLater("SES refused a send", backoff(receives))
    return Result(result)


def _payment_of(payment_id: str) -> PaymentResponse | None:
    stored = payments.get(payment_id)
    return stored.payment if stored else None


def _send(
    notice: Notice,
    facts: Facts,
    profiles: dict[str, accounts.Profile | None],
    entry: Entry | None,
    receipt_pending: bool,
) -> str:
    profile = profiles[notice.user_id]
    if profile is None:  # deliver sends none to a user without a profile
        return "no_profile"
    now = clock.now()
    held = store.Claim(
        outcome_id=facts.outcome_id,
        user_id=notice.user_id,
        token=uuid.uuid4().hex,
        state="sending",
        claimed_at=clock.rfc3339(now),
        expires_at=int(now.timestamp()) + store.RETENTION_SECONDS,
    )
    if not store.claim(held):
        _count("EmailDuplicate")
        return "duplicate"
    try:
        email = _email(notice, facts, profiles, entry, receipt_pending)
        sender = get_settings().email_from
        raw = render.mime(sender, profile.email, render.render(email))
    except BaseException:
        store.release(held)  # SES was not called: nothing was sent
        raise
    try:  # from here on the email may have gone: the claim is released only on a refusal
        message_id = ses.send(sender, profile.email, raw)
    except ses.Unknown as error:
        _count("EmailOutcomeUnknown")
        logger.error(
            "an email may or may not have been sent; it is not sent again",
            extra={"outcome_id": facts.outcome_id, "user_id": notice.user_id, "error": str(error)},
        )
        return "unknown"
    except ses.Refused as error:
        store.release(held)
        _count("EmailRefused")
        logger.warning(
            "SES refused an email; it is retried",
            extra={"outcome_id": facts.outcome_id, "user_id": notice.user_id, "error": str(error)},
        )
        return "refused"
    store.mark_sent(held, message_id)
    _count("EmailSent")
    if receipt_pending:
        _count("EmailWithoutReceipt")
        logger.warning("an email went without its receipt", extra={"outcome_id": facts.outcome_id})
    logger.info("email sent", extra={"outcome_id": facts.outcome_id, "user_id": notice.user_id})
    return "sent"


def _name(profile: accounts.Profile | None) -> str:
    return formatting.one_line(profile.name) if profile else "a Cashew user"


def _email(
    notice: Notice,
    facts: Facts,
    profiles: dict[str, accounts.Profile | None],
    entry: Entry | None,
    receipt_pending: bool,
) -> render.Email:
    amount = formatting.amount(facts.amount, facts.currency)
    other = {"payer": facts.payee_id, "payee": facts.payer_id}.get(notice.role)
    counterparty = _name(profiles.get(other)) if other else "you"
    rows: list[tuple[str, str]] = [("Amount", amount)]
    if notice.role == "payer":
        rows.append(("Paid to", counterparty))
    elif notice.role == "payee":
        rows.append(("Paid by", counterparty))
    rows.append(("Payment", facts.payment_id))
    if facts.object_id != facts.payment_id:
        rows.append(("Refund" if facts.type == "refund" else "Dispute", facts.object_id))
    rows.append(("Time", formatting.moment(facts.occurred_at)))
    if notice.role in ("payer", "owner") and facts.source == "card" and facts.method_id:
        method = accounts.get_payment_method(facts.payer_id, facts.method_id)
        if method is not None:
            rows.append(("Card", formatting.card(method.brand, method.last4)))
    if facts.failure_code:
        rows.append(("Reason", facts.failure_code))
    receipt = None
    if entry is not None:
        receipt = render.Receipt(entry.id, receipts.sign(ledger.claims_of(entry)))
    own = profiles[notice.user_id]
    return render.Email(
        template=notice.template,
        name=_name(own),
        amount=amount,
        counterparty=counterparty,
        payment_id=facts.payment_id,
        rows=tuple(rows),
        receipt=receipt,
        receipt_pending=receipt_pending,
    )
