"""For admins: the summary of a date range, its CSV export, and the audit of the whole log."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator

from pydantic import BaseModel

from cashew import clock
from cashew.accounts import store as accounts
from cashew.disputes import store as disputes
from cashew.ledger import chain, service, store
from cashew.ledger.models import Entry

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
    """A chain that does not verify (`first_bad_seq`, `problem`), or a balance that is not
    what the user's entries add up to (`balance`, `log_balance`)."""

    kind: str
    user_id: str
    first_bad_seq: int | None = None
    problem: str | None = None
    currency: str | None = None
    balance: int | None = None
    log_balance: int | None = None


class Audit(BaseModel):
    chains_valid: bool
    balances_match: bool
    chains: int
    entries: int
    discrepancies: list[Discrepancy]


def audit() -> Audit:
    """Every chain verified, and every balance equal to the sum of the balance changes of
    its owner's entries in its currency. Outcomes still on their way to the log show as
    balance discrepancies until they arrive."""
    found: list[Discrepancy] = []
    from_log: Counter[tuple[str, str]] = Counter()
    chains = entries = 0
    for user_id, items, markers in store.all_chains():
        check = chain.verify(user_id, items, markers)
        chains += 1
        entries += len(items)
        if not check.valid:
            found.append(
                Discrepancy(
                    kind="chain",
                    user_id=user_id,
                    first_bad_seq=check.first_bad_seq,
                    problem=check.problem,
                )
            )
        for _, fields in items:
            change = _balance_change(fields)
            if change is not None:
                from_log[user_id, change[0]] += change[1]
    balances = {
        (user, currency): available for user, currency, available in accounts.all_balances()
    }
    for user_id, currency in sorted(set(balances) | set(from_log)):
        actual, expected = balances.get((user_id, currency), 0), from_log[user_id, currency]
        if actual != expected:
            found.append(
                Discrepancy(
                    kind="balance",
                    user_id=user_id,
                    currency=currency,
                    balance=actual,
                    log_balance=expected,
                )
            )
    return Audit(
        chains_valid=not any(d.kind == "chain" for d in found),
        balances_match=not any(d.kind == "balance" for d in found),
        chains=chains,
        entries=entries,
        discrepancies=found,
    )


def _balance_change(fields: dict[str, object]) -> tuple[str, int] | None:
    """(currency, change) of a stored entry; None for one too damaged to read (the chain
    check reports it)."""
    try:
        entry = Entry.model_validate(fields)
    except ValueError:
        return None
    return entry.currency, entry.balance_change
