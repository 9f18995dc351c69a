"""The per-user hash chain: hash = SHA-256(canonical entry without its hash, incl. prev_hash)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def entry_hash(fields: dict[str, Any]) -> str:
    body = {k: v for k, v in fields.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
