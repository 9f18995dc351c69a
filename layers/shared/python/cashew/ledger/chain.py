"""The per-user hash chain: hash = SHA-256(canonical entry without its hash, incl. prev_hash).

Verification trusts nothing it reads: it takes the stored items as they are (an edited item
may not even be a valid entry) and names the first position where the chain stops being
what was appended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cashew.ledger.models import ChainCheck

GENESIS = "0" * 64
UNREADABLE = "__unreadable__"  # the store's mark on an item it could not read


def entry_hash(fields: Mapping[str, Any]) -> str:
    body = {k: v for k, v in fields.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Marker:
    """The record, written in the same transaction as the entry, that an outcome was
    appended at `seq` with `hash`."""

    outcome_id: str
    seq: Any
    hash: Any


def verify(
    user_id: str, entries: Iterable[tuple[int, Mapping[str, Any]]], markers: Iterable[Marker]
) -> ChainCheck:
    """`entries` are (position in the table, stored fields) in position order. Detects an
    edited entry (its hash, or the next entry's link), a missing one (a gap, or an append
    record past the head), a moved one (its seq is not its position), a forged one (no
    append record) and an entry of another user."""
    problems: list[tuple[int, str]] = []
    expected, prev = 1, GENESIS
    appended: dict[int, Mapping[str, Any]] = {}
    for position, fields in entries:
        problem = _problem(user_id, expected, prev, position, fields)
        if problem:
            problems.append((expected, problem))
            break  # everything after the first break is unverifiable
        appended[position] = fields
        prev = str(fields["hash"])
        expected += 1
    count = len(appended)
    recorded: set[str] = set()
    for marker in markers:
        recorded.add(marker.outcome_id)
        seq = marker.seq if isinstance(marker.seq, int) else 0
        entry = appended.get(seq)
        if seq > count and not problems:
            problems.append((count + 1, f"entry {count + 1} is missing"))
        elif entry is not None and (
            entry.get("hash") != marker.hash or entry.get("outcome_id") != marker.outcome_id
        ):
            problems.append((seq, f"entry {seq} differs from what was appended"))
    problems += [
        (seq, f"entry {seq} was never appended")
        for seq, fields in appended.items()
        if fields.get("outcome_id") not in recorded
    ]
    if not problems:
        return ChainCheck(valid=True, entries=count, head_hash=prev)
    seq, problem = min(problems)
    return ChainCheck(
        valid=False, entries=count, head_hash=prev, first_bad_seq=seq, problem=problem
    )


def _problem(
    user_id: str, expected: int, prev: str, position: int, fields: Mapping[str, Any]
) -> str | None:
    if position != expected:
        return f"entry {expected} is missing"
    if UNREADABLE in fields:
        return f"entry {expected} cannot be read ({fields[UNREADABLE]})"
    checks = (
        (fields.get("seq") == position, f"holds the entry of seq {fields.get('seq')}"),
        (fields.get("user_id") == user_id, "belongs to another user"),
        (fields.get("prev_hash") == prev, f"does not link to entry {expected - 1}"),
        (_intact(fields), "was altered"),
    )
    return next((f"entry {expected} {what}" for ok, what in checks if not ok), None)


def _intact(fields: Mapping[str, Any]) -> bool:
    try:
        return fields.get("hash") == entry_hash(fields)
    except (TypeError, ValueError):  # a value JSON cannot hold: a set, bytes
        return False
