"""The notifications table: one claim per email, so an outcome emails each recipient once.

Items (pk / sk):
    OUTCOME#<outcome id> / TO#<user id>   `Claim`: the email of that outcome to that user is
                                          being sent (`sending`) or was sent (`sent`, with
                                          SES's message id); `expires_at` is its TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from cashew import dynamo
from cashew.config import get_settings

State = Literal["sending", "sent"]
RETENTION_SECONDS = 30 * 86400  # past the queue's 4 days and the DLQ's 14: no redrive resends


def _table() -> str:
    table = get_settings().notifications_table
    if table is None:
        raise RuntimeError("CASHEW_NOTIFICATIONS_TABLE is not set")
    return table


def _key(outcome_id: str, user_id: str) -> dict[str, str]:
    return {"pk": f"OUTCOME#{outcome_id}", "sk": f"TO#{user_id}"}


@dataclass(frozen=True, slots=True)
class Claim:
    outcome_id: str
    user_id: str
    token: str  # whose claim: only its holder releases it or marks it sent
    state: State
    claimed_at: str
    expires_at: int
    message_id: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_key(self.outcome_id, self.user_id),
            "token": self.token,
            "state": self.state,
            "claimed_at": self.claimed_at,
            "expires_at": self.expires_at,
        }
        if self.message_id is not None:
            item["message_id"] = self.message_id
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            outcome_id=str(item["pk"]).removeprefix("OUTCOME#"),
            user_id=str(item["sk"]).removeprefix("TO#"),
            token=item["token"],
            state=item["state"],
            claimed_at=item["claimed_at"],
            expires_at=int(item["expires_at"]),
            message_id=item.get("message_id"),
        )


def claim(new: Claim) -> bool:
    """The claim, unless the email was claimed before (by anyone: False, nothing written)."""
    try:
        dynamo.put_item(_table(), new.to_item(), condition="attribute_not_exists(pk)")
    except dynamo.ConditionFailed:
        return False
    return True


def mark_sent(held: Claim, message_id: str) -> bool:
    """The claim is `sent` (False if it is not ours any more)."""
    try:
        dynamo.update_item(
            _table(),
            _key(held.outcome_id, held.user_id),
            "SET #state = :sent, message_id = :message",
            {":sent": "sent", ":message": message_id, ":token": held.token},
            condition="#token = :token",
            names={"#state": "state", "#token": "token"},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def release(held: Claim) -> bool:
    """Forget the claim, for a send SES certainly refused, so a retry sends (False: it was
    not ours, or is `sent`)."""
    try:
        dynamo.delete_item(
            _table(),
            _key(held.outcome_id, held.user_id),
            "#token = :token AND #state = :sending",
            values={":token": held.token, ":sending": "sending"},
            names={"#token": "token", "#state": "state"},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def get(outcome_id: str, user_id: str) -> Claim | None:
    item = dynamo.get_item(_table(), _key(outcome_id, user_id))
    return Claim.from_item(item) if item else None
