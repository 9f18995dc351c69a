"""Appending outcomes to the log, and reading it: a user's history, one entry, the chain."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew import cursor as cursor_codec
from cashew.config import get_settings
from cashew.errors import InvalidRequestError, NotFoundError
from cashew.identity import Caller
from cashew.ledger import chain, store, totals
from cashew.ledger.models import (
    ChainCheck,
    Direction,
    Entry,
    EntryList,
    EntryStatus,
    EntryType,
    Funds,
    Outcome,
)
from cashew.observability import logger, metrics

APPEND_ATTEMPTS = 20
# A filtered page stops after passing over this many entries the filters reject, so that a
# filter matching few entries cannot make one request read a whole history: the page may
# then hold fewer than `limit` entries (even none) with `has_more` true.
MAX_EXAMINED = 2000
# Without `from`, a range across everyone's entries starts this long before `to`; no range
# may be longer than MAX_RANGE.
DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)


# --------------------------------------------------------------------------- appending


def affected(outcome: Outcome) -> list[tuple[str, Direction, Funds]]:
    """Whom an outcome concerns, which way, and which of their funds: the payer (and the
    payee, once money reached them)."""
    payer, payee = outcome.payer_id, outcome.payee_id
    if outcome.type == "top_up":  # the card pays into the balance
        return [(payer, "credit", "balance")]
    if outcome.type == "payout":  # the balance pays out to the owner's card
        return [(payer, "debit", "balance")]
    if outcome.type == "refund":
        return _refunded(outcome)
    if outcome.type == "dispute":  # the way money goes back if the payer wins
        return [(payer, "credit", outcome.source), (payee, "debit", "balance")]
    if outcome.status == "succeeded":
        return [(payer, "debit", outcome.source), (payee, "credit", "balance")]
    return [(payer, "debit", outcome.source)]


def _refunded(outcome: Outcome) -> list[tuple[str, Direction, Funds]]:
    """Money goes back from the payee's balance to where the payer paid from. A card refund
    leaves the balance first (pending), and reaches the card when the gateway confirms."""
    if outcome.source == "balance":
        return [(outcome.payee_id, "debit", "balance"), (outcome.payer_id, "credit", "balance")]
    if outcome.status == "pending":
        return [(outcome.payee_id, "debit", "balance")]
    return [(outcome.payer_id, "credit", "card")]


def append_outcome(outcome: Outcome) -> int:
    """One entry per affected user; an outcome seen before adds nothing. Returns how many
    entries were appended."""
    appended = 0
    totals.start()
    for index, (user_id, direction, funds) in enumerate(affected(outcome)):
        # the summary counts an outcome once: with the entry of the first user it concerns
        appended += _append_for(user_id, direction, funds, outcome, counted=index == 0)
    metrics.add_metric(name="LogEntriesAppended", unit=MetricUnit.Count, value=appended)
    return appended


def _append_for(
    user_id: str, direction: Direction, funds: Funds, outcome: Outcome, *, counted: bool
) -> int:
    for attempt in range(APPEND_ATTEMPTS):
        previous = store.head(user_id)
        fields = {
            "id": ids.new_id("txn"),
            "outcome_id": outcome.outcome_id,
            "payment_id": outcome.payment_id,
            "user_id": user_id,
            "type": outcome.type,
            "direction": direction,
            "funds": funds,
            "amount": outcome.amount,
            "currency": outcome.currency,
            "status": outcome.status,
            "failure_code": outcome.failure_code,
            "occurred_at": outcome.occurred_at,
            "seq": previous.seq + 1 if previous else 1,
            "prev_hash": previous.hash if previous else chain.GENESIS,
        }
        try:
            entry = Entry(**fields, hash=chain.entry_hash(fields))
            store.append(entry, also=totals.count(entry) if counted else None)
        except store.AlreadyAppended:
            logger.info("duplicate outcome ignored", extra={"outcome_id": outcome.outcome_id})
            return 0
        except store.ChainMoved:
            time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 # nosec B311 # jitter, not crypto
            continue
        return 1
    raise RuntimeError(f"could not append to the chain of {user_id}: too much contention")


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list keeps. `since` / `until` bound `occurred_at`, both inclusive."""

    type: EntryType | None = None
    status: EntryStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    bounds: tuple[str, str] = field(init=False)  # since / until as stored times compare

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise InvalidRequestError(
                "from must not be after to", errors=[{"field": "from", "message": "is after to"}]
            )
        bounds = (
            clock.rfc3339(self.since) if self.since else "",
            clock.rfc3339(self.until) if self.until else "~",
        )
        object.__setattr__(self, "bounds", bounds)  # once, not for every item kept

    def keeps(self, entry: Entry) -> bool:
        since, until = self.bounds
        return (
            (self.type is None or entry.type == self.type)
            and (self.status is None or entry.status == self.status)
            and since <= entry.occurred_at <= until
        )

    @property
    def narrows(self) -> bool:
        return any((self.type, self.status, self.since, self.until))


