"""For admins: the summary of a date range, its CSV export, and the audit of the whole log."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from cashew import clock
from cashew.accounts import store as accounts
from cashew.disputes import store as disputes
from cashew.ledger import chain, service, store
from cashew.ledger.models import Entry, balance_change
from cashew.payments import outcomes
from cashew.payments import store as payments
from cashew.payments.models import PaymentResponse

# A page of CSV is at most ~170 bytes a row: 5,000 rows stay far below Lambda's 6 MB response.
CSV_DEFAULT_PAGE = 1000
CSV_MAX_PAGE = 5000
CSV_COLUMNS = (
    "id",
    "occurred_at",
    "user_id",
    "payment_id",
    "type",
    "direction",
    "amount",
    "currency",
    "status",
)


class SummaryGroup(BaseModel):
    currency: str
    type: str
    status: str
    count: int
    amount: int


class FraudDeclines(BaseModel):
    currency: str
    count: int
    amount: int


class Summary(BaseModel):
    """Outcomes in the range, each counted once (not once per user it concerns)."""

    since: str
    until: str
    outcomes: int
    groups: list[SummaryGroup]
    fraud_declines: list[FraudDeclines]
    open_disputes: int


def _outcomes(filters: service.Filters) -> Iterator[Entry]:
    """One entry per outcome in the range: both entries of an outcome share its time."""
    seen: set[str] = set()
    for item in service.everyone_items(filters, None, lambda: 1000):
        outcome_id = str(item.get("outcome_id"))
        if outcome_id not in seen:
            seen.add(outcome_id)
            yield store.entry(item)


def summary(filters: service.Filters) -> Summary:
    since_at, until_at = service.date_range(filters.since, filters.until)
    since, until = clock.rfc3339(since_at), clock.rfc3339(until_at)
    bounded = service.Filters(since=since_at, until=until_at)
    counts: Counter[tuple[str, str, str]] = Counter()
    amounts: Counter[tuple[str, str, str]] = Counter()
    fraud: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = 0
    for entry in _outcomes(bounded):
        key = (entry.currency, entry.type, entry.status)
        counts[key] += 1
        amounts[key] += entry.amount
        total += 1
        if entry.failure_code == "fraud_suspected":
            fraud[entry.currency][0] += 1
            fraud[entry.currency][1] += entry.amount
    return Summary(
        since=since,
        until=until,
        outcomes=total,
        groups=[
            SummaryGroup(
                currency=c, type=t, status=s, count=counts[c, t, s], amount=amounts[c, t, s]
            )
            for c, t, s in sorted(counts)
        ],
        fraud_declines=[
            FraudDeclines(currency=c, count=n, amount=a) for c, (n, a) in sorted(fraud.items())
        ],
        open_disputes=disputes.count("open", since, until),
    )


def csv_page(filters: service.Filters, limit: int, cursor: str | None) -> tuple[str, str | None]:
    """One page of the range's entries as CSV (with the header row), newest first, and the
    cursor of the next page. Every value is an id, a code, a number or a time, never free
    text, so no cell can start a spreadsheet formula."""
    entries, next_cursor = service.page(
        lambda wanted: service.everyone_items(filters, cursor, wanted),
        lambda _: True,
        limit,
        tuple(store.DAY_CURSOR),
        filtered=False,
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([getattr(entry, column) for column in CSV_COLUMNS])
    return out.getvalue(), next_cursor


class Discrepancy(BaseModel):
    """Something the audit found wrong, by `kind`:

    - `chain`: a chain that does not verify (`first_bad_seq`, `problem`);
    - `balance`: a balance (`balance`) that is not what the user's entries add up to
      (`log_balance`) plus the outcomes still on their way to the log (`pending`);
    - `unexplained_money`: money credited that no charge explains (`payment_id`, `problem`:
      `captured_above_authorised`, `refunded_above_captured`, `refunds_above_captured`, a
      log credit with `no_payment`, `payment_not_succeeded`, `amount_differs` or
      `currency_differs`; `amount` is the money at stake);
    - `conservation`: in a currency, the sum of all balances (`balance`) is not the money in
      by card minus card refunds (`card_balance`);
    - `record`: an item of the payments table that cannot be read (`payment_id` is its key,
      `problem`: `unreadable`)."""

    kind: str
    user_id: str | None = None
    first_bad_seq: int | None = None
    problem: str | None = None
    currency: str | None = None
    balance: int | None = None
    log_balance: int | None = None
    pending: int | None = None
    payment_id: str | None = None
    amount: int | None = None
    card_balance: int | None = None


class PendingOutcome(BaseModel):
    """An outcome committed in the payments or disputes table and not yet in the user's
    chain: `amount` is what it will change in the user's balance (0 for one that moves
    none)."""

    outcome_id: str
    payment_id: str
    user_id: str
    currency: str
    amount: int


class Audit(BaseModel):
    chains_valid: bool
    balances_match: bool
    card_money_explained: bool
    chains: int
    entries: int
    discrepancies: list[Discrepancy]
    pending: list[PendingOutcome]


_DRIFT = ("balance", "unexplained_money", "conservation")
_CARD = ("unexplained_money", "conservation")


@dataclass
class _Log:
    """What the audit read from the log."""

    balances: Counter[tuple[str, str]] = field(default_factory=Counter)
    logged: set[tuple[str, str]] = field(default_factory=set)  # (user id, outcome id)
    credits: list[Entry] = field(default_factory=list)  # balance credits from payments
    chains: int = 0
    entries: int = 0


def audit() -> Audit:
    """Every chain verified; every balance equal to the sum of the balance changes of its
    owner's entries plus the outcomes still on their way (`pending`, not a discrepancy);
    every credit from a payment or top-up explained by a payment that captured it, within
    what it authorised; and, per currency, the sum of balances equal to the money in by card
    minus card refunds. The log is read first, then the balances, then the payments, so an
    outcome committed meanwhile is seen as pending. `balances_match` is false only for drift:
    a balance the log and the pending outcomes do not explain, or card money no charge
    explains (`card_money_explained` false)."""
    found: list[Discrepancy] = []
    log = _read_log(found)
    balances = {
        (user, currency): available for user, currency, available in accounts.all_balances()
    }
    records = _readable(payments.all_records(), found)
    pending = _pending(records, log.logged)
    in_flight: Counter[tuple[str, str]] = Counter()
    for outcome in pending:
        in_flight[outcome.user_id, outcome.currency] += outcome.amount
    for user_id, currency in sorted(set(balances) | set(log.balances) | set(in_flight)):
        actual, expected = balances.get((user_id, currency), 0), log.balances[user_id, currency]
        if actual != expected + in_flight[user_id, currency]:
            found.append(
                Discrepancy(
                    kind="balance", user_id=user_id, currency=currency, balance=actual,
                    log_balance=expected, pending=in_flight[user_id, currency],
                )
            )  # fmt: skip
    found.extend(_unexplained(records, log.credits))
    found.extend(_conservation(records, balances))
    return Audit(
        chains_valid=not any(d.kind == "chain" for d in found),
        balances_match=not any(d.kind in _DRIFT for d in found),
        card_money_explained=not any(d.kind in _CARD for d in found),
        chains=log.chains,
        entries=log.entries,
        discrepancies=found,
        pending=[p for p in pending if p.amount],
    )


def _read_log(found: list[Discrepancy]) -> _Log:
    log = _Log()
    for user_id, items, markers in store.all_chains():
        check = chain.verify(user_id, items, markers)
        log.chains += 1
        log.entries += len(items)
        if not check.valid:
            found.append(
                Discrepancy(
                    kind="chain",
                    user_id=user_id,
                    first_bad_seq=check.first_bad_seq,
                    problem=check.problem,
                )
            )
        log.logged.update((user_id, marker.outcome_id) for marker in markers)
        for _, fields in items:
            entry = _entry(fields)
            if entry is None:
                continue
            log.logged.add((user_id, entry.outcome_id))
            log.balances[user_id, entry.currency] += entry.balance_change
            if entry.type in ("top_up", "payment") and entry.balance_change > 0:
                log.credits.append(entry)
    return log


def _readable(items: Iterator[dict[str, Any]], found: list[Discrepancy]) -> list[dict[str, Any]]:
    """The payment and refund items the audit can read; any other is named (`record`,
    `unreadable`): it explains no money, and what it changed cannot be told."""
    readable = []
    for item in items:
        try:
            if str(item["pk"]).startswith("pay_"):
                payments.stored(item)
            else:
                payments.refund(item)
            outcomes.of_item(item)
        except (KeyError, ValueError, TypeError):  # ValidationError is a ValueError
            found.append(
                Discrepancy(kind="record", payment_id=str(item["pk"]), problem="unreadable")
            )
            continue
        readable.append(item)
    return readable


def _pending(records: list[dict[str, Any]], logged: set[tuple[str, str]]) -> list[PendingOutcome]:
    """The outcomes the tables hold that a user's chain does not have yet."""
    found = []
    for item in records:
        for change in outcomes.of_item(item):
            outcome = change.outcome
            for user_id, direction, funds in service.affected(outcome):
                if (user_id, outcome.outcome_id) in logged:
                    continue
                amount = balance_change(
                    outcome.type, outcome.status, funds, direction, outcome.amount
                )
                found.append(
                    PendingOutcome(
                        outcome_id=outcome.outcome_id, payment_id=outcome.payment_id,
                        user_id=user_id, currency=outcome.currency, amount=amount,
                    )
                )  # fmt: skip
    return found


