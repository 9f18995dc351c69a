"""The fuzzing gate (`make fuzz`, part of `make test`): schemathesis against the committed
OpenAPI document and the running local stack, every operation, every phase.

The stack is seeded first, as a client would over HTTP, so that the fuzzer works with a real
access token and real ids: a payer and a payee, an admin, cards, a top-up, payments (one
captured, one awaiting capture), a refund, a log entry and a dispute, spare sessions and a
spare card to delete. Each path parameter then draws its value from those ids most of the
time (a schemathesis dictionary), and from the schema otherwise. The operations that spend
what they touch (logout, revoking a session, deleting a card) get throwaway credentials and
ids, so that they do not take the token or the card away from the rest of the run.

Any finding of any check fails the test, and schemathesis's own summary (operations,
requests, failures) is printed. The budget (`FUZZ_MAX_EXAMPLES`, `FUZZ_MAX_TIME` seconds)
keeps the whole run to a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    REPO,
    Stack,
    User,
    add_card,
    top_up,
    wait_for_entries,
)

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

DOCUMENT = REPO / "functions" / "docs" / "openapi.json"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "150"))  # seconds, for the whole run
SEED = os.environ.get("FUZZ_SEED")  # set it to replay a run


def _toml(value: Any) -> str:
    """`value` as a TOML value (JSON's strings, numbers and arrays are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


def _ok(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, f"{reply.request.method} {reply.url}: {reply.text}"
    body: dict[str, Any] = reply.json() if reply.content else {}
    return body


def _login(stack: Stack, email: str, password: str) -> dict[str, Any]:
    reply = stack.request("POST", "/v1/auth/login", json={"email": email, "password": password})
    return _ok(reply, 200)


def _pay(stack: Stack, payer: User, payee: User, source: dict[str, str], **extra: Any) -> str:
    reply = stack.request(
        "POST",
        "/v1/payments",
        payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 2500, "currency": "USD", "payee_id": payee.id, "source": source, **extra},
    )
    return str(_ok(reply, 201)["id"])


def seed(stack: Stack, new_user: Callable[..., User]) -> dict[str, Any]:
    """Real data for the fuzzer, made over HTTP; the ids it found, by kind."""
    payer, payee = new_user("Fuzz Payer"), new_user("Fuzz Payee")
    admin = _login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)
    card = add_card(stack, payer)
    spare_card = add_card(stack, payer)
    top_up_id = str(top_up(stack, payer, card, 400_000).json()["id"])
    paid = _pay(stack, payer, payee, {"type": "balance"})
    held = _pay(stack, payer, payee, {"type": "card", "payment_method_id": card}, capture=False)
    refunded = _pay(stack, payer, payee, {"type": "balance"})
    refund = _ok(
        stack.request(
            "POST",
            f"/v1/payments/{refunded}/refunds",
            payee.token,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"amount": 100},
        ),
        201,
    )["id"]
    entries = wait_for_entries(stack, payer.token, type="payment", status="succeeded")
    assert entries, "the log has no succeeded payment of the payer"
    disputed = next(e for e in entries if e.get("payment_id") == paid)["id"]
    dispute = _ok(
        stack.request(
            "POST",
            f"/v1/transactions/{disputed}/disputes",
            payer.token,
            json={"reason": "product_not_received"},
        ),
        201,
    )["id"]
    # revoking sessions is fuzzed as a user of its own, so that no link or id can revoke the
    # payer's session; logout spends a throwaway session of that user
    revoker = new_user("Fuzz Revoker")
    spare_session = _login(stack, revoker.email, revoker.password)["session_id"]
    throwaway = _login(stack, revoker.email, revoker.password)["access_token"]
    sessions = _ok(stack.request("GET", "/v1/auth/sessions", payer.token), 200)["data"]
    return {
        "payer": payer,
        "payee": payee,
        "admin_token": admin["access_token"],
        "throwaway_token": throwaway,
        "revoker_token": revoker.token,
        "users": [payer.id, payee.id],
        "payment_methods": [card],
        "spare_payment_method": spare_card,
        "payments": [paid, held, refunded, top_up_id],
        "refunds": [refund],
        "transactions": [e["id"] for e in entries],
        "disputes": [dispute],
        "spare_session": spare_session,
        "sessions": [s["id"] for s in sessions],
    }


