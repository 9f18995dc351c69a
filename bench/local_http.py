"""The local stack's throughput: balance payments/s over HTTP with 8 clients, against the
embedded endpoint's raw TransactWriteItems/s, measured in the same run.

`python -m local.dev` is started on free ports (as `make dev` runs it). Each client has a
payer of its own (a card, a top-up) and pays one shared payee over HTTP, one payment after
another, each with its own Idempotency-Key: the full path of a real client (API, the
authorizer, the payment function's worker, the embedded endpoint). Then, on the same
endpoint, 8 threads each commit TransactWriteItems of two conditional puts (the smallest
transaction that moves money) into a table of their own: what the endpoint itself allows.
The ratio of the two is the share of the endpoint's capacity the stack's path achieves.
Last, the e2e bank test's race (15 payments at once from one payer who can afford 10), as
answered payments/s: the figure issue 16 quotes for the local stack.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # nosec B404 # runs this repository's own local stack
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 8
PASSWORD = "correct horse battery staple"  # nosec B105 # a bench user's
TOP_UP = 100_000
AMOUNT = 100


class LocalStackError(RuntimeError):
    """The local stack did not come up, or a request of the run failed."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _local_stack(log: Path) -> Iterator[tuple[str, str]]:
    port, aws_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CASHEW_"))},
        "PORT": str(port),
        "CASHEW_AWS_PORT": str(aws_port),
        "PYTHONPATH": f"{REPO / 'layers/shared/python'}{os.pathsep}{REPO}",
        # every client pays many times within minutes: the velocity limits would block it
        "CASHEW_FRAUD_MAX_PAYMENTS_10MIN": "1000000",
        "CASHEW_FRAUD_MAX_AMOUNT_24H": "1000000000000",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(  # nosec B603 # fixed argv of sys.executable
            [sys.executable, "-m", "local.dev"], cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url, aws_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                if requests.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise LocalStackError(f"the local stack did not come up (see {log})")
            time.sleep(0.3)
        yield url, aws_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _ok(reply: requests.Response, status: int) -> dict[str, Any]:
    if reply.status_code != status:
        raise LocalStackError(
            f"{reply.request.method} {reply.url}: {reply.status_code} {reply.text}"
        )
    body: dict[str, Any] = reply.json()
    return body


def _user(http: requests.Session, url: str) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    account = {"email": email, "password": PASSWORD, "name": "Bench"}
    created = _ok(http.post(f"{url}/v1/users", json=account, timeout=30), 201)
    credentials = {"email": email, "password": PASSWORD}
    login = _ok(http.post(f"{url}/v1/auth/login", json=credentials, timeout=30), 200)
    return str(created["id"]), str(login["access_token"])


def _payer(http: requests.Session, url: str, amount: int = TOP_UP) -> str:
    _, token = _user(http, url)
    auth = {"Authorization": f"Bearer {token}"}
    card = {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    method = _ok(http.post(f"{url}/v1/users/me/payment-methods", json=card, headers=auth,
                           timeout=30), 201)["id"]  # fmt: skip
    body = {"amount": amount, "currency": "USD", "payment_method_id": method}
    _ok(http.post(f"{url}/v1/top-ups", json=body, timeout=30,
                  headers={**auth, "Idempotency-Key": str(uuid.uuid4())}), 201)  # fmt: skip
    return token


def _pay(http: requests.Session, url: str, token: str, payee: str) -> str:
    """One balance payment of AMOUNT with a key of its own: its status."""
    reply = http.post(
        f"{url}/v1/payments",
        json={
            "amount": AMOUNT,
            "currency": "USD",
            "payee_id": payee,
            "source": {"type": "balance"},
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=60,
    )
    return str(_ok(reply, 201)["status"])


def _payments(url: str, payee: str, tokens: list[str], each: int) -> float:
    """Seconds for `each` payments by every client at once."""
    start = threading.Barrier(len(tokens) + 1)

    def client(token: str) -> None:
        http = requests.Session()
        start.wait()
        for _ in range(each):
            if (status := _pay(http, url, token, payee)) != "succeeded":
                raise LocalStackError(f"a payment did not succeed: {status}")

    with ThreadPoolExecutor(len(tokens)) as pool:
        futures = [pool.submit(client, token) for token in tokens]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        return time.perf_counter() - began


def _bank(url: str, payee: str, rounds: int = 3) -> float:
    """The e2e bank test's race (tests/e2e/test_money.py): 15 payments of 100 at once from
    a payer with 1,000, each with its own key; exactly 10 succeed. Its answered payments/s,
    the median of `rounds` races."""
    rates = []
    for _ in range(rounds):
        http = requests.Session()
        token = _payer(http, url, amount=1_000)
        start = threading.Barrier(16)

        def pay(
            _: int,
            token: str = token,
            http: requests.Session = http,
            start: threading.Barrier = start,
        ) -> str:
            start.wait()
            return _pay(http, url, token, payee)  # one session for all, as the e2e fixture's

        with ThreadPoolExecutor(15) as pool:
            futures = [pool.submit(pay, i) for i in range(15)]
            start.wait()
            began = time.perf_counter()
            statuses = [future.result() for future in futures]
            rates.append(15 / (time.perf_counter() - began))
        if statuses.count("succeeded") != 10:
            raise LocalStackError(f"the bank race did not let exactly 10 through: {statuses}")
    return sorted(rates)[len(rates) // 2]


def _raw_transactions(aws_url: str, clients: int, each: int) -> float:
    """Seconds for `each` two-put transactions by every thread at once, on the endpoint."""
    config = Config(max_pool_connections=clients, retries={"mode": "standard"})
    client = boto3.client("dynamodb", endpoint_url=aws_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",  # nosec B106
                          config=config)  # fmt: skip
    table = f"bench-raw-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )  # fmt: skip
    start = threading.Barrier(clients + 1)

    def thread() -> None:
        start.wait()
        for _ in range(each):
            items = [
                {"Put": {"TableName": table, "Item": {"pk": {"S": uuid.uuid4().hex}},
                         "ConditionExpression": "attribute_not_exists(pk)"}}
                for _ in range(2)
            ]  # fmt: skip
            client.transact_write_items(TransactItems=items)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(thread) for _ in range(clients)]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        return time.perf_counter() - began


def throughput(
    log_dir: Path, payments_per_client: int = 25, clients: int = CLIENTS
) -> dict[str, Any]:
    with _local_stack(log_dir / "local-http-bench.log") as (url, aws_url):
        http = requests.Session()
        payee, _ = _user(http, url)
        tokens = [_payer(http, url) for _ in range(clients)]
        _payments(url, payee, tokens, 2)  # every worker warm first
        seconds = _payments(url, payee, tokens, payments_per_client)
        raw_seconds = _raw_transactions(aws_url, clients, payments_per_client)
        bank = _bank(url, payee)
    total = clients * payments_per_client
    payments_per_second = total / seconds
    raw_per_second = total / raw_seconds
    return {
        "clients": clients,
        "payments": total,
        "payments_per_second": round(payments_per_second, 1),
        "raw_transactions_per_second": round(raw_per_second, 1),
        "ratio": round(payments_per_second / raw_per_second, 2),
        "bank_test_payments_per_second": round(bank, 1),
    }


if __name__ == "__main__":
    print(throughput(Path(os.environ.get("TMPDIR", "/tmp"))))  # nosec B108
