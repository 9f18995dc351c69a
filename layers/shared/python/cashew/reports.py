"""For admins: the summary of a date range, its CSV export, and the audit of the whole log."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from cashew import clock, outcomes
from cashew.accounts import face as accounts
from cashew.config import get_settings
from cashew.disputes import face as disputes
from cashew.ledger import chain, service
from cashew.ledger import face as ledger
from cashew.ledger.models import Entry, balance_change
from cashew.payments import face as payments
from cashew.payments.models import PaymentResponse
from cashew.payouts import face as payouts

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
    for stored in service.everyone_items(filters, None, lambda: 1000):
        if stored.entry.outcome_id not in seen:
            seen.add(stored.entry.outcome_id)
            yield stored.entry


def summary(filters: service.Filters) -> Summary:
    """The range's whole UTC days from the running totals the log consumer keeps (a day's 64
    items, however many outcomes it had, read 100 a request), the rest from the log itself:
    the partial days at either end, and any day before the totals began
    (`ledger.first_counted_day`)."""
    since_at, until_at = service.date_range(filters.since, filters.until)
    since, until = clock.rfc3339(since_at), clock.rfc3339(until_at)
    sums = ledger.Totals()
    whole, rest = _split(since, until, ledger.first_counted_day())
    ledger.totals_of_days(whole, sums)
    for first, last in rest:
        bounded = service.Filters(since=_at(first), until=_at(last))
        for entry in _outcomes(bounded):
            sums.add(entry.currency, entry.type, entry.status, entry.amount, entry.failure_code)
    currencies = sorted({currency for currency, _ in sums.fraud})
    return Summary(
        since=since,
        until=until,
        outcomes=sums.outcomes,
        groups=[
            SummaryGroup(currency=c, type=t, status=s, count=n, amount=sums.amounts[c, t, s])
            for (c, t, s), n in sorted(sums.counts.items())
            if n
        ],
        fraud_declines=[
            FraudDeclines(currency=c, count=sums.fraud[c, "n"], amount=sums.fraud[c, "a"])
            for c in currencies
            if sums.fraud[c, "n"]
        ],
        open_disputes=disputes.count("open", since, until),
    )


def _at(moment: str) -> datetime:
    return clock.to_utc(datetime.fromisoformat(moment))


_DAY_START, _DAY_END = "T00:00:00.000Z", "T23:59:59.999Z"


def _split(
    since: str, until: str, counted_from: str | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """The UTC days wholly within since..until (times as the log stores them) that the
    totals hold, and the sub-ranges (first, last) left to read from the log: one stretch
    before them, one after (either may be empty)."""
    days = sorted(service.days(_at(since), _at(until)))
    whole = [
        day for day in days
        if counted_from is not None and day >= counted_from
        and since <= day + _DAY_START and day + _DAY_END <= until
    ]  # fmt: skip
    if not whole:
        return [], [(since, until)]
    rest = []
    if since < whole[0] + _DAY_START:
        rest.append((since, _day_before(whole[0]) + _DAY_END))
    if whole[-1] + _DAY_END < until:
        rest.append((_day_after(whole[-1]) + _DAY_START, until))
    return whole, rest


def _day_before(day: str) -> str:
    return (datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat()


def _day_after(day: str) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()


def csv_page(filters: service.Filters, limit: int, cursor: str | None) -> tuple[str, str | None]:
    """One page of the range's entries as CSV (with the header row), newest first, and the
    cursor of the next page. Every value is an id, a code, a number or a time, never free
    text, so no cell can start a spreadsheet formula."""
    entries, next_cursor = csv_entries(filters, limit, cursor)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    write_rows(writer, entries)
    return out.getvalue(), next_cursor


def csv_entries(
    filters: service.Filters, limit: int, cursor: str | None
) -> tuple[list[Entry], str | None]:
    """Up to `limit` of the range's entries, newest first, from after `cursor`, and the
    cursor after them (None once the range is exhausted)."""
    return service.page(
        lambda wanted: service.everyone_items(filters, cursor, wanted),
        lambda _: True,
        limit,
        tuple(ledger.DAY_CURSOR),
        filtered=False,
    )


def write_rows(writer: Any, entries: list[Entry]) -> None:
    """The CSV rows of `entries`, in CSV_COLUMNS order (`writer`: a csv.writer)."""
    for entry in entries:
        writer.writerow([getattr(entry, column) for column in CSV_COLUMNS])


HORIZON = timedelta(hours=24)
"""How long DynamoDB Streams keeps a committed change. An outcome whose change is older than
this and still not in the log can no longer reach it by the stream (the publisher's mapping
gives up on a record after 23 h and describes it on `PublishFailuresQueue`): it is missing
(`missing_from_log`, PROPERTIES 14; `make republish` publishes it), not in flight."""
RECHECKS = 3
"""How many times at most a candidate discrepancy is read again before it is reported."""
RECHECK_PAUSE = 0.2
"""Seconds before each re-check after the first (an index catches up with its table)."""


class Discrepancy(BaseModel):
    """Something the audit found wrong, by `kind`:

    - `chain`: a chain that does not verify (`first_bad_seq`, `problem`);
    - `balance`: a balance (`balance`) that is not what the user's entries add up to
      (`log_balance`) plus the outcomes committed and not yet in the log (`pending`);
    - `unexplained_money`: money credited that no charge explains (`payment_id`, `problem`:
      `captured_above_authorised`, `refunded_above_captured`, `refunds_above_captured`, a
      log credit with `no_payment`, `payment_not_succeeded`, `amount_differs` or
      `currency_differs`; `amount` is the money at stake); the audit job, which checks
      user by user, names an entry that moved money (`outcome_id`, `amount` its change)
      `no_record` (no record of its outcome concerns the user), `differs_from_record` or
      `repeats_outcome` (a second entry of an outcome already explained); a user a record
      names who does not exist `unknown_party`; a record that explains no money on its
      own `top_up_not_by_card` or `succeeded_without_capture`; and a refund its payment
      does not count `refund_without_payment`, `refund_parties_differ` or
      `refund_not_counted`;
    - `conservation`: in a currency, the sum of all balances (`balance`; less any gap of a
      balance that was only lag: a payment committing while the audit read) is not the
      money in by card minus card refunds minus payouts `paid` or `pending`
      (`card_balance`);
    - `missing_from_log`: an outcome (`outcome_id`, of `payment_id`) committed longer ago
      than the stream keeps changes (`since`: the latest time its change can have been
      committed) and still not in the chain of `user_id`; `amount` is what it changes in
      their balance in `currency` (0 for one that moves none). It will not arrive by
      itself: republish it (`make republish`, `scripts.republish`);
    - `record`: an item of the payments table that cannot be read (`payment_id` is its key,
      `problem`: `unreadable`); a balance item that cannot be read is a `balance` with
      `problem` `unreadable` (no figures: none can be told)."""

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
    outcome_id: str | None = None
    since: str | None = None


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


DRIFT = ("balance", "unexplained_money", "conservation", "missing_from_log")
"""The kinds of discrepancy that make `balances_match` false."""
CARD = ("unexplained_money", "conservation")
"""The kinds of discrepancy that make `card_money_explained` false."""


@dataclass
class _Log:
    """What the audit read from the log."""

    balances: Counter[tuple[str, str]] = field(default_factory=Counter)
    logged: set[tuple[str, str]] = field(default_factory=set)  # (user id, outcome id)
    credits: list[Entry] = field(default_factory=list)  # balance credits from payments
    chains: int = 0
    entries: int = 0


@dataclass(frozen=True, slots=True)
class _Unlogged:
    """An outcome the tables hold that a user's chain does not, and the latest time its
    change can have been committed."""

    outcome: PendingOutcome
    since: datetime


def audit(progress: Callable[[int], None] = lambda _: None) -> Audit:
    """Every chain verified; every balance equal to the sum of the balance changes of its
    owner's entries plus the outcomes still on their way (`pending`, not a discrepancy);
    every credit from a payment or top-up explained by a payment that captured it, within
    what it authorised; and, per currency, the sum of balances equal to the money in by card
    minus card refunds. The log is read first, then the balances, then the payments, so an
    outcome committed meanwhile is seen as pending. An outcome not in the log whose change
    is older than the stream keeps changes (`HORIZON`) is not on its way: it is
    `missing_from_log`.

    A payment committed between the read of the balances and the read of the payments (or
    logged meanwhile) makes a balance, and its currency's conservation, look wrong for a
    moment. So a `balance` or `missing_from_log` discrepancy is only a candidate: the
    user's chain, balances and payments are read again, up to `RECHECKS` times, and only
    one found again on every re-read is reported. A currency's `conservation` gap is
    reported only if the gaps of the balances found to be lag do not add up to it. A clean
    audit reads nothing twice.

    `balances_match` is false only for drift: a balance the log and the pending outcomes do
    not explain, an outcome missing from the log, or card money no charge explains
    (`card_money_explained` false).

    `progress` is told how far the audit has come (0..100) after each of its reads."""
    found: list[Discrepancy] = []
    log = _read_log(found)
    progress(60)  # the log is most of what the audit reads
    balances = _readable_balances(accounts.all_balances(), found)
    progress(70)
    records = _readable(payments.all_records(), found)
    out = list(payouts.all_payouts())
    progress(85)
    now = clock.now()
    drift, unlogged = _user_drift(log, balances, records, now, None, out=out)
    found.extend(_unexplained(records, log.credits))
    persisting = _recheck(drift, now)
    progress(95)
    found.extend(persisting)
    gaps = _conservation(records, balances, out)
    found.extend(_conserved_but_for_lag(gaps, drift, persisting))
    return Audit(
        chains_valid=not any(d.kind == "chain" for d in found),
        balances_match=not any(d.kind in DRIFT for d in found),
        card_money_explained=not any(d.kind in CARD for d in found),
        chains=log.chains,
        entries=log.entries,
        discrepancies=found,
        pending=[u.outcome for u in unlogged if u.outcome.amount and u.since >= now - HORIZON],
    )


def _user_drift(
    log: _Log,
    balances: dict[tuple[str, str], int],
    records: list[payments.Record],
    now: datetime,
    users: set[str] | None,
    *,
    out: list[payouts.StoredPayout],
) -> tuple[list[Discrepancy], list[_Unlogged]]:
    """The `balance` and `missing_from_log` discrepancies of `users` (of everyone for None),
    and the outcomes not yet logged (payouts `out` among them)."""
    unlogged = [
        u
        for u in _pending(records, log.logged) + _payouts_unlogged(out, log.logged)
        if users is None or u.outcome.user_id in users
    ]
    in_flight: Counter[tuple[str, str]] = Counter()
    for u in unlogged:
        in_flight[u.outcome.user_id, u.outcome.currency] += u.outcome.amount
    found = []
    for user_id, currency in sorted(set(balances) | set(log.balances) | set(in_flight)):
        if users is not None and user_id not in users:
            continue
        actual, expected = balances.get((user_id, currency), 0), log.balances[user_id, currency]
        if actual != expected + in_flight[user_id, currency]:
            found.append(
                Discrepancy(
                    kind="balance", user_id=user_id, currency=currency, balance=actual,
                    log_balance=expected, pending=in_flight[user_id, currency],
                )
            )  # fmt: skip
    for u in unlogged:
        if u.since < now - HORIZON:
            found.append(
                Discrepancy(
                    kind="missing_from_log", user_id=u.outcome.user_id,
                    currency=u.outcome.currency, outcome_id=u.outcome.outcome_id,
                    payment_id=u.outcome.payment_id, amount=u.outcome.amount,
                    since=clock.rfc3339(u.since),
                )
            )  # fmt: skip
    return found, unlogged


def _identity(d: Discrepancy) -> tuple[str | None, ...]:
    return (d.kind, d.user_id, d.currency, d.outcome_id)


def _recheck(candidates: list[Discrepancy], now: datetime) -> list[Discrepancy]:
    """The candidates found again on each of up to `RECHECKS` re-reads of the chain,
    balances and payments of each user concerned (with the latest read's figures)."""
    for attempt in range(RECHECKS):
        if not candidates:
            break
        if attempt:
            time.sleep(RECHECK_PAUSE)
        users = {d.user_id for d in candidates if d.user_id is not None}
        log = _Log()
        ignored: list[Discrepancy] = []  # chains and records: the first read reported them
        balances: dict[tuple[str, str], int] = {}
        stored: dict[str, payments.Record | payments.Unreadable] = {}
        out: list[payouts.StoredPayout] = []
        for user_id in sorted(users):  # the same order as the first read: log, balances, payments
            _add_chain(log, user_id, *ledger.chain_items(user_id), ignored)
            balances.update(_balances_of(user_id, ignored))
            stored.update((r.pk, r) for r in payments.records_of(user_id))
            out.extend(payouts.payouts_of(user_id))
        readable = _readable(iter(stored.values()), ignored)
        again, _ = _user_drift(log, balances, readable, now, users, out=out)
        wanted = {_identity(d) for d in candidates}
        candidates = [d for d in again if _identity(d) in wanted]
    return candidates


def _conserved_but_for_lag(
    gaps: Iterator[Discrepancy], first: list[Discrepancy], persisting: list[Discrepancy]
) -> Iterator[Discrepancy]:
    """The conservation gaps that balances found to be lag do not explain.

    In a currency, sum of balances - card money = the sum over users of (balance - their
    log - their pending outcomes) + (the log and pending outcomes of everyone - card money).
    A payment committed between the read of the balances and the read of the payments
    moves one user's first term and not the second: the gap it opens is exactly that of a
    `balance` candidate the re-check clears. So a gap is reported only if, less the gaps of
    the balances the re-check cleared, it is still not 0 (no further read is needed), and
    its `balance` is the sum of balances less those gaps (as if what was committing while
    the audit read had been read)."""
    kept = {_identity(d) for d in persisting}
    lag: Counter[str | None] = Counter()
    for d in first:
        if d.kind == "balance" and _identity(d) not in kept:
            lag[d.currency] += (d.balance or 0) - (d.log_balance or 0) - (d.pending or 0)
    for gap in gaps:
        if (gap.balance or 0) - (gap.card_balance or 0) != lag[gap.currency]:
            yield gap.model_copy(update={"balance": (gap.balance or 0) - lag[gap.currency]})


def _read_log(found: list[Discrepancy]) -> _Log:
    log = _Log()
    for user_id, items, markers in ledger.all_chains():
        _add_chain(log, user_id, items, markers, found)
    return log


def _add_chain(
    log: _Log,
    user_id: str,
    items: list[ledger.ChainItem],
    markers: list[ledger.Marker],
    found: list[Discrepancy],
) -> None:
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
    for item in items:
        entry = item.entry()
        if entry is None:
            continue
        log.logged.add((user_id, entry.outcome_id))
        log.balances[user_id, entry.currency] += entry.balance_change
        if entry.type in ("top_up", "payment") and entry.balance_change > 0:
            log.credits.append(entry)


def _balances_of(user_id: str, found: list[Discrepancy]) -> dict[tuple[str, str], int]:
    """The user's balances (strongly consistent); one that cannot be read is named."""
    return _readable_balances(accounts.balances_of(user_id), found)


def _readable_balances(
    read: Iterator[accounts.StoredBalance | accounts.UnreadableBalance], found: list[Discrepancy]
) -> dict[tuple[str, str], int]:
    """The balances the audit can read, by (user, currency), each the sum of its items (the
    main one and any credit shards); any other balance item is
    named (`balance`, `unreadable`): what it holds cannot be told, so it matches nothing."""
    balances: dict[tuple[str, str], int] = {}
    for balance in read:
        if isinstance(balance, accounts.UnreadableBalance):
            found.append(
                Discrepancy(
                    kind="balance", user_id=balance.user_id, currency=balance.currency,
                    problem="unreadable",
                )
            )  # fmt: skip
            continue
        key = balance.user_id, balance.currency  # a hot payee's credit shards: summed
        balances[key] = balances.get(key, 0) + balance.available
    return balances


def _readable(
    records: Iterator[payments.Record | payments.Unreadable], found: list[Discrepancy]
) -> list[payments.Record]:
    """The payments and refunds the audit can read; any other item is named (`record`,
    `unreadable`): it explains no money, and what it changed cannot be told."""
    readable = []
    for record in records:
        if isinstance(record, payments.Unreadable) or not _outcomes_readable(record):
            found.append(Discrepancy(kind="record", payment_id=record.pk, problem="unreadable"))
            continue
        readable.append(record)
    return readable


def _outcomes_readable(record: payments.Record) -> bool:
    try:
        outcomes.of_item(record)
    except (KeyError, ValueError, TypeError):  # ValidationError is a ValueError
        return False
    return True


def _pending(records: list[payments.Record], logged: set[tuple[str, str]]) -> list[_Unlogged]:
    """The outcomes the tables hold that a user's chain does not have yet."""
    found = []
    for record in records:
        for change in outcomes.of_item(record):
            outcome = change.outcome
            since = _committed_by(record, outcome.status, outcome.occurred_at)
            for user_id, direction, funds in service.affected(outcome):
                if (user_id, outcome.outcome_id) in logged:
                    continue
                amount = balance_change(
                    outcome.type, outcome.status, funds, direction, outcome.amount
                )
                pending = PendingOutcome(
                    outcome_id=outcome.outcome_id, payment_id=outcome.payment_id,
                    user_id=user_id, currency=outcome.currency, amount=amount,
                )  # fmt: skip
                found.append(_Unlogged(pending, since))
    return found


_NEVER_LATE = datetime.max.replace(tzinfo=UTC)
"""The `since` of a pending payout: it is not an outcome yet, so never `missing_from_log`."""


def _payouts_unlogged(
    out: list[payouts.StoredPayout], logged: set[tuple[str, str]]
) -> list[_Unlogged]:
    """What payouts changed in their owners' balances that the log does not say yet: a
    `pending` payout's debit (written at its admission, logged once it settles), and a
    settled payout's outcome not in its owner's chain yet."""
    found = []
    for stored in out:
        payout = stored.payout
        if payout.status == "pending":
            pending = PendingOutcome(
                outcome_id=f"{payout.id}:pending", payment_id=payout.id,
                user_id=stored.user_id, currency=payout.currency, amount=-payout.amount,
            )  # fmt: skip
            found.append(_Unlogged(pending, _NEVER_LATE))
            continue
        outcome = outcomes.payout_change(stored).outcome
        if (stored.user_id, outcome.outcome_id) in logged:
            continue
        amount = balance_change("payout", outcome.status, "balance", "debit", outcome.amount)
        pending = PendingOutcome(
            outcome_id=outcome.outcome_id, payment_id=payout.id, user_id=stored.user_id,
            currency=payout.currency, amount=amount,
        )  # fmt: skip
        found.append(_Unlogged(pending, clock.to_utc(datetime.fromisoformat(outcome.occurred_at))))
    return found


def _committed_by(record: payments.Record, status: str, occurred_at: str) -> datetime:
    """The latest time the change to `status` can have been committed: the outcome's time;
    for a card refund's settlement (which records no time), its creation plus an
    idempotency lifetime (the client's retry with the same key is what settles it)."""
    at = clock.to_utc(datetime.fromisoformat(occurred_at))
    card_refund = isinstance(record, payments.StoredRefund) and record.payment_source == "card"
    if card_refund and status == "succeeded":
        at += timedelta(seconds=get_settings().idempotency_ttl)
    return at


def _unexplained(records: list[payments.Record], credits: list[Entry]) -> Iterator[Discrepancy]:
    """Money in balances that no payment explains: a payment that captured more than it
    authorised or refunded more than it captured, and a credit in the log from a payment or
    top-up that no succeeded payment of that amount, currency and payee stands behind."""
    stored: dict[str, PaymentResponse] = {}
    refunded: Counter[str] = Counter()
    for record in records:
        if isinstance(record, payments.StoredPayment):
            stored[record.payment.id] = record.payment
        elif record.refund.status != "failed":
            refunded[record.refund.payment_id] += record.refund.amount
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
    records: list[payments.Record],
    balances: dict[tuple[str, str], int],
    out: list[payouts.StoredPayout],
) -> Iterator[Discrepancy]:
    """Per currency: the sum of balances = card money in (what succeeded card payments and
    top-ups captured) - card refunds (pending ones included: they left the payee's balance)
    - payouts `paid` or `pending` (a pending one was debited at its admission).
    All are read from the tables that commit them together, so no lag can break it."""
    held: Counter[str] = Counter()
    for (_, currency), available in balances.items():
        held[currency] += available
    by_card: Counter[str] = Counter()
    for record in records:
        if isinstance(record, payments.StoredPayment):
            payment = record.payment
            if payment.source.get("type") == "card" and payment.status == "succeeded":
                by_card[payment.currency] += payment.amount_captured
        elif record.refund.status != "failed" and record.payment_source == "card":
            by_card[record.refund.currency] -= record.refund.amount
    for stored in out:
        if stored.payout.status in ("paid", "pending"):
            by_card[stored.payout.currency] -= stored.payout.amount
    for currency in sorted(set(held) | set(by_card)):
        if held[currency] != by_card[currency]:
            yield Discrepancy(
                kind="conservation", currency=currency, balance=held[currency],
                card_balance=by_card[currency],
            )  # fmt: skip


