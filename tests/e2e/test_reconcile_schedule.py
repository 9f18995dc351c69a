"""Reconciliation on the local stack, over HTTP: with short TTLs and a 1-second interval
(a stack of its own), the schedule read from template.yaml voids an expired authorisation by
itself; `make reconcile` (python -m local.reconcile) runs it once against a running stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import _STACK_VARIABLES, PASSWORD, REPO, Stack, User, add_card, launch

TTL = 30  # the least CASHEW_AUTHORIZATION_TTL accepted


@pytest.fixture(scope="module")
def short_ttls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_path = tmp_path_factory.mktemp("reconcile-stack") / "dev.log"
    env = {"CASHEW_RECONCILE_INTERVAL": "1", "CASHEW_AUTHORIZATION_TTL": str(TTL)}
    with launch(log_path, **env) as launched:
        if launched.exit_code is not None:
            pytest.fail(f"the local stack did not come up:\n{log_path.read_text()[-4000:]}")
        yield launched.stack
        launched.stop()  # and it stops cleanly (exit 0 on SIGTERM) with its schedules running


def _user(stack: Stack) -> User:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = stack.request(
        "POST", "/v1/users", json={"email": email, "password": PASSWORD, "name": "Reconcile"}
    )
    assert created.status_code == 201, created.text
    login = stack.request("POST", "/v1/auth/login", json={"email": email, "password": PASSWORD})
    body = login.json()
    return User(created.json()["id"], email, PASSWORD, body["access_token"], body["refresh_token"])


def _authorise(stack: Stack, payer: User, payee: User, amount: int) -> dict[str, object]:
    card = add_card(stack, payer)
    reply = stack.request(
        "POST", "/v1/payments", payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": amount, "currency": "USD", "payee_id": payee.id, "capture": False,
              "source": {"type": "card", "payment_method_id": card}},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    body: dict[str, object] = reply.json()
    assert body["status"] == "requires_capture" and body["cancellation_reason"] is None
    return body


def test_the_schedule_voids_an_expired_authorisation_by_itself(short_ttls: Stack) -> None:
    stack = short_ttls
    payer, payee = _user(stack), _user(stack)
    authorised = _authorise(stack, payer, payee, 1_500)
    created = time.monotonic()
    # When nobody calls anything but GET for longer than CASHEW_AUTHORIZATION_TTL
    payment: dict[str, object] = {}
    while time.monotonic() - created < TTL + 30:
        reply = stack.request("GET", f"/v1/payments/{authorised['id']}", payer.token)
        payment = reply.json()
        if payment["status"] != "requires_capture":
            break
        time.sleep(1)
    # Then the scheduled run voided it, not before its TTL: canceled, because it expired
    assert (payment["status"], payment["cancellation_reason"]) == ("canceled", "expired")
    assert time.monotonic() - created >= TTL - 2
    # ... and nothing moved; the runs logged one line each
    assert stack.request("GET", "/v1/users/me/balances", payee.token).json()["data"] == []
    assert stack.logs().count('"message":"reconciliation run"') >= TTL - 5


def test_make_reconcile_runs_once_against_the_running_stack(short_ttls: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STACK_VARIABLES)}
    env["PYTHONPATH"] = f"{REPO / 'layers/shared/python'}{os.pathsep}{REPO}"
    done = subprocess.run(
        [sys.executable, "-m", "local.reconcile", "--endpoint", short_ttls.aws_url],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary) == {"settled", "left", "failed", "bounded"}
    assert summary["failed"] == {} and summary["bounded"] is False
