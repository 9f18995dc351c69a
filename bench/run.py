"""`python -m bench.run` (make bench): cold starts, AWS calls, units, cost and throughput.

What is measured, and how:

1. Cold import time of every function of template.yaml (`local.specs.functions`): the
   median, over `--runs` fresh interpreters (default 7), of the time the `import <module>`
   statement of the function's handler takes, with its CodeUri and layer dirs on sys.path
   and its own environment (see bench/imports.py). Functions are measured one at a time.
2. AWS calls per operation, on an embedded AWS endpoint provisioned from template.yaml,
   with the handlers invoked in this process by bench.harness.Driver using the events/
   samples (real ids, tokens and queue messages substituted). A botocore `before-call`
   hook on `cashew.aws.session()` names every API call (bench.harness.CallCounter).
   For each operation:
     - cold: its first invocation after `cashew.aws.reset()` (no clients, no cached
       secrets, as in a new execution environment);
     - warm: the next invocation, with fresh inputs (new user, new idempotency key...);
     - handler time: the median wall time of `--warm-runs` warm invocations (default 5),
       AWS round trips to the in-process endpoint included. Extra information only: the
       endpoint is moto, sharing this process's CPU.
     - handler time without I/O: the median, over the same invocations, of the wall time
       less the time spent in AWS calls (timed by the same hooks, `before-call` to
       `after-call`) and in argon2. The sandbox gateway is in-process: its calls are
       handler time.
   Set-up (users, cards, top-ups, payments to capture, cancel, refund or settle, receiving
   queue messages) is done outside the counted window, afresh for every invocation.
   `log_consume` is one invocation of the log consumer with the outcome messages of one
   balance payment, received from the queue; it is also reported per log entry.
   `login` is a login without MFA (its new session's security email included);
   `login_mfa_required` the first step of an MFA user's login (the password: 401
   `mfa_required` with an mfa_token), `login_mfa` the second (the code: the session and
   its email). `authorizer` is one decision on a live session's access token.
   `payout` is a payout of the balance to an approved card (paid); `get_payout` and
   `list_payouts` read one and the list. `hot_payee_payment`, `hot_payee_balances` and
   `hot_payee_refund` are a balance payment to, the balances of, and a refund by a payee
   named in CASHEW_HOT_PAYEES (credit shards; the refund's payee has nothing in its main
   balance item, so it gathers a shard first). `--only payout,...` measures only the named
   operations (no import times, throughput runs or results file).
   `send_emails` is one invocation of the email consumer with the bus event of one balance
   payment (its log entries written): one outcome, two emails (payer and payee).
3. DynamoDB units per operation (bench.capacity): one more warm invocation, metered from the
   items' sizes (the embedded endpoint's ConsumedCapacity is a fixed figure), and the bytes
   it logged; from these, the cost of 1M balance payments at list prices (bench.cost).
4. Cold starts as Lambda pays them (bench.coldstart): every function an operation invokes,
   in fresh processes, lazy and eager, against the baseline B, as ratios from one run.
5. Throughput: the publisher's records/s in batches of 25 against one record per
   invocation; the local stack over HTTP against the embedded endpoint's raw transactions
   (bench.local_http); then the log consumer, a CSV export, webhooks and reconciliation.
   `make capacity` reads all of it (bench.capacity_model, docs/CAPACITY.md).
6. The budget: a warm balance payment that succeeds makes at most 2 AWS calls (reading the
   payer's recent attempts for fraud screening, and the one TransactWriteItems that moves
   the money and records the attempt; its outcome is published from the table's stream, not
   by the request); the exit status is 1 when it makes more.

A table is printed and the numbers are written to bench/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bench import coldstart, cost, local_http
from bench import emails as email_bench
from bench import jobs as jobs_bench
from bench import log as log_bench
from bench import reconcile as reconcile_bench
from bench import webhooks as webhook_bench
from bench.capacity import CapacityMeter, Units
from bench.harness import (
    BENCH_VELOCITY_LIMITS,
    NEW_PASSWORD,
    PASSWORD,
    PROCESSING_CARD,
    Account,
    CallCounter,
    Driver,
    HarnessError,
    LocalStack,
    Request,
    local_stack,
)
from bench.imports import NO_AWS, ImportFailedError, ImportTiming, time_imports
from cashew import aws
from local.consumers import stream_event
from local.events import api_event
from local.specs import function_env
from tests.support.receiver import Receiver

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
BUDGET_OPERATION = "balance_payment"
BUDGET_CALLS = 2
MIN_IMPORT_RUNS = 5
BATCH = log_bench.BATCH

TOP_UP_AMOUNT = 1_000  # minor units
PAYMENT_AMOUNT = 100
REFUND_AMOUNT = 40
# Balance payments per invocation: one each for balance_payment, publish_outcome, log_consume,
# refund, get_payment, list_refunds, get_transaction, open_dispute and the two
# resolve_dispute operations (the card payments take nothing from the balance).
BALANCE_PAYMENTS = 11  # the operations that pay from the balance (payouts among them)
HOT_PAYEE_CREDITS = 2  # payments to each fresh hot payee before its refund: two shards
HOT_PAYEE_PAYMENTS = 1 + HOT_PAYEE_CREDITS  # per invocation of hot_payee_payment and _refund
MAX_TOP_UP = 100_000  # under the risk screening's limit for a new card


@dataclass(frozen=True)
class Operation:
    """`prepare` does the operation's (uncounted) set-up and returns a fresh request."""

    name: str
    prepare: Callable[[], Request]


@dataclass(frozen=True)
class Measurement:
    name: str
    function_id: str
    cold_calls: tuple[str, ...]
    warm_calls: tuple[str, ...]
    warm_ms: tuple[float, ...]
    hashing_ms: tuple[float, ...]  # of warm_ms, the time spent in argon2 (hash or verify)
    io_ms: tuple[float, ...]  # of warm_ms, the time spent in AWS calls
    unstable: bool  # the warm invocations did not all make the same calls
    log_entries: int  # log entries the invocation appends (log_consume), else 0
    units: Units  # DynamoDB request units of one more warm invocation (bench.capacity)
    log_bytes: int  # what that invocation logged (log lines and metrics)

    @property
    def handler_ms(self) -> float:
        return statistics.median(self.warm_ms)

    @property
    def handler_ms_without_hashing(self) -> float:
        return statistics.median(t - h for t, h in zip(self.warm_ms, self.hashing_ms, strict=True))

    @property
    def handler_ms_without_io(self) -> float:
        """Neither AWS calls nor argon2: the handler's own work."""
        runs = zip(self.warm_ms, self.io_ms, self.hashing_ms, strict=True)
        return statistics.median(t - io - h for t, io, h in runs)