# ------------------------------------------------------------- the audit, user by user


@dataclass
class UsersAudit:
    """What the audit of some users found (`audit_users`): what audits of other users add
    to, into the audit of everyone (the audit job's sweep)."""

    chains: int = 0
    entries: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    pending: list[PendingOutcome] = field(default_factory=list)


def audit_users(users: Iterable[str], known: Callable[[str], bool]) -> UsersAudit:
    """The audit of `users` alone, reading only what concerns them (their chains, balances,
    payments, refunds and payouts), so that everyone can be audited a few users at a time,
    whatever the size of the log. `known(user_id)` says whether a user the records of
    `users` name exists.

    What it checks, for each user: the chain verifies; the balance is the sum of the balance
    changes of the user's entries plus the outcomes on their way (`balance` and
    `missing_from_log`, re-read as `audit` does before being reported); every entry that
    moved money is what the record of its outcome says it did to that user, in amount and
    currency (`unexplained_money`, problem `no_record` or `differs_from_record`); and every
    payment the user paid captured no more than it authorised and was refunded no more than
    it captured (checked once, with its payer). Every user those records name must exist
    (`unexplained_money`, problem `unknown_party`: a payer no audit will ever visit).

    Read together over every user, these prove what `audit`'s conservation check proves,
    without a read of every table at one moment (which no sweep that takes minutes has):
    each balance is explained by the records of the outcomes it took part in, and each
    record's outcomes move between balances no more than the card money the record took or
    gave back. A payment committing while the sweep goes from its payer to its payee is in
    flight at one of them and logged at the other, never a gap."""
    audited = sorted(set(users))
    found: list[Discrepancy] = []
    log = _Log()
    moved: list[Entry] = []
    balances: dict[tuple[str, str], int] = {}
    stored: dict[str, payments.Record | payments.Unreadable] = {}
    out: list[payouts.StoredPayout] = []
    chains = 0
    for user_id in audited:  # the order `audit` reads in: log, balances, payments
        items, markers = ledger.chain_items(user_id)
        _add_chain(log, user_id, items, markers, found)
        chains += bool(items or markers)  # a chain is a user's items in the log, as `audit` counts
        moved.extend(e for i in items if (e := i.entry()) is not None and e.balance_change)
        balances.update(_balances_of(user_id, found))
        stored.update((r.pk, r) for r in payments.records_of(user_id))
        out.extend(payouts.payouts_of(user_id))
    records = _readable(iter(stored.values()), found)
    now = clock.now()
    drift, unlogged = _user_drift(log, balances, records, now, set(audited), out=out)
    found.extend(_recheck(drift, now))
    found.extend(_recheck_entries(_unexplained_entries(moved, records, out), audited))
    theirs = set(audited)
    paid = [r for r in records if _payer(r) in theirs]
    found.extend(_unexplained(paid, []))
    found.extend(_unknown_parties(records, theirs, known))
    return UsersAudit(
        chains=chains,
        entries=log.entries,
        discrepancies=found,
        pending=[u.outcome for u in unlogged if u.outcome.amount and u.since >= now - HORIZON],
    )