def _unexplained(records: list[dict[str, Any]], credits: list[Entry]) -> Iterator[Discrepancy]:
    """Money in balances that no payment explains: a payment that captured more than it
    authorised or refunded more than it captured, and a credit in the log from a payment or
    top-up that no succeeded payment of that amount, currency and payee stands behind."""
    stored: dict[str, PaymentResponse] = {}
    refunded: Counter[str] = Counter()
    for item in records:
        if str(item["pk"]).startswith("pay_"):
            payment = payments.stored(item).payment
            stored[payment.id] = payment
        elif item.get("status") != "failed":
            refunded[str(item["payment_id"])] += int(item["amount"])
    for payment in stored.values():
        problems = {
            "captured_above_authorised": payment.amount_captured - payment.amount,
            "refunded_above_captured": payment.amount_refunded - payment.amount_captured,
            "refunds_above_captured": refunded[payment.id] - payment.amount_captured,
        }
        for problem, excess in problems.items():
            if excess > 0:
                yield Discrepancy(
                    kind="unexplained_money", user_id=payment.payee_id, problem=problem,
                    currency=payment.currency, payment_id=payment.id, amount=excess,
                )  # fmt: skip
    for entry in credits:
        wrong = _credit_problem(entry, stored.get(entry.payment_id))
        if wrong is not None:
            yield Discrepancy(
                kind="unexplained_money", user_id=entry.user_id, problem=wrong,
                currency=entry.currency, payment_id=entry.payment_id, amount=entry.amount,
            )  # fmt: skip