def operations(driver: Driver, invocations: int, receiver: Receiver) -> list[Operation]:
    """Every operation measured, with the scenario they share: a payer with a card, a card
    that the sandbox answers `processing` and the money for `invocations` runs of each
    operation that pays from the balance, and a payee."""
    payer, payee = driver.new_account(), driver.new_account()
    card = driver.add_card(payer)
    processing_card = driver.add_card(payer, PROCESSING_CARD)
    needed = (BALANCE_PAYMENTS + HOT_PAYEE_PAYMENTS) * invocations * PAYMENT_AMOUNT
    needed += HOT_PAYEE_CREDITS * PAYMENT_AMOUNT  # the hot payee's first credits
    for _ in range(math.ceil(needed / MAX_TOP_UP)):
        driver.top_up(payer, card, MAX_TOP_UP)

    def login() -> Request:
        email = driver.send(driver.register_request())["email"]
        return driver.login_request(email)

    def refresh() -> Request:
        pair = driver.send(driver.login_request(payer.email))
        body = {"refresh_token": pair["refresh_token"]}
        return driver.api_request("RefreshFunction", 200, body=body)

    def authorizer() -> Request:
        token = driver.send(driver.login_request(payer.email))["access_token"]
        return driver.authorizer_request(token)

    def publish_outcome() -> Request:
        payment = driver.pay(payer, payee.id, PAYMENT_AMOUNT)
        return driver.publish_request(payment["id"])

    def log_consume() -> Request:
        payment = driver.pay(payer, payee.id, PAYMENT_AMOUNT)
        driver.send(driver.publish_request(payment["id"]))
        return driver.consume_request(payment["id"])

    def send_emails() -> Request:
        payment = driver.pay(payer, payee.id, PAYMENT_AMOUNT)
        driver.send(driver.publish_request(payment["id"]))
        driver.send(driver.consume_request(payment["id"]))
        return driver.email_request(payment["id"])

    def get(function_id: str, query: dict[str, str] | None = None) -> Callable[[], Request]:
        return lambda: driver.api_request(function_id, 200, caller=payer, query=query)

    # -- payments
    def paid() -> str:
        return str(driver.pay(payer, payee.id, PAYMENT_AMOUNT)["id"])

    def card_payment(capture: bool) -> Callable[[], Request]:
        status = "succeeded" if capture else "requires_capture"
        return lambda: driver.payment_request(
            payer, payee.id, PAYMENT_AMOUNT, method_id=card, capture=capture, status=status
        )

    def authorised() -> str:
        return str(driver.send(card_payment(capture=False)())["id"])

    def capture() -> Request:
        return driver.payment_action_request(
            "CapturePaymentFunction", payee, authorised(), status=200, result_status="succeeded"
        )

    def cancel() -> Request:
        return driver.payment_action_request(
            "CancelPaymentFunction", payer, authorised(), status=200, result_status="canceled"
        )

    def refund() -> Request:
        return driver.refund_request(payee, paid(), REFUND_AMOUNT)

    def card_refund() -> Request:
        payment_id = str(driver.send(card_payment(capture=True)())["id"])
        return driver.refund_request(payee, payment_id, REFUND_AMOUNT)

    def webhook() -> Request:
        processing = driver.pay(
            payer, payee.id, PAYMENT_AMOUNT, method_id=processing_card, status="processing"
        )
        return driver.webhook_request(str(processing["id"]))

    def get_payment() -> Request:
        return driver.api_request("GetPaymentFunction", 200, caller=payer, path={"id": paid()})

    def list_payments() -> Request:
        query = {"role": "payee", "limit": "20"}
        return driver.api_request("ListPaymentsFunction", 200, caller=payee, query=query)

    def list_refunds() -> Request:
        payment_id = paid()
        driver.send(driver.refund_request(payee, payment_id, REFUND_AMOUNT))
        path, query = {"id": payment_id}, {"limit": "20"}
        return driver.api_request("ListRefundsFunction", 200, caller=payer, path=path, query=query)

    # -- sessions and the profile
    def logout() -> Request:
        return driver.api_request("LogoutFunction", 204, caller=driver.sign_in(payer.email))

    def revoke_session() -> Request:
        path = {"id": driver.sign_in(payer.email).session_id}
        return driver.api_request("RevokeSessionFunction", 204, caller=payer, path=path)

    def change_password() -> Request:
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        return driver.api_request(
            "ChangePasswordFunction", 204, caller=driver.new_account(), body=body
        )

    def update_me() -> Request:
        body = {"name": f"Bench {uuid.uuid4().hex[:8]}", "phone": "+447700900123"}
        return driver.api_request("UpdateMeFunction", 200, caller=payer, body=body)

    def payment_method(function_id: str, status: int) -> Callable[[], Request]:
        return lambda: driver.api_request(
            function_id, status, caller=payer, path={"id": driver.add_card(payer)}
        )

    return [
        Operation("health", lambda: driver.api_request("HealthFunction", 200)),
        Operation("jwks", lambda: driver.api_request("JwksFunction", 200)),
        Operation("register", driver.register_request),
        Operation("login", login),
        *mfa_login_operations(driver),
        Operation("refresh", refresh),
        Operation("authorizer", authorizer),
        Operation("get_me", get("GetMeFunction")),
        Operation("add_card", lambda: driver.add_card_request(payer)),
        Operation("list_balances", get("ListBalancesFunction")),
        Operation("top_up", lambda: driver.top_up_request(payer, card, TOP_UP_AMOUNT)),
        Operation(
            BUDGET_OPERATION, lambda: driver.payment_request(payer, payee.id, PAYMENT_AMOUNT)
        ),
        Operation("publish_outcome", publish_outcome),
        Operation("log_consume", log_consume),
        Operation("send_emails", send_emails),
        Operation("list_transactions", get("ListTransactionsFunction", {"limit": "20"})),
        Operation("card_payment", card_payment(capture=True)),
        Operation("authorise", card_payment(capture=False)),
        Operation("capture", capture),
        Operation("cancel", cancel),
        Operation("refund", refund),
        Operation("card_refund", card_refund),
        Operation("webhook", webhook),
        Operation("get_payment", get_payment),
        Operation("list_payments", list_payments),
        Operation("list_refunds", list_refunds),
        *payout_operations(driver, payer, card),
        *hot_payee_operations(driver, payer),
        Operation("logout", logout),
        Operation("list_sessions", get("ListSessionsFunction", {"limit": "20"})),
        Operation("revoke_session", revoke_session),
        Operation("change_password", change_password),
        Operation("update_me", update_me),
        Operation("list_payment_methods", get("ListPaymentMethodsFunction", {"limit": "20"})),
        Operation("get_payment_method", payment_method("GetPaymentMethodFunction", 200)),
        Operation("update_payment_method", payment_method("UpdatePaymentMethodFunction", 200)),
        Operation("delete_payment_method", payment_method("DeletePaymentMethodFunction", 204)),
        Operation("openapi", get("OpenApiFunction")),
        *recovery_operations(driver),
        # a scheduled run with nothing due: its fixed cost (the stuck runs: reconciliation)
        Operation("reconcile_idle", lambda: reconcile_bench.run_request(driver.stack)),
        *log_operations(driver, payer, payee),
        *(
            Operation(name, prepare)
            for name, prepare in webhook_bench.operations(driver, driver.new_admin(), receiver)
        ),
    ]