def _payer(record: payments.Record) -> str | None:
    if isinstance(record, payments.StoredPayment):
        return record.payment.payer_id
    return record.payment_payer_id


def parties(record: payments.Record) -> tuple[str | None, ...]:
    """The users a payment or refund names (payer, payee; None where a refund stored
    before they were recorded names none)."""
    if isinstance(record, payments.StoredPayment):
        return record.payment.payer_id, record.payment.payee_id
    return record.payment_payer_id, record.payment_payee_id


def _expected(
    records: list[payments.Record], out: list[payouts.StoredPayout]
) -> dict[tuple[str, str], tuple[str, int]]:
    """What each outcome of these records does to each user it concerns: (user, outcome id)
    -> (currency, balance change)."""
    expected = {}
    for record in records:
        for change in outcomes.of_item(record):
            o = change.outcome
            for user_id, direction, funds in service.affected(o):
                moves = balance_change(o.type, o.status, funds, direction, o.amount)
                expected[user_id, o.outcome_id] = (o.currency, moves)
    for stored in out:
        if stored.payout.status != "pending":  # a pending payout is no outcome yet
            o = outcomes.payout_change(stored).outcome
            moves = balance_change("payout", o.status, "balance", "debit", o.amount)
            expected[stored.user_id, o.outcome_id] = (o.currency, moves)
    return expected