def _credit_problem(entry: Entry, payment: PaymentResponse | None) -> str | None:
    if payment is None or payment.payee_id != entry.user_id:
        return "no_payment"
    if payment.status != "succeeded":
        return "payment_not_succeeded"
    if payment.currency != entry.currency:
        return "currency_differs"
    if entry.amount != (payment.amount_captured or payment.amount):
        return "amount_differs"
    return None


def _conservation(
    records: list[dict[str, Any]], balances: dict[tuple[str, str], int]
) -> Iterator[Discrepancy]:
    """Per currency: the sum of balances = card money in (what succeeded card payments and
    top-ups captured) - card refunds (pending ones included: they left the payee's balance).
    Both are read from the tables that commit them together, so no lag can break it."""
    held: Counter[str] = Counter()
    for (_, currency), available in balances.items():
        held[currency] += available
    by_card: Counter[str] = Counter()
    for item in records:
        if item.get("status") == "failed":
            continue
        if str(item["pk"]).startswith("pay_"):
            payment = payments.stored(item).payment
            if payment.source.get("type") == "card" and payment.status == "succeeded":
                by_card[payment.currency] += payment.amount_captured
        elif item.get("payment_source") == "card":
            by_card[str(item["currency"])] -= int(item["amount"])
    for currency in sorted(set(held) | set(by_card)):
        if held[currency] != by_card[currency]:
            yield Discrepancy(
                kind="conservation", currency=currency, balance=held[currency],
                card_balance=by_card[currency],
            )  # fmt: skip


def _entry(fields: dict[str, object]) -> Entry | None:
    """A stored entry; None for one too damaged to read (the chain check reports it)."""
    try:
        return Entry.model_validate(fields)
    except ValueError:
        return None
