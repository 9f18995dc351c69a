"""What payment operations share: their result, replays, and the money transaction."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from cashew import dynamo
from cashew.errors import ConflictError, RateLimitedError
from cashew.payments import idempotency

TRANSACTION_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Result:
    """What the handler returns: the status and JSON body, and whether it is a replay."""

    status_code: int
    body: str
    replayed: bool = False


def replay(recorded: idempotency.Replay) -> Result:
    """The recorded response, as the first request got it."""
    return Result(recorded.status_code, recorded.body, replayed=True)


def transact(items: list[dict[str, Any]]) -> None:
    """TransactWriteItems, retrying contention and throttling (never condition failures);
    when they persist, 409 or 429 rather than a 5xx. Nothing was written in either case."""
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            dynamo.transact_write(items)
            return
        except dynamo.TransactionCanceled as exc:
            if not exc.retryable:
                raise
            if attempt + 1 == TRANSACTION_ATTEMPTS:
                if exc.throttled:
                    raise RateLimitedError(
                        "too many requests for this account; retry shortly",
                        headers={"Retry-After": "1"},
                    ) from exc
                raise ConflictError("the account is busy; retry the request") from exc
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 # nosec B311 # jitter