def _unexplained_entries(
    moved: list[Entry], records: list[payments.Record], out: list[payouts.StoredPayout]
) -> list[Discrepancy]:
    """The entries that moved money their outcome's record does not say they moved."""
    expected = _expected(records, out)
    explained: set[tuple[str, str]] = set()
    found = []
    for entry in moved:
        key = entry.user_id, entry.outcome_id
        said = expected.get(key)
        if said == (entry.currency, entry.balance_change) and key not in explained:
            explained.add(key)
            continue
        problem = "no_record" if said is None else "differs_from_record"
        found.append(
            Discrepancy(
                kind="unexplained_money", user_id=entry.user_id, currency=entry.currency,
                problem="repeats_outcome" if key in explained else problem,
                payment_id=entry.payment_id, outcome_id=entry.outcome_id,
                amount=entry.balance_change,
            )
        )  # fmt: skip
    return found


def _recheck_entries(candidates: list[Discrepancy], audited: list[str]) -> list[Discrepancy]:
    """The unexplained entries found again on each of up to `RECHECKS` re-reads of their
    users' records (the indexes they are read by may not show the newest yet)."""
    for attempt in range(RECHECKS):
        if not candidates:
            break
        if attempt:
            time.sleep(RECHECK_PAUSE)
        users = sorted({d.user_id for d in candidates if d.user_id in audited})
        moved: list[Entry] = []
        stored: dict[str, payments.Record | payments.Unreadable] = {}
        out: list[payouts.StoredPayout] = []
        for user_id in users:
            items, _ = ledger.chain_items(user_id)
            moved.extend(e for i in items if (e := i.entry()) is not None and e.balance_change)
            stored.update((r.pk, r) for r in payments.records_of(user_id))
            out.extend(payouts.payouts_of(user_id))
        for payment_id in {d.payment_id for d in candidates if d.payment_id}:
            found = payments.read(payment_id)  # consistent: the indexes may lag behind it
            if found is not None:
                stored[found.pk] = found
        readable = _readable(iter(stored.values()), [])
        wanted = {_identity(d) for d in candidates}
        again = _unexplained_entries(moved, readable, out)
        candidates = [d for d in again if _identity(d) in wanted]
    return candidates