def recovery_operations(driver: Driver) -> list[Operation]:
    """The functions of email verification, password reset, MFA enrolment and the data
    export, the docs page and the preflights: each with a fresh user, and the tokens read
    from the embedded endpoint's inbox as a user would read them."""
    import pyotp

    from local import mail

    def token_in_mail(email: str, marker: str) -> str:
        for sent in mail.inbox(email):
            text = sent["text"] or sent["html"] or ""
            found = re.search(marker + r"\?token=([A-Za-z0-9_.%\-]+)", text)
            if found:
                return unquote(found.group(1))
        raise HarnessError(f"no email to {email} carries a {marker} link")

    def verify_email() -> Request:
        account = driver.new_account()
        token = token_in_mail(account.email, "#/verify-email")
        return driver.api_request("VerifyEmailFunction", 204, body={"token": token})

    def password_reset_confirm() -> Request:
        account = driver.new_account()
        driver.send(driver.api_request("PasswordResetFunction", 202, body={"email": account.email}))
        token = token_in_mail(account.email, "#/reset")
        body = {"token": token, "new_password": NEW_PASSWORD}
        return driver.api_request("PasswordResetConfirmFunction", 204, body=body)

    def enrolled() -> tuple[Account, str]:
        account = driver.new_account()
        body = {"password": PASSWORD}
        answer = driver.send(driver.api_request("MfaEnrolFunction", 200, caller=account, body=body))
        return account, str(answer["secret"])

    def mfa_confirm() -> Request:
        account, secret = enrolled()
        body = {"code": pyotp.TOTP(secret).now()}
        return driver.api_request("MfaConfirmFunction", 200, caller=account, body=body)

    def mfa_disable() -> Request:
        account, secret = enrolled()
        confirm = {"code": pyotp.TOTP(secret).now()}
        driver.send(driver.api_request("MfaConfirmFunction", 200, caller=account, body=confirm))
        # the confirm used this step's code: a code is accepted once, so the next step's
        body = {"password": PASSWORD, "code": pyotp.TOTP(secret).at(time.time() + 30)}
        return driver.api_request("MfaDisableFunction", 204, caller=account, body=body)

    def fresh(function_id: str, status: int, **kwargs: Any) -> Callable[[], Request]:
        return lambda: driver.api_request(
            function_id, status, caller=driver.new_account(), **kwargs
        )

    return [
        Operation("verify_email", verify_email),
        Operation("resend_verification", fresh("ResendVerificationFunction", 202)),
        Operation(
            "password_reset",
            lambda: driver.api_request(
                "PasswordResetFunction", 202, body={"email": driver.new_account().email}
            ),
        ),
        Operation("password_reset_confirm", password_reset_confirm),
        Operation("mfa_enrol", fresh("MfaEnrolFunction", 200, body={"password": PASSWORD})),
        Operation("mfa_confirm", mfa_confirm),
        Operation("mfa_disable", mfa_disable),
        Operation("export_me", fresh("ExportMeFunction", 200)),
        Operation("docs", lambda: driver.api_request("DocsFunction", 200)),
        Operation("preflight", lambda: driver.api_request("PreflightFunction", 204)),
        Operation(
            "payments_preflight", lambda: driver.api_request("PaymentsPreflightFunction", 204)
        ),
    ]


def payout_operations(driver: Driver, payer: Account, card: str) -> list[Operation]:
    """A payout of the payer's balance to their card (paid), reading one, and the list."""

    def payout() -> Request:
        body = {"amount": PAYMENT_AMOUNT, "currency": "USD", "payment_method_id": card}
        return driver.api_request("CreatePayoutFunction", 201, body=body, caller=payer,
                                  headers={"Idempotency-Key": str(uuid.uuid4())},
                                  payment_status="paid")  # fmt: skip

    def get_payout() -> Request:
        path = {"id": str(driver.send(payout())["id"])}
        return driver.api_request("GetPayoutFunction", 200, caller=payer, path=path)

    def list_payouts() -> Request:
        query = {"limit": "20"}
        return driver.api_request("ListPayoutsFunction", 200, caller=payer, query=query)

    return [
        Operation("payout", payout),
        Operation("get_payout", get_payout),
        Operation("list_payouts", list_payouts),
    ]


