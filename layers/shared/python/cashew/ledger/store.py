"""The transaction log table. Append-only: every write is a Put with attribute_not_exists.

Items (pk / sk):
    USER#<id> / SEQ#<seq, 12 digits>     an entry of the user's chain
    USER#<id> / OUTCOME#<outcome id>     marks an outcome as appended (deduplication)
"""

from __future__ import annotations

import re
from typing import Any

from cashew import cursor as cursor_codec
from cashew import dynamo
from cashew.config import get_settings
from cashew.ledger.models import Entry

SEQ_WIDTH = 12


def _table() -> str:
    return get_settings().log_table


def _pk(user_id: str) -> str:
    return f"USER#{user_id}"


def _sk(seq: int) -> str:
    return f"SEQ#{seq:0{SEQ_WIDTH}d}"


def head(user_id: str) -> Entry | None:
    """The newest entry of the user's chain (strongly consistent)."""
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :seq)",
        {":pk": _pk(user_id), ":seq": "SEQ#"},
        limit=1,
        newest_first=True,
        consistent=True,
    )
    return _entry(items[0]) if items else None


class AlreadyAppended(Exception):
    """The outcome is already in the user's chain."""


class ChainMoved(Exception):
    """Another writer appended at this seq first; re-read the head and retry."""


def append(entry: Entry, outcome_id: str) -> None:
    """The entry and its dedupe marker in one transaction, both conditional on being new:
    a chain can never fork and an outcome is never appended twice."""
    table = _table()
    marker = {"pk": _pk(entry.user_id), "sk": f"OUTCOME#{outcome_id}", "seq": entry.seq}
    item = {"pk": _pk(entry.user_id), "sk": _sk(entry.seq), **entry.model_dump(mode="json")}
    try:
        dynamo.transact_write(
            [
                {
                    "Put": {
                        "TableName": table,
                        "Item": dynamo.serialize(marker),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": dynamo.serialize(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0):
            raise AlreadyAppended(outcome_id) from exc
        if exc.failed(1) or exc.conflict:
            raise ChainMoved(entry.user_id) from exc
        raise


def _entry(item: dict[str, Any]) -> Entry:
    return Entry.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})


_SEQ_KEY = re.compile(rf"SEQ#\d{{{SEQ_WIDTH}}}")
_USER_KEY = re.compile(r"USER#usr_[0-9A-Z]{26}")


def list_entries(user_id: str, limit: int, cursor: str | None) -> tuple[list[Entry], str | None]:
    """The user's entries, newest first, and the cursor of the next page (None at the end)."""
    fields = {"pk": _USER_KEY, "sk": _SEQ_KEY}
    start = cursor_codec.decode(cursor, fields, pk=_pk(user_id)) if cursor else None
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :seq)",
        {":pk": _pk(user_id), ":seq": "SEQ#"},
        limit=limit + 1,
        newest_first=True,
        start_key=start,
    )
    page = items[:limit]
    last = page[-1] if len(items) > limit else None
    next_cursor = cursor_codec.encode({"pk": last["pk"], "sk": last["sk"]}) if last else None
    return [_entry(i) for i in page], next_cursor
