"""The per-user hash chain: hash = SHA-256(canonical entry without its hash, incl. prev_hash).

Verification trusts nothing it reads: it takes the stored items as they are (an edited item
may not even be a valid entry) and names the first position where the chain stops being
what was appended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from cashew.ledger.models import ChainCheck
from cashew.ledger.store import ChainItem, Marker

GENESIS = "0" * 64


# The fields are JSON as stored, not an Entry: an edited item may hold anything.
def entry_hash(fields: Mapping[str, object]) -> str:
    body = {k: v for k, v in fields.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def verify(user_id: str, entries: Iterable[ChainItem], markers: Iterable[Marker]) -> ChainCheck:
    """`entries` are the stored entry items in position order. Detects an edited entry
    (its hash, or the next entry's link), a missing one (a gap, or an append record past
    the head), a moved one (its seq is not its position), a forged one (no append record
    names it: also one repeating an appended outcome, whose record names the first) and an
    entry of another user."""
    problems: list[tuple[int, str]] = []
    expected, prev = 1, GENESIS
    appended: dict[int, Mapping[str, object]] = {}
    for item in entries:
        problem = _problem(user_id, expected, prev, item)
        if problem:
            problems.append((expected, problem))
            break  # everything after the first break is unverifiable
        appended[item.position] = item.fields
        prev = str(item.fields["hash"])
        expected += 1
    count = len(appended)
    recorded: dict[str, object] = {}  # outcome id -> the seq its append record names
    for marker in markers:
        recorded[marker.outcome_id] = marker.seq
        seq = marker.seq if isinstance(marker.seq, int) else 0
        entry = appended.get(seq)
        if seq > count and not problems:
            problems.append((count + 1, f"entry {count + 1} is missing"))
        elif entry is not None and (
            entry.get("hash") != marker.hash or entry.get("outcome_id") != marker.outcome_id
        ):
            problems.append((seq, f"entry {seq} differs from what was appended"))
    problems += [  # an entry is appended where its outcome's record says, and only there
        (seq, f"entry {seq} was never appended")
        for seq, fields in appended.items()
        if recorded.get(str(fields.get("outcome_id"))) != seq
    ]
    if not problems:
        return ChainCheck(valid=True, entries=count, head_hash=prev)
    seq, problem = min(problems)
    return ChainCheck(
        valid=False, entries=count, head_hash=prev, first_bad_seq=seq, problem=problem
    )


def _problem(user_id: str, expected: int, prev: str, item: ChainItem) -> str | None:
    position, fields = item.position, item.fields
    if position != expected:
        return f"entry {expected} is missing"
    if item.unreadable is not None:
        return f"entry {expected} cannot be read ({item.unreadable})"
    checks = (
        (fields.get("seq") == position, f"holds the entry of seq {fields.get('seq')}"),
        (fields.get("user_id") == user_id, "belongs to another user"),
        (fields.get("prev_hash") == prev, f"does not link to entry {expected - 1}"),
        (_intact(fields), "was altered"),
    )
    return next((f"entry {expected} {what}" for ok, what in checks if not ok), None)


def _intact(fields: Mapping[str, object]) -> bool:
    try:
        return fields.get("hash") == entry_hash(fields)
    except (TypeError, ValueError):  # a value JSON cannot hold: a set, bytes
        return False
