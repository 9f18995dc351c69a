"""E2E fixtures: the local stack (`python -m local.dev`, what `make dev` runs) on free ports,
driven over HTTP as a client would. Set CASHEW_E2E_URL (and CASHEW_E2E_AWS_URL) to test a
stack that is already running instead."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.support.secrets_seen import SecretsSeen

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "admin@cashew.local"
ADMIN_PASSWORD = "an admin passphrase for e2e"
GATEWAY_SECRET_NAME = "cashew-GatewaySecret"  # its physical name on the local stack


_STACK_VARIABLES = ("CASHEW_", "AWS_", "POWERTOOLS_")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    url: str
    aws_url: str
    log_path: Path | None
    http: requests.Session
    seen: SecretsSeen = field(default_factory=SecretsSeen)

    def __post_init__(self) -> None:
        self.http.hooks["response"].append(self.seen.hook)

    def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if url := os.environ.get("CASHEW_E2E_URL"):
        yield Stack(
            url,
            os.environ.get("CASHEW_E2E_AWS_URL", "http://127.0.0.1:4566"),
            None,
            requests.Session(),
        )
        return
    log_path = tmp_path_factory.mktemp("stack") / "dev.log"
    with launch(log_path) as launched:
        if launched.exit_code is not None:
            pytest.fail(f"the local stack did not come up:\n{log_path.read_text()[-4000:]}")
        yield launched.stack
        launched.stop()


@dataclass
class Launched:
    """A `python -m local.dev` process: its stack once it answers, or its exit code."""

    process: subprocess.Popen[bytes]
    stack: Stack
    exit_code: int | None

    def stop(self) -> None:
        """Stop the stack, once its tables and log are found to hold no secret its clients
        sent or were sent in clear (every password, reset or verification token, TOTP secret,
        recovery code and webhook secret that crossed its API)."""
        leaks = self.stack.seen.leaks(self.stack.aws_url, self.stack.log_path)
        self.process.send_signal(signal.SIGTERM)
        try:
            # Its pools give running workers 10 s; the rest (pollers, schedules, the API, the
            # embedded endpoint) stops in a few seconds idle, far slower on a loaded machine
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # faulthandler: every thread's traceback
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.process.kill()
            pytest.fail(f"the local stack did not stop on SIGTERM:\n{self.stack.logs()[-8000:]}")
        assert code == 0, f"the local stack exited with {code} on SIGTERM"
        assert not leaks, "secrets in clear after the run:\n" + "\n".join(leaks)


@contextlib.contextmanager
def launch(log_path: Path, timeout: float = 90, **env: str) -> Iterator[Launched]:
    """Start the local stack as `make dev` does, on free ports, with `env` over its
    environment (CASHEW_LOCAL_PARAMETERS, say); wait until it answers or exits. The process
    is killed at the end of the block if it still runs (`Launched.stop` stops it cleanly)."""
    port, aws_port = _free_port(), _free_port()
    # What the integration fixtures put in this process's environment (their stack's tables,
    # endpoint and credentials) must not reach the stack under test.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_STACK_VARIABLES)}
    full_env = {
        **inherited,
        "PORT": str(port),
        "CASHEW_AWS_PORT": str(aws_port),
        "PYTHONPATH": f"{REPO / 'layers/shared/python'}{os.pathsep}{REPO}",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",  # the leak test reads everything that is logged
        "PYTHONFAULTHANDLER": "1",  # a stack that will not stop shows where it hangs
        "CASHEW_ADMIN_EMAIL": ADMIN_EMAIL,
        "CASHEW_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.dev"],
            cwd=REPO,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    stack = Stack(url, f"http://127.0.0.1:{aws_port}", log_path, requests.Session())
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if requests.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a cold start
                pass
            if process.poll() is not None:
                break
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the local stack neither came up nor exited:\n{stack.logs()[-4000:]}")
            time.sleep(0.3)
        yield Launched(process, stack, process.poll())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def gateway_webhook_secret(stack: Stack) -> str:
    """The webhook secret the stack's sandbox gateway signs and verifies with: the
    `webhook_secret` of its GatewaySecret (generated when the stack is provisioned), read from
    the embedded AWS endpoint."""
    secretsmanager = boto3.client(
        "secretsmanager",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    value = secretsmanager.get_secret_value(SecretId=GATEWAY_SECRET_NAME)["SecretString"]
    return str(json.loads(value)["webhook_secret"])


@dataclass
class User:
    id: str
    email: str
    password: str
    token: str
    refresh_token: str


@pytest.fixture
def new_user(stack: Stack) -> Callable[..., User]:
    def make(name: str = "E2E User", password: str = PASSWORD) -> User:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        created = stack.request(
            "POST", "/v1/users", json={"email": email, "password": password, "name": name}
        )
        assert created.status_code == 201, created.text
        login = stack.request("POST", "/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        body = login.json()
        return User(
            created.json()["id"], email, password, body["access_token"], body["refresh_token"]
        )

    return make


def add_card(stack: Stack, user: User, number: str = "4242424242424242", cvc: str = "123") -> str:
    reply = stack.request(
        "POST",
        "/v1/users/me/payment-methods",
        user.token,
        json={"card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": cvc}},
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def top_up(stack: Stack, user: User, method_id: str, amount: int) -> requests.Response:
    reply = stack.request(
        "POST",
        "/v1/top-ups",
        user.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": amount, "currency": "USD", "payment_method_id": method_id},
    )
    assert reply.status_code == 201, reply.text
    return reply


def pay(
    stack: Stack, payer: User, payee_id: str, amount: int, key: str | None = None, **extra: Any
) -> requests.Response:
    """A balance payment in USD, with its own Idempotency-Key unless `key` is given."""
    return stack.request(
        "POST",
        "/v1/payments",
        payer.token,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
        json={
            "amount": amount,
            "currency": "USD",
            "payee_id": payee_id,
            "source": {"type": "balance"},
            **extra,
        },
    )


def balance(stack: Stack, user: User, currency: str = "USD") -> int:
    reply = stack.request("GET", "/v1/users/me/balances", user.token)
    assert reply.status_code == 200, reply.text
    return next((b["available"] for b in reply.json()["data"] if b["currency"] == currency), 0)


def wait_for_entries(
    stack: Stack, token: str, timeout: float = 20, **match: Any
) -> list[dict[str, Any]]:
    """The caller's log entries whose fields equal `match`, once the consumer has appended
    at least one (the log is written asynchronously from the queue)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = stack.request("GET", "/v1/transactions?limit=100", token)
        assert reply.status_code == 200, reply.text
        entries = [e for e in reply.json()["data"] if all(e.get(k) == v for k, v in match.items())]
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.3)
