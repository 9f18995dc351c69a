"""Appending outcomes to the log, and reading a user's history."""

from __future__ import annotations

import random
import time

from aws_lambda_powertools.metrics import MetricUnit

from cashew import ids
from cashew.identity import Caller
from cashew.ledger import chain, store
from cashew.ledger.models import Direction, Entry, EntryList, Outcome
from cashew.observability import logger, metrics

APPEND_ATTEMPTS = 20


def affected(outcome: Outcome) -> list[tuple[str, Direction]]:
    """Who an outcome concerns: the payer (and the payee, once money reached them)."""
    if outcome.type == "top_up":
        return [(outcome.payer_id, "credit")]
    if outcome.type == "refund":  # money goes back from the payee to the payer
        if outcome.payer_id == outcome.payee_id:  # a refunded top-up leaves by the card
            return [(outcome.payee_id, "debit")]
        return [(outcome.payee_id, "debit"), (outcome.payer_id, "credit")]
    if outcome.status == "succeeded":
        return [(outcome.payer_id, "debit"), (outcome.payee_id, "credit")]
    return [(outcome.payer_id, "debit")]


def append_outcome(outcome: Outcome) -> int:
    """One entry per affected user; an outcome seen before adds nothing. Returns how many
    entries were appended."""
    appended = 0
    for user_id, direction in affected(outcome):
        appended += _append_for(user_id, direction, outcome)
    metrics.add_metric(name="LogEntriesAppended", unit=MetricUnit.Count, value=appended)
    return appended


def _append_for(user_id: str, direction: Direction, outcome: Outcome) -> int:
    for attempt in range(APPEND_ATTEMPTS):
        previous = store.head(user_id)
        fields = {
            "id": ids.new_id("txn"),
            "payment_id": outcome.payment_id,
            "user_id": user_id,
            "type": outcome.type,
            "direction": direction,
            "amount": outcome.amount,
            "currency": outcome.currency,
            "status": outcome.status,
            "failure_code": outcome.failure_code,
            "occurred_at": outcome.occurred_at,
            "seq": previous.seq + 1 if previous else 1,
            "prev_hash": previous.hash if previous else chain.GENESIS,
        }
        entry = Entry(**fields, hash=chain.entry_hash(fields))
        try:
            store.append(entry, outcome.outcome_id)
        except store.AlreadyAppended:
            logger.info("duplicate outcome ignored", extra={"outcome_id": outcome.outcome_id})
            return 0
        except store.ChainMoved:
            time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 - jitter, not crypto
            continue
        return 1
    raise RuntimeError(f"could not append to the chain of {user_id}: too much contention")


def list_transactions(caller: Caller, limit: int, cursor: str | None) -> EntryList:
    entries, next_cursor = store.list_entries(caller.user_id, limit, cursor)
    return EntryList(data=entries, has_more=next_cursor is not None, next_cursor=next_cursor)