# What a filtered read asks DynamoDB for at least: the filters may reject much of it.
FILTERED_BATCH = 200


def page(
    read: Callable[[store.Wanted], Iterator[store.StoredEntry]],
    keeps: Callable[[Entry], bool],
    limit: int,
    key_fields: tuple[str, ...],
    *,
    filtered: bool,
) -> tuple[list[Entry], str | None]:
    """Up to `limit` kept entries from what `read` yields (lazily: each request asks for
    what the page still lacks, plus one to know whether more follow), and the cursor after
    them: None once `read` is exhausted."""
    kept: list[store.StoredEntry] = []

    def wanted() -> int:
        missing = limit + 1 - len(kept)
        return max(missing, FILTERED_BATCH) if filtered else missing

    for examined, stored in enumerate(read(wanted), 1):
        if keeps(stored.entry):
            if len(kept) == limit:  # one more exists
                return [s.entry for s in kept], _cursor(kept[-1], key_fields)
            kept.append(stored)
        if examined - len(kept) >= MAX_EXAMINED:
            return [s.entry for s in kept], _cursor(stored, key_fields)
    return [s.entry for s in kept], None


def _cursor(stored: store.StoredEntry, key_fields: tuple[str, ...]) -> str:
    key = stored.key()
    return cursor_codec.encode({name: key[name] for name in key_fields})


def user_page(
    user_id: str, filters: Filters, limit: int, cursor: str | None
) -> tuple[list[Entry], str | None]:
    start = cursor_codec.decode(cursor, store.USER_CURSOR, pk=f"USER#{user_id}") if cursor else None
    return page(
        lambda wanted: store.user_entries(user_id, start, wanted),
        filters.keeps,
        limit,
        tuple(store.USER_CURSOR),
        filtered=filters.narrows,
    )


def list_transactions(
    caller: Caller, filters: Filters, limit: int, cursor: str | None
) -> EntryList:
    entries, next_cursor = user_page(caller.user_id, filters, limit, cursor)
    return EntryList(data=entries, has_more=next_cursor is not None, next_cursor=next_cursor)


def get_transaction(caller: Caller, entry_id: str) -> Entry:
    """One of the caller's entries (an admin may read anyone's); 404 otherwise."""
    found = store.get_entry(entry_id)
    if found is None or (caller.role != "admin" and found.user_id != caller.user_id):
        raise NotFoundError("transaction not found")
    return found


def verify_chain(user_id: str) -> ChainCheck:
    entries, markers = store.chain_items(user_id)
    return chain.verify(user_id, entries, markers)


# ------------------------------------------------------------------ everyone's entries


def date_range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """A bounded range: `to` defaults to now and `from` to 30 days before it."""
    until = until or clock.now()
    since = since or until - DEFAULT_RANGE
    if until - since > MAX_RANGE:
        raise InvalidRequestError(
            "the range from..to is longer than 366 days",
            errors=[{"field": "from", "message": "must be at most 366 days before to"}],
        )
    return since, until


def days(since: datetime, until: datetime) -> list[str]:
    """The UTC days from `until` back to `since`, newest first."""
    day, first, found = clock.to_utc(until).date(), clock.to_utc(since).date(), []
    while day >= first:
        found.append(day.isoformat())
        day -= timedelta(days=1)
    return found


def everyone_items(
    filters: Filters, cursor: str | None, wanted: store.Wanted
) -> Iterator[store.StoredEntry]:
    """Everyone's entries in the filters' (bounded) range, newest first."""
    since, until = date_range(filters.since, filters.until)
    first, last, within = clock.rfc3339(since), clock.rfc3339(until), days(since, until)
    start = cursor_codec.decode(cursor, store.DAY_CURSOR) if cursor else None
    if start is not None and not (
        start["day"] in within
        and start["occurred_at"][:10] == start["day"]
        and first <= start["occurred_at"] <= last
    ):  # DynamoDB refuses a start key outside the query's range
        raise InvalidRequestError(
            "cursor is not one of this range",
            errors=[{"field": "cursor", "message": "is not one of this range"}],
        )
    shards = get_settings().log_day_shards
    return store.day_entries(within, first, last, start, wanted, shards=shards)


def admin_transactions(
    user_id: str | None, filters: Filters, limit: int, cursor: str | None
) -> EntryList:
    if user_id is not None:
        entries, next_cursor = user_page(user_id, filters, limit, cursor)
    else:
        entries, next_cursor = page(
            lambda wanted: everyone_items(filters, cursor, wanted),
            filters.keeps,
            limit,
            tuple(store.DAY_CURSOR),
            filtered=bool(filters.type or filters.status),
        )
    return EntryList(data=entries, has_more=next_cursor is not None, next_cursor=next_cursor)