def _operation(
    name: str | Sequence[str], *, token: str | None = None, ids: str | None = None, **extra: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {"include-name": list(name) if not isinstance(name, str) else name}
    if token is not None:
        operation["headers"] = {"Authorization": f"Bearer {token}"}
    if ids is not None:
        operation["parameters"] = {"path.id": {"dictionary": ids, "probability": 0.8}}
    operation.update(extra)
    return operation


def config(data: Mapping[str, Any], report_dir: Path) -> str:
    """schemathesis.toml for this run."""
    payer, payee = data["payer"], data["payee"]
    dictionaries = {
        name: {"values": list(data[name])}
        for name in ("users", "payment_methods", "payments", "refunds", "transactions", "disputes")
    }
    dictionaries["spare_payment_method"] = {"values": [data["spare_payment_method"]]}
    dictionaries["spare_session"] = {"values": [data["spare_session"]]}
    operations = [
        # the payee captures, refunds and sees its refunds; the payer does everything else
        _operation(
            [
                "POST /v1/payments/{id}/capture",
                "POST /v1/payments/{id}/refunds",
                "GET /v1/payments/{id}/refunds",
            ],
            token=payee.token,
            ids="payments",
        ),
        _operation(["GET /v1/payments/{id}", "POST /v1/payments/{id}/cancel"], ids="payments"),
        _operation(
            ["GET /v1/transactions/{id}", "POST /v1/transactions/{id}/disputes"],
            ids="transactions",
        ),
        _operation(
            [
                "GET /v1/admin/audit/verify",
                "GET /v1/admin/disputes",
                "GET /v1/admin/reports/summary",
                "GET /v1/admin/reports/transactions.csv",
                "GET /v1/admin/transactions",
            ],
            token=data["admin_token"],
        ),
        _operation(
            "POST /v1/admin/disputes/{id}/resolve", token=data["admin_token"], ids="disputes"
        ),
        _operation("GET /v1/users/me/payment-methods/{id}", ids="payment_methods"),
        _operation("DELETE /v1/users/me/payment-methods/{id}", ids="spare_payment_method"),
        _operation(
            "DELETE /v1/auth/sessions/{id}", token=data["revoker_token"], ids="spare_session"
        ),
        _operation("POST /v1/auth/logout", token=data["throwaway_token"]),
    ]
    lines = [
        f"max-time = {MAX_TIME}",
        *([f"seed = {SEED}"] if SEED else []),
        "continue-on-failure = true",
        "request-timeout = 30",
        "workers = 1",  # the local stack's AWS endpoint serves one request at a time
        "",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "",
        "[checks]",
        "enabled = true",
        # Valid by the schema is not always acceptable: Cashew also applies rules a JSON Schema
        # cannot state (a Luhn-valid card number, a range of at most 366 days, a cursor this
        # list gave, an Idempotency-Key not used for another request, a refund within what is
        # left, a signed webhook, and no 1.0 for the integer 1), and answers those with the
        # documented 400/422. Every other status stays a finding.
        "",
        "[checks.positive_data_acceptance]",
        'expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429"]',
        "",
        "[auth.openapi.CashewAuthorizer]",
        f"bearer = {_toml(payer.token)}",
        "",
        "[reports]",
        f"directory = {_toml(str(report_dir))}",
        "",
    ]
    for name, definition in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(definition['values'])}", ""]
    # ids in bodies and queries: real ones most of the time
    real = {
        "body.payee_id": "users",
        "body.payment_method_id": "payment_methods",
        "body.source.payment_method_id": "payment_methods",
        "query.user_id": "users",
    }
    lines.append("[parameters]")
    lines += [
        f"{json.dumps(k)} = {_toml({'dictionary': v, 'probability': 0.7})}" for k, v in real.items()
    ]
    lines.append("")
    for operation in operations:
        lines.append("[[operations]]")
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in operation.items()]
        lines.append("")
    return "\n".join(lines)


def test_schemathesis_finds_nothing(
    stack: Stack, new_user: Callable[..., User], tmp_path: Path
) -> None:
    data = seed(stack, new_user)
    config_path = tmp_path / "schemathesis.toml"
    config_path.write_text(config(data, tmp_path / "report"), encoding="utf-8")
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is not installed (requirements-dev.txt)"
    command = [
        executable,
        "--no-color",
        "--config-file",
        str(config_path),
        "run",
        str(DOCUMENT),
        "--url",
        stack.url,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--checks",
        "all",
        # API Gateway (REST) answers a method that a resource does not route with its own
        # 403 Missing Authentication Token (404 problem+json here, template.yaml
        # GatewayResponses), never 405, and the local stack does as it does.
        "--exclude-checks",
        "unsupported_method",
    ]
    started = time.monotonic()
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=MAX_TIME + 240, check=False
    )
    elapsed = time.monotonic() - started
    (tmp_path / "schemathesis.out").write_text(run.stdout + run.stderr, encoding="utf-8")
    print(run.stdout)
    print(run.stderr, file=sys.stderr)
    print(f"schemathesis ran for {elapsed:.0f} s: {' '.join(command[1:3])} ...")
    assert run.returncode == 0, f"schemathesis found problems (exit {run.returncode}); see above"