def hot_payee_operations(driver: Driver, payer: Account) -> list[Operation]:
    """A hot payee's (CASHEW_HOT_PAYEES) payment, balances and refund. The payment credits
    a shard and checks no payee in its transaction; each refund's payee is a fresh hot
    payee with `HOT_PAYEE_CREDITS` payments and nothing in its main balance item, so every
    refund reads the shards and gathers one into the main item, as a hot payee's first does."""
    from cashew.config import get_settings

    def hot_payee() -> Account:
        account = driver.new_account()
        named = [p for p in os.environ.get("CASHEW_HOT_PAYEES", "").split(",") if p]
        os.environ["CASHEW_HOT_PAYEES"] = ",".join([*named, account.id])
        get_settings.cache_clear()
        return account

    hot = hot_payee()
    for _ in range(HOT_PAYEE_CREDITS):
        driver.pay(payer, hot.id, PAYMENT_AMOUNT)

    def refund() -> Request:
        payee = hot_payee()
        paid = [driver.pay(payer, payee.id, PAYMENT_AMOUNT) for _ in range(HOT_PAYEE_CREDITS)]
        return driver.refund_request(payee, str(paid[0]["id"]), REFUND_AMOUNT)

    return [
        Operation("hot_payee_payment",
                  lambda: driver.payment_request(payer, hot.id, PAYMENT_AMOUNT)),
        Operation("hot_payee_balances",
                  lambda: driver.api_request("ListBalancesFunction", 200, caller=hot)),
        Operation("hot_payee_refund", refund),
    ]  # fmt: skip


def mfa_login_operations(driver: Driver) -> list[Operation]:
    """The two steps of an MFA user's login, each with a fresh user who has MFA on."""

    def login_mfa_required() -> Request:
        email, _ = driver.new_mfa_account()
        return driver.login_mfa_required_request(email)

    def login_mfa() -> Request:
        import pyotp

        email, secret = driver.new_mfa_account()
        mfa_token = driver.send(driver.login_mfa_required_request(email))
        # one step of drift is accepted, and the confirm used the current step's code
        code = pyotp.TOTP(secret).at(time.time() + 30)
        return driver.login_mfa_request(mfa_token, code)

    return [
        Operation("login_mfa_required", login_mfa_required),
        Operation("login_mfa", login_mfa),
    ]


def log_operations(driver: Driver, payer: Account, payee: Account) -> list[Operation]:
    """The log's, the disputes' and the admin reports' operations: the payer's balance pays
    for the entries they need."""

    def get(function_id: str, query: dict[str, str] | None = None) -> Callable[[], Request]:
        return lambda: driver.api_request(function_id, 200, caller=payer, query=query)

    admin = driver.new_admin()

    def logged() -> str:
        """The payer's entry of a new balance payment, once it is in the log."""
        payment = driver.pay(payer, payee.id, PAYMENT_AMOUNT)
        driver.send(driver.publish_request(payment["id"]))
        driver.send(driver.consume_request(payment["id"]))
        newest = driver.send(get("ListTransactionsFunction", {"limit": "1"})())["data"][0]
        if newest["payment_id"] != payment["id"]:
            raise HarnessError(f"the payer's newest entry is not of {payment['id']}: {newest}")
        return str(newest["id"])

    def open_dispute() -> Request:
        return driver.api_request(
            "OpenDisputeFunction", 201, caller=payer, path={"id": logged()},
            body={"reason": "product_not_received"}, payment_status="open",
        )  # fmt: skip

    def resolve(outcome: str) -> Callable[[], Request]:
        def prepare() -> Request:
            dispute = driver.send(open_dispute())
            return driver.api_request(
                "ResolveDisputeFunction", 200, caller=admin, path={"id": dispute["id"]},
                body={"outcome": outcome}, payment_status=outcome,
            )  # fmt: skip

        return prepare

    def as_admin(function_id: str, query: dict[str, str] | None = None) -> Callable[[], Request]:
        return lambda: driver.api_request(function_id, 200, caller=admin, query=query)

    def job_functions_env() -> None:
        """The job functions' own variables (their queue, their bucket)."""
        from cashew.config import get_settings

        os.environ["CASHEW_JOBS_QUEUE_URL"] = str(driver.stack.resources["JobsQueue"]["Ref"])
        os.environ["CASHEW_REPORTS_BUCKET"] = str(driver.stack.resources["ReportsBucket"]["Ref"])
        get_settings.cache_clear()

    def start_job() -> Request:
        job_functions_env()
        return driver.api_request("StartJobFunction", 202, caller=admin, body={"type": "audit"})

    def get_job() -> Request:
        job = driver.send(start_job())
        return driver.api_request("GetJobFunction", 200, caller=admin, path={"id": job["id"]})

    return [
        Operation(
            "list_transactions_filtered",
            get("ListTransactionsFunction", {"limit": "20", "type": "payment", "status": "failed"}),
        ),
        Operation(
            "get_transaction",
            lambda: driver.api_request(
                "GetTransactionFunction", 200, caller=payer, path={"id": logged()}
            ),
        ),
        Operation(
            "get_receipt",
            lambda: driver.api_request(
                "GetReceiptFunction", 200, caller=payer, path={"id": logged()}
            ),
        ),
        Operation("verify_chain", get("VerifyChainFunction")),
        Operation("open_dispute", open_dispute),
        Operation("list_disputes", get("ListDisputesFunction", {"limit": "20"})),
        Operation("resolve_dispute_lost", resolve("lost")),
        Operation("resolve_dispute_won", resolve("won")),
        Operation("admin_transactions", as_admin("AdminListTransactionsFunction", {"limit": "20"})),
        Operation("admin_disputes", as_admin("AdminListDisputesFunction", {"status": "open"})),
        Operation("report_summary", as_admin("ReportSummaryFunction", {})),
        Operation("report_csv", as_admin("ReportCsvFunction", {"limit": "1000"})),
        Operation("audit_verify", as_admin("AuditVerifyFunction")),
        Operation("start_job", start_job),  # queued only: the jobs' own figures are admin_jobs
        Operation("get_job", get_job),
    ]


def _log_entries(request: Request) -> int:
    if request.function_id != "LogConsumerFunction":
        return 0
    # Imported here: the layer's logger reads the stack's environment when it is created.
    from cashew.ledger.models import Outcome
    from cashew.ledger.service import affected

    records = request.event["Records"]
    return sum(len(affected(Outcome.model_validate_json(r["body"]))) for r in records)