def _unknown_parties(
    records: list[payments.Record], audited: set[str], known: Callable[[str], bool]
) -> Iterator[Discrepancy]:
    for record in records:
        for party in parties(record):
            if party is not None and party not in audited and not known(party):
                yield Discrepancy(
                    kind="unexplained_money", user_id=party, problem="unknown_party",
                    payment_id=record.pk,
                )  # fmt: skip


def record_problems(records: list[payments.Record | payments.Unreadable]) -> list[Discrepancy]:
    """What the audit job's sweep of the payments table finds wrong with a record on its
    own (the sweep of the users reads records through their parties' indexes): an
    unreadable item (`record`); a top-up not paid by card or a succeeded payment that
    captured nothing (`unexplained_money`, `top_up_not_by_card`,
    `succeeded_without_capture`: money credited that no card charge brought in); and a
    refund its payment does not count (`refund_without_payment`, `refund_parties_differ`,
    `refund_not_counted`: a payment that says it refunded nothing is never read for its
    refunds, so what they took would go unexplained)."""
    found: list[Discrepancy] = []
    for record in _readable(iter(records), found):
        if isinstance(record, payments.StoredPayment):
            payment = record.payment
            if payment.type == "top_up" and payment.source.get("type") != "card":
                problem: str | None = "top_up_not_by_card"
            elif payment.status == "succeeded" and payment.amount_captured <= 0:
                problem = "succeeded_without_capture"
            else:
                problem = None
            if problem is not None:
                found.append(
                    Discrepancy(
                        kind="unexplained_money", user_id=payment.payee_id, problem=problem,
                        currency=payment.currency, payment_id=payment.id, amount=payment.amount,
                    )
                )  # fmt: skip
            continue
        refund = record.refund
        if refund.status == "failed":
            continue
        problem = _refund_problem(record, payments.read(refund.payment_id))
        if problem is not None:
            found.append(
                Discrepancy(
                    kind="unexplained_money", user_id=record.payment_payee_id, problem=problem,
                    currency=refund.currency, payment_id=refund.payment_id, amount=refund.amount,
                    outcome_id=refund.id,
                )
            )  # fmt: skip
    return found


def _refund_problem(
    refund: payments.StoredRefund, payment: payments.Record | payments.Unreadable | None
) -> str | None:
    if not isinstance(payment, payments.StoredPayment):
        return "refund_without_payment"
    paid = payment.payment
    recorded = refund.payment_payer_id is not None  # refunds stored before parties were not
    if recorded and (refund.payment_payer_id, refund.payment_payee_id) != (
        paid.payer_id,
        paid.payee_id,
    ):
        return "refund_parties_differ"
    if paid.amount_refunded <= 0:
        return "refund_not_counted"
    return None
