"""Reconciliation in `make bench`: one scheduled run over `--reconcile-items` stuck records
(default 1,000), half card payments left `processing` (their webhook lost), half
authorisations past CASHEW_AUTHORIZATION_TTL, written straight into the payments table as the
store writes them (so ReconcileIndex holds them), aged 8 days. The run asks the sandbox
about each processing charge and applies its answer (the webhook's write), and voids each
authorisation (the cancel operation); measured: AWS calls per record, records per second,
and a second run right after, which finds nothing due (its calls are the run's fixed cost:
one query per open status).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.harness import CallCounter, Driver, HarnessError, LocalStack, Request, Stack
from cashew import clock, ids
from cashew.payments import store as payments
from cashew.payments.models import PaymentResponse, PaymentStatus, Risk
from local.schedules import RECONCILE_FUNCTION, scheduled_event

AGE = timedelta(days=8)
_WRITE_BATCH = 25  # BatchWriteItem's most


def _checked(result: Any) -> Any:
    if not isinstance(result, dict) or result.get("failed"):
        raise HarnessError(f"the reconciliation run failed: {result}")
    return result


def run_request(stack: Stack) -> Request:
    """One scheduled run, as EventBridge invokes it on the template's schedule."""
    (schedule,) = stack.functions[RECONCILE_FUNCTION].schedule_events
    return Request(RECONCILE_FUNCTION, scheduled_event(schedule), _checked)


def _stuck(payer: str, payee: str, method: str, status: PaymentStatus) -> dict[str, Any]:
    at = clock.rfc3339(clock.now() - AGE)
    payment = PaymentResponse(
        id=ids.new_id("pay"), type="payment", status=status, amount=100, currency="USD",
        payer_id=payer, payee_id=payee, source={"type": "card", "payment_method_id": method},
        amount_captured=0, amount_refunded=0, failure_code=None, failure_message=None,
        risk=Risk(score=0, level="normal"), description=None, created_at=at, updated_at=at,
    )  # fmt: skip
    charge_id = "ch_sbx_" + secrets.token_hex(12)
    item: dict[str, Any] = payments.put_item(payment, [], charge_id)["Put"]["Item"]
    return item


def write_stuck(stack: LocalStack, items: int) -> dict[PaymentStatus, int]:
    """`items` stuck records (half processing, half expired authorisations) of two new users."""
    driver = Driver(stack)
    payer, payee = driver.new_account(), driver.new_account()
    method = driver.add_card(payer)
    table = str(stack.resources["PaymentsTable"]["Ref"])
    dynamodb = stack.clients("dynamodb")
    kinds: dict[PaymentStatus, int] = {
        "processing": items - items // 2,
        "requires_capture": items // 2,
    }
    rows = [_stuck(payer.id, payee.id, method, s) for s, n in kinds.items() for _ in range(n)]
    for start in range(0, len(rows), _WRITE_BATCH):
        batch = [{"PutRequest": {"Item": r}} for r in rows[start : start + _WRITE_BATCH]]
        pending: dict[str, Any] = {table: batch}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return kinds


def stuck_run(
    stack: LocalStack, counter: CallCounter, items: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    progress(f"reconciliation: writing {items} stuck records")
    os.environ["CASHEW_RECONCILE_MAX_ITEMS"] = str(items)  # the run may take them all
    kinds = write_stuck(stack, items)
    progress(f"reconciliation: one run over {items} stuck records")
    counter.install()
    try:
        request = run_request(stack)
        with counter.window() as calls:
            started = time.perf_counter()
            result = request.complete(stack.invoke(request.function_id, request.event))
            seconds = time.perf_counter() - started
        request = run_request(stack)
        with counter.window() as idle:
            again = request.complete(stack.invoke(request.function_id, request.event))
    finally:
        counter.uninstall()
    settled = sum(result["settled"].values())
    if settled != items or result["bounded"]:
        raise HarnessError(f"the run settled {settled} of {items} stuck records: {result}")
    if sum(again["settled"].values()):
        raise HarnessError(f"a second run settled something again: {again}")
    names = sorted(set(calls))
    return {
        "items": items,
        "by_status": kinds,
        "seconds": round(seconds, 2),
        "items_per_second": round(items / seconds, 1),
        "aws_calls": len(calls),
        "aws_calls_per_item": round(len(calls) / items, 2),
        "aws_calls_by_name": {n: calls.count(n) for n in names},
        "aws_io_ms_per_item": round(calls.io_ms / items, 2),
        "idle_run_aws_calls": len(idle),
        "settled": result["settled"],
    }