def measure(
    driver: Driver,
    counter: CallCounter,
    meter: CapacityMeter,
    operation: Operation,
    warm_runs: int,
) -> Measurement:
    request = operation.prepare()
    counter.install()  # a new execution environment: no clients, no cached secrets
    with counter.window() as cold:
        result = driver.stack.invoke(request.function_id, request.event)
    request.complete(result)
    runs: list[tuple[str, ...]] = []
    times: list[float] = []
    hashing: list[float] = []
    io: list[float] = []
    for _ in range(warm_runs):
        request = operation.prepare()
        with counter.window() as calls, argon2_time() as spent:
            started = time.perf_counter()
            result = driver.stack.invoke(request.function_id, request.event)
            times.append((time.perf_counter() - started) * 1000)
        hashing.append(spent[0])
        io.append(calls.io_ms)
        request.complete(result)
        runs.append(tuple(calls))
    request = operation.prepare()  # one more, metered (its reads of images are not timed)
    meter.install(aws.dynamodb())
    try:
        logged = LogSink.written
        with meter.window() as units:
            result = driver.stack.invoke(request.function_id, request.event)
        logged = LogSink.written - logged
        request.complete(result)
    finally:
        meter.uninstall()
    return Measurement(
        name=operation.name,
        function_id=request.function_id,
        cold_calls=tuple(cold),
        warm_calls=runs[0],
        warm_ms=tuple(times),
        hashing_ms=tuple(hashing),
        io_ms=tuple(io),
        unstable=len(set(runs)) > 1,
        log_entries=_log_entries(request),
        units=units,
        log_bytes=logged,
    )


