"""Settling a pending payout: one conditional write for every way its outcome arrives.

The request's own gateway answer, a retry under the same key, the gateway's webhook and
reconciliation's `settle_pending` all write `settlement`: the payout's move out of `pending`
(conditional on it still being pending) and, for a failure, the credit back of what the
admission debited, in the same transaction. Whichever comes first settles it; the others'
condition fails and they change nothing, so the reversal happens at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from aws_lambda_powertools.metrics import MetricUnit

from cashew import dynamo
from cashew.accounts import cards
from cashew.accounts import face as accounts
from cashew.config import get_settings
from cashew.gateways import get_gateway
from cashew.gateways.base import (
    GATEWAY_ERROR_PAYOUT,
    GatewayOutcomeUnknownError,
    GatewayPayout,
    PayoutEvent,
    with_retries,
)
from cashew.observability import logger, metrics
from cashew.payouts import store
from cashew.payouts.store import StoredPayout


def settled(stored: StoredPayout, answer: GatewayPayout) -> StoredPayout:
    """The payout as the gateway's answer leaves it (still `pending` for a pending one)."""
    if answer.status == "pending":  # unchanged but for the gateway's id (not in the answer)
        return replace(stored, gateway_payout_id=answer.id or stored.gateway_payout_id)
    if answer.status == "failed":
        code = answer.failure_code or "card_declined"
        message = answer.failure_message or "the payout was declined"
        return stored.settled("failed", code, message, answer.id)
    return stored.settled("paid", gateway_payout_id=answer.id)


def settlement(
    stored: StoredPayout, answer: GatewayPayout
) -> tuple[StoredPayout, dynamo.Transaction]:
    """The payout after `answer`, and the write that records it: a pending payout's move to
    `paid`, or to `failed` with its money credited back; for an answer that is still
    pending, only the gateway's id (each conditional on the payout still being pending)."""
    after = settled(stored, answer)
    p = after.payout
    if p.status == "pending":
        return after, dynamo.Transaction().add("payout", store.note_gateway_item(p.id, answer.id))
    tx = dynamo.Transaction().add("payout", store.settle_item(after))
    if p.status == "failed":
        tx.add("credit", accounts.credit_item(after.user_id, p.currency, p.amount))
    return after, tx


def gateway_call(
    stored: StoredPayout, method: accounts.PaymentMethod, key: str
) -> Callable[[], GatewayPayout]:
    """The gateway's payout to `method`'s card under `key` (the token unsealed only here)."""
    sealed = cards.SealedToken(
        ciphertext=method.token_ciphertext, nonce=method.token_nonce, data_key=method.token_data_key
    )
    token = cards.unseal(sealed, stored.user_id, method.id)
    p = stored.payout
    return lambda: get_gateway().payout(
        token, p.amount, p.currency, idempotency_key=key, metadata={"payout_id": p.id}
    )


def ask(stored: StoredPayout, key: str) -> GatewayPayout:
    """Ask the gateway (bounded retries) for the payout under `key`; raises
    GatewayOutcomeUnknownError when no attempt got an answer."""
    method = accounts.get_payment_method(stored.user_id, stored.payout.payment_method_id)
    if method is None:  # the card was deleted: asking under the key needs its token
        raise GatewayOutcomeUnknownError("the payout's payment method is gone")
    attempts = get_settings().gateway_max_attempts
    return with_retries(
        gateway_call(stored, method, key), attempts=attempts, failure=GATEWAY_ERROR_PAYOUT
    )


def settle_pending(payout_id: str) -> str:
    """For reconciliation: ask the gateway about a payout that is still `pending`, under the
    payout's key, and apply the same conditional write a webhook would. Returns what it did:
    `not_found`, `not_pending` (settled already), `unknown` (the gateway gave no answer),
    `pending` (it still says pending), `lost_race` (settled meanwhile by someone else),
    `paid` or `failed`."""
    stored = store.get(payout_id)
    if stored is None:
        return "not_found"
    if stored.payout.status != "pending":
        return "not_pending"
    try:
        answer = ask(stored, stored.gateway_key)
    except GatewayOutcomeUnknownError:
        return "unknown"
    after, tx = settlement(stored, answer)
    if after.payout.status == "pending":
        return "pending"
    try:
        tx.write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("payout"):
            return "lost_race"
        raise
    _count(after)
    return after.payout.status


def webhook_effect(event: PayoutEvent) -> dynamo.Transaction:
    """What the gateway's payout event writes (with its dedupe marker): the settlement of the
    pending payout it names; nothing for an unknown, foreign or settled payout, or for an
    event whose amount or currency is not the payout's (logged and counted)."""
    stored = store.get(event.payout_id) if event.payout_id else None
    if stored is None or (
        stored.gateway_payout_id is not None and stored.gateway_payout_id != event.gateway_payout_id
    ):
        logger.info("payout webhook for no payout of ours", extra={"event_id": event.id})
        return dynamo.Transaction()
    p = stored.payout
    if (event.amount is not None and event.amount != p.amount) or (
        event.currency is not None and event.currency.upper() != p.currency
    ):
        metrics.add_metric(name="WebhookAmountRefused", unit=MetricUnit.Count, value=1)
        logger.error(
            "payout webhook refused: amount or currency is not the payout's",
            extra={"event_id": event.id, "payout_id": p.id},
        )
        return dynamo.Transaction()
    if p.status != "pending":
        return dynamo.Transaction()
    answer = GatewayPayout(event.gateway_payout_id, event.status, event.failure_code)
    return settlement(stored, answer)[1]


def _count(after: StoredPayout) -> None:
    metrics.add_metric(name=f"Payout_{after.payout.status}", unit=MetricUnit.Count, value=1)