@contextlib.contextmanager
def argon2_time() -> Iterator[list[float]]:
    """Milliseconds spent in argon2 (hashing or verifying a password) meanwhile: login's
    handler time is reported without it, since its cost is a deliberate security setting."""
    from argon2 import PasswordHasher

    spent = [0.0]
    originals = {name: getattr(PasswordHasher, name) for name in ("hash", "verify")}

    def timed(original: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[0] += (time.perf_counter() - started) * 1000

        return run

    for name, original in originals.items():
        setattr(PasswordHasher, name, timed(original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(PasswordHasher, name, original)


class LogSink(io.TextIOBase):
    """Where the handlers' log lines and metrics go: nowhere, counted (bytes written)."""

    written = 0

    def write(self, text: str) -> int:
        LogSink.written += len(text.encode())
        return len(text)


@contextlib.contextmanager
def quiet_handlers() -> Iterator[None]:
    """The handlers' log lines and the metrics Powertools prints (EMF, on stdout) go to a
    LogSink (still formatted, as in Lambda), and the Powertools warnings (no metrics to
    flush) are not shown."""
    from cashew.observability import logger  # after the stack's environment is set

    handler = logger.registered_handler
    sink = LogSink()
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = handler.setStream(sink) if isinstance(handler, logging.StreamHandler) else None
        try:
            yield
        finally:
            if isinstance(handler, logging.StreamHandler) and previous is not None:
                handler.setStream(previous)


# ------------------------------------------------------------------------------ reporting
def _names(calls: tuple[str, ...]) -> str:
    counts = Counter(calls)
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items()) or "-"


def _per_entry(calls: int, entries: int) -> float:
    return round(calls / entries, 2) if entries else 0.0


def results(
    imports: dict[str, ImportTiming], measurements: list[Measurement], args: argparse.Namespace
) -> dict[str, Any]:
    by_name = {m.name: m for m in measurements}
    budget = by_name[BUDGET_OPERATION]
    consume = by_name["log_consume"]
    return {
        "cold_import_ms": {f: round(t.median_ms, 1) for f, t in imports.items()},
        "aws_calls": {m.name: len(m.warm_calls) for m in measurements},
        "aws_calls_cold": {m.name: len(m.cold_calls) for m in measurements},
        "aws_call_names": {
            m.name: {"warm": list(m.warm_calls), "cold": list(m.cold_calls)} for m in measurements
        },
        "handler_ms": {m.name: round(m.handler_ms, 1) for m in measurements},
        "handler_ms_without_password_hashing": {
            m.name: round(m.handler_ms_without_hashing, 1) for m in measurements
        },
        "handler_ms_without_io": {m.name: round(m.handler_ms_without_io, 1) for m in measurements},
        "log_consume_per_entry": {
            "entries_per_batch": consume.log_entries,
            "warm": _per_entry(len(consume.warm_calls), consume.log_entries),
            "cold": _per_entry(len(consume.cold_calls), consume.log_entries),
        },
        "dynamodb_units": {m.name: m.units.as_dict() for m in measurements},
        "log_bytes": {m.name: m.log_bytes for m in measurements},
        "operation_function": {m.name: m.function_id for m in measurements},
        "unstable_warm_calls": [m.name for m in measurements if m.unstable],
        "cold_import_runs_ms": {f: [round(ms, 1) for ms in t.runs_ms] for f, t in imports.items()},
        "cold_import_loads_boto3": {f: t.loads_boto3 for f, t in imports.items()},
        "budget": {
            "operation": BUDGET_OPERATION,
            "max_calls": BUDGET_CALLS,
            "calls": len(budget.warm_calls),
            "ok": len(budget.warm_calls) <= BUDGET_CALLS,
        },
        "settings": {
            "import_runs": args.runs,
            "warm_runs": args.warm_runs,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
    }


def print_report(imports: dict[str, ImportTiming], measurements: list[Measurement]) -> None:
    runs = len(next(iter(imports.values())).runs_ms) if imports else 0
    if imports:  # none with --only
        print(f"\nCold import of the handler module (ms, {runs} fresh interpreters)")
        print(f"  {'function':<26} {'median':>7} {'min':>7} {'max':>7}  boto3")
    for function_id, timing in imports.items():
        print(
            f"  {function_id:<26} {timing.median_ms:>7.1f} {min(timing.runs_ms):>7.1f}"
            f" {max(timing.runs_ms):>7.1f}  {'yes' if timing.loads_boto3 else 'no'}"
        )

    print("\nAWS calls per invocation (warm: after one invocation; cold: after cashew.aws.reset())")
    print(
        "  ms: median warm handler time; -argon2: without password hashing;"
        " -io: without AWS calls nor argon2"
    )
    print(
        f"  {'operation':<21} {'warm':>4} {'cold':>4} {'ms':>7} {'-argon2':>8} {'-io':>7}"
        f" {'RRU':>5} {'WRU':>5}  warm calls  [cold adds]"
    )
    for m in measurements:
        extra = Counter(m.cold_calls) - Counter(m.warm_calls)
        cold_adds = f"  [+ {_names(tuple(extra.elements()))}]" if extra else ""
        flag = "  (warm calls vary between runs)" if m.unstable else ""
        print(
            f"  {m.name:<21} {len(m.warm_calls):>4} {len(m.cold_calls):>4} {m.handler_ms:>7.1f}"
            f" {m.handler_ms_without_hashing:>8.1f} {m.handler_ms_without_io:>7.1f}"
            f" {m.units.read:>5g} {m.units.total_write:>5g}"
            f"  {_names(m.warm_calls)}{cold_adds}{flag}"
        )
        if m.log_entries:
            warm = _per_entry(len(m.warm_calls), m.log_entries)
            cold = _per_entry(len(m.cold_calls), m.log_entries)
            label = f"  per entry ({m.log_entries})"
            print(f"  {label:<21} {warm:>4g} {cold:>4g}")


def _positive(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Cold import times and AWS calls per operation of Cashew's functions.",
    )
    parser.add_argument(
        "--runs",
        type=_positive(MIN_IMPORT_RUNS),
        default=7,
        help="fresh interpreters per function for the import times (default 7, at least 5)",
    )
    parser.add_argument(
        "--warm-runs",
        type=_positive(1),
        default=5,
        help="warm invocations per operation for the handler times (default 5)",
    )
    parser.add_argument(
        "--cold-runs",
        type=_positive(1),
        default=3,
        help="fresh processes per function and mode for the cold starts (default 3)",
    )
    parser.add_argument(
        "--publisher-records",
        type=_positive(PUBLISHER_BATCH),
        default=250,
        help="stream records per publisher throughput run (default 250)",
    )
    parser.add_argument(
        "--email-rounds",
        type=_positive(1),
        default=3,
        help="rounds of the email consumer's two batches, at once and one at a time (default 3)",
    )
    parser.add_argument(
        "--local-payments",
        type=_positive(1),
        default=25,
        help="balance payments per client over HTTP against the local stack (default 25)",
    )
    parser.add_argument(
        "--log-outcomes",
        type=_positive(BATCH),
        default=500,
        help="outcomes per log consumer throughput run (default 500)",
    )
    parser.add_argument(
        "--export-entries",
        type=_positive(1),
        default=100_000,
        help="entries in the range of the CSV export (default 100000)",
    )
    parser.add_argument(
        "--webhook-deliveries",
        type=_positive(webhook_bench.BATCH),
        default=200,
        help="deliveries per webhook throughput run (default 200)",
    )
    parser.add_argument(
        "--reconcile-items",
        type=_positive(2),
        default=1_000,
        help="stuck records of the reconciliation run (default 1000)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="the results file")
    parser.add_argument(
        "--only",
        type=lambda names: set(names.split(",")),
        default=None,
        help="measure only these operations (comma-separated, e.g. payout): their AWS calls"
        " and handler times are printed; no import times, throughput runs or results file",
    )
    parser.add_argument(
        "--cold", action="store_true", help="with --only: also the cold starts of their functions"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    if args.only:
        return _measure_only(
            args.only, args.warm_runs, args.cold_runs if args.cold else 0, progress
        )

    started = time.perf_counter()
    try:
        with local_stack() as stack:
            imports = time_imports(
                stack.functions,
                lambda spec: function_env(spec, stack.resources, NO_AWS),
                args.runs,
                progress,
            )
            measurements = _measure_all(stack, args.warm_runs, progress)
            cold = _measure_cold(stack, measurements, args.cold_runs, progress)
            publisher = _measure_publisher(stack, args.publisher_records, progress)
            email_batch = _measure_emails(stack, imports, measurements, args, progress)
            log_figures = _measure_log(stack, args, progress)
            try:
                log_figures["webhooks"] = _measure_webhooks(stack, args, progress)
            except HarnessError as error:  # the figures before it are kept, and the run fails
                log_figures["webhooks"] = {"error": str(error)}
            try:
                with quiet_handlers():
                    log_figures["reconciliation"] = reconcile_bench.stuck_run(
                        stack, CallCounter(), args.reconcile_items, progress
                    )
            except HarnessError as error:  # likewise
                log_figures["reconciliation"] = {"error": str(error)}
        progress(f"the local stack over HTTP: {local_http.CLIENTS} clients")
        local = local_http.throughput(args.output.parent, args.local_payments)
    except (
        HarnessError,
        ImportFailedError,
        coldstart.ColdStartError,
        local_http.LocalStackError,
    ) as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 2

    report = {**results(imports, measurements, args), "cold_start": cold, **log_figures}
    report["memory_mb"] = {f: spec.memory for f, spec in stack.functions.items()}
    report["table_names"] = _table_names(stack)
    report["publisher"] = publisher
    report["email_batch"] = email_batch
    report["local_stack_http"] = local
    report["cost_per_million_payments"] = cost.per_payment(report)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(imports, measurements)
    coldstart.print_report(cold)
    cost.print_report(report["cost_per_million_payments"])
    print_publisher_report(publisher)
    email_bench.print_report(email_batch)
    print(
        f"\nLocal stack over HTTP: {local['payments_per_second']} balance payments/s with"
        f" {local['clients']} clients; the embedded endpoint's raw TransactWriteItems:"
        f" {local['raw_transactions_per_second']}/s; ratio {local['ratio']}; the bank test's"
        f" race: {local['bank_test_payments_per_second']} payments/s"
    )
    print_log_report(log_figures)
    print(f"\nwrote {args.output} in {time.perf_counter() - started:.0f} s")

    for stage in ("webhooks", "reconciliation"):
        if "error" in log_figures[stage]:
            print(f"bench: FAILED: {stage}: {log_figures[stage]['error']}", file=sys.stderr)
            return 2
    budget = report["budget"]
    if not budget["ok"]:
        names = ", ".join(report["aws_call_names"][BUDGET_OPERATION]["warm"])
        print(
            f"\nbench: BUDGET EXCEEDED: a warm {BUDGET_OPERATION} makes {budget['calls']} AWS"
            f" calls ({names}); the budget is {BUDGET_CALLS}"
            " (the payer's attempt history, one DynamoDB.TransactWriteItems)",
            file=sys.stderr,
        )
        return 1
    return 0


def _measure_only(
    names: set[str], warm_runs: int, cold_runs: int, progress: Callable[[str], None]
) -> int:
    """`--only`: the named operations' figures, printed (and their functions' cold starts
    with `--cold`)."""
    cold = None
    try:
        with local_stack() as stack:
            measurements = _measure_all(stack, warm_runs, progress, names)
            if cold_runs:
                cold = _measure_cold(stack, measurements, cold_runs, progress)
    except (HarnessError, coldstart.ColdStartError) as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 2
    unknown = names - {m.name for m in measurements}
    if unknown:
        print(f"bench: no such operation: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    print_report({}, measurements)
    if cold is not None:
        coldstart.print_report(cold)
    if {step.operation for step in cost.path()} <= names:
        report = results({}, measurements, argparse.Namespace(runs=0, warm_runs=warm_runs))
        report["memory_mb"] = {f: spec.memory for f, spec in stack.functions.items()}
        cost.print_report(cost.per_payment(report))
    return 0


def _measure_all(
    stack: LocalStack,
    warm_runs: int,
    progress: Callable[[str], None],
    only: set[str] | None = None,
) -> list[Measurement]:
    for function_id in stack.functions:  # Lambda's init phase: before any invocation
        stack.handler(function_id)
    driver = Driver(stack)
    counter = CallCounter()
    meter = CapacityMeter(stack.clients("dynamodb"))
    measurements = []
    with quiet_handlers(), webhook_bench.loopback_receiver() as receiver:
        try:
            progress("setting up users, a card and a balance")
            for operation in operations(driver, invocations=1 + warm_runs, receiver=receiver):
                if only is not None and operation.name not in only:
                    continue
                progress(f"invoke {operation.name}")
                measurements.append(measure(driver, counter, meter, operation, warm_runs))
        finally:
            counter.uninstall()
    covered = {m.function_id for m in measurements}
    for function_id in stack.functions.keys() - covered if only is None else ():
        progress(f"warning: no operation invokes {function_id}")
    return measurements


def _table_names(stack: LocalStack) -> dict[str, str]:
    """Physical table name -> logical id, for the capacity model."""
    return {
        str(attributes["Ref"]): logical_id
        for logical_id, attributes in stack.resources.items()
        if logical_id.endswith("Table") and "Ref" in attributes
    }


def _measure_cold(
    stack: LocalStack,
    measurements: list[Measurement],
    runs: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """bench.coldstart for every function an operation invokes (every API function, the
    authorizer and the consumers), each with the events of the first operation that invokes
    it, against the same baseline in the same run."""
    first: dict[str, str] = {}
    for m in measurements:
        first.setdefault(m.function_id, m.name)
    wanted = [spec for function_id, spec in stack.functions.items() if function_id in first]
    extra = dict(BENCH_VELOCITY_LIMITS)
    table = str(stack.resources["TransactionLogTable"]["Ref"])
    key = {"pk": {"S": "USER#nobody"}, "sk": {"S": "SEQ#0"}}
    env = {**function_env(next(iter(stack.functions.values())), stack.resources, stack.endpoint)}
    event = api_event("accounts/get_me.json")
    with (
        quiet_handlers(),
        webhook_bench.loopback_receiver() as receiver,
        tempfile.TemporaryDirectory(prefix="cashew-sources-") as stack_dir_name,
    ):
        stack_dir = Path(stack_dir_name)
        driver = Driver(stack)
        by_name = {
            op.name: op for op in operations(driver, invocations=3 * (runs + 1), receiver=receiver)
        }
        sources = coldstart.SourceOnly(stack_dir)
        progress("cold start of the baseline B")
        base = coldstart.baseline(table, key, env, event, runs, source_only=sources)
        starts = []
        for spec in wanted:
            progress(f"cold start of {spec.logical_id} ({first[spec.logical_id]})")
            operation = by_name[first[spec.logical_id]]

            def prepare(operation: Operation = operation) -> tuple[Any, Callable[[Any], Any]]:
                request = operation.prepare()
                return request.event, request.complete

            starts.append(
                coldstart.measure(
                    spec,
                    resources=stack.resources,
                    endpoint=stack.endpoint,
                    extra_env=extra,
                    prepare=prepare,
                    runs=runs,
                    source_only=sources,
                )
            )
    return coldstart.figures(starts, base)


PUBLISHER_BATCH = 25  # the stream mapping's BatchSize


def _measure_publisher(
    stack: LocalStack, records: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The publisher's records/s against the embedded endpoint: `records` changes published
    in Lambda's batches of 25 (SendMessageBatch and PutEvents, 10 per request), against the
    same number published one record per invocation (each record's own requests, as before
    the batching), alternated in the same run."""
    with quiet_handlers():
        driver = Driver(stack)
        payer, payee = driver.new_account(), driver.new_account()
        card = driver.add_card(payer)
        for _ in range(math.ceil(2 * records * PAYMENT_AMOUNT / MAX_TOP_UP)):
            driver.top_up(payer, card, MAX_TOP_UP)
        progress(f"publisher: {2 * records} payments")
        driver._stream_records()  # the set-up's changes are not measured
        for _ in range(2 * records):
            driver.pay(payer, payee.id, PAYMENT_AMOUNT)
        changes = driver._stream_records()
        if len(changes) < 2 * records:
            raise HarnessError(f"the stream has {len(changes)} changes, not {2 * records}")
        arn = str(stack.resources["PaymentsTable"]["StreamArn"])
        counter = CallCounter()
        counter.install()
        timings: dict[str, float] = {"batched": 0.0, "one_per_invocation": 0.0}
        calls: dict[str, int] = {"batched": 0, "one_per_invocation": 0}
        try:
            halves = {"batched": changes[:records], "one_per_invocation": changes[records:]}
            for mode, part in halves.items():
                size = PUBLISHER_BATCH if mode == "batched" else 1
                for start in range(0, len(part), size):
                    event = stream_event(part[start : start + size], arn)
                    with counter.window() as made:
                        began = time.perf_counter()
                        result = stack.invoke("PublishOutcomesFunction", event)
                        timings[mode] += time.perf_counter() - began
                    calls[mode] += len(made)
                    if result.get("batchItemFailures") != []:
                        raise HarnessError(f"the publisher failed items: {result}")
        finally:
            counter.uninstall()
        sqs = stack.clients("sqs")
        for queue in ("OutcomesQueue", "EmailQueue", "WebhookEventsQueue"):
            sqs.purge_queue(QueueUrl=str(stack.resources[queue]["Ref"]))  # nothing else waits
    rates = {mode: round(records / seconds, 1) for mode, seconds in timings.items()}
    return {
        "records": records,
        "batch_size": PUBLISHER_BATCH,
        "records_per_second_per_batch": rates["batched"],
        "records_per_second_one_per_invocation": rates["one_per_invocation"],
        "ratio": round(rates["batched"] / rates["one_per_invocation"], 2),
        "aws_calls_per_record": {m: round(c / records, 2) for m, c in calls.items()},
    }


def _measure_emails(
    stack: LocalStack,
    imports: dict[str, ImportTiming],
    measurements: list[Measurement],
    args: argparse.Namespace,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The email consumer's batch at once against one at a time (bench.emails), beside what
    the cost model makes of the operations measured."""
    measured = results(imports, measurements, args)
    measured["memory_mb"] = {f: spec.memory for f, spec in stack.functions.items()}
    with quiet_handlers():
        return email_bench.batch_figures(stack, measured, args.email_rounds, progress)


def _measure_log(
    stack: LocalStack, args: argparse.Namespace, progress: Callable[[str], None]
) -> dict[str, Any]:
    with quiet_handlers():
        admin = Driver(stack).new_admin()
        throughput = log_bench.consumer_throughput(
            stack, CallCounter(), args.log_outcomes, progress
        )
        export = log_bench.csv_export(stack, admin.authorizer, args.export_entries, progress)
        admin_jobs = jobs_bench.measure(
            stack, admin.authorizer, export, log_bench.EXPORT_FIRST_DAY, progress
        )
    return {"log_consumer": throughput, "csv_export": export, "admin_jobs": admin_jobs}


def _measure_webhooks(
    stack: LocalStack, args: argparse.Namespace, progress: Callable[[str], None]
) -> dict[str, Any]:
    with quiet_handlers(), webhook_bench.loopback_receiver() as receiver:
        driver = Driver(stack)
        admin = driver.new_admin()
        endpoint = driver.send(
            driver.api_request(
                "CreateWebhookEndpointFunction", 201, caller=admin,
                body={"url": receiver.url, "events": [webhook_bench.THROUGHPUT]},
            )
        )  # fmt: skip
        return webhook_bench.delivery_throughput(
            stack, CallCounter(), receiver, args.webhook_deliveries, progress,
            describe=lambda: webhook_bench.describe_deliveries(driver, admin, str(endpoint["id"])),
        )  # fmt: skip


def print_publisher_report(run: dict[str, Any]) -> None:
    calls = run["aws_calls_per_record"]
    print(
        f"\nPublisher on the embedded endpoint: {run['records_per_second_per_batch']} records/s"
        f" in batches of {run['batch_size']} ({calls['batched']} AWS calls per record),"
        f" {run['records_per_second_one_per_invocation']} records/s one per invocation"
        f" ({calls['one_per_invocation']}): x{run['ratio']}"
    )


def print_log_report(figures: dict[str, Any]) -> None:
    print("\nLog consumer against the embedded endpoint (batches of 10 outcomes, 2 entries each)")
    print(
        f"  {'scenario':<24} {'entries':>8} {'s':>7} {'entries/s':>10} {'calls/entry':>12}"
        f" {'redelivered':>12}"
    )
    for name, run in figures["log_consumer"].items():
        print(
            f"  {name:<24} {run['entries']:>8} {run['seconds']:>7.2f}"
            f" {run['entries_per_second']:>10.1f} {run['aws_calls_per_entry']:>12.2f}"
            f" {run['records_delivered_again']:>12}"
        )
    export = figures["csv_export"]
    print(
        f"\nCSV export of {export['entries']} entries over {export['days']} days, pages of"
        f" {export['page_limit']}: {export['pages']} pages, {export['rows']} rows; largest page"
        f" {export['largest_page_bytes'] / 1024 / 1024:.2f} MB"
        f" ({export['largest_page_share_of_lambda_limit']:.0%} of Lambda's 6 MB); slowest page"
        f" {export['slowest_page_s_on_moto']} s on moto; the instance's peak memory"
        f" {export['peak_rss_mb']} MB ({export['rss_after_import_mb']} MB after its imports,"
        " of the function's 1,024 MB)"
    )
    jobs_bench.print_report(figures["admin_jobs"])
    _print_reconciliation(figures["reconciliation"])
    hooks = figures["webhooks"]
    if "error" in hooks:
        print(f"\nWebhooks: not measured: {hooks['error']}")
        return
    print(
        f"\nWebhooks: {hooks['deliveries']} events routed at {hooks['events_routed_per_second']}/s"
        f" ({hooks['aws_calls_per_event_routed']} AWS calls each), then delivered to a loopback"
        f" receiver by one sender at {hooks['deliveries_per_second']}/s"
        f" ({hooks['aws_calls_per_delivery_sent']} AWS calls each)"
    )


def _print_reconciliation(run: dict[str, Any]) -> None:
    if "error" in run:
        print(f"\nReconciliation: not measured: {run['error']}")
        return
    print(
        f"\nReconciliation: one run over {run['items']} stuck records {run['by_status']} in"
        f" {run['seconds']} s ({run['items_per_second']} records/s), {run['aws_calls_per_item']}"
        f" AWS calls per record ({run['aws_calls_by_name']}); a run with nothing due makes"
        f" {run['idle_run_aws_calls']} calls"
    )


if __name__ == "__main__":
    raise SystemExit(main())
