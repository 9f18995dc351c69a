"""The email consumer's batch in `make bench`: its messages at once, against one at a time.

SendEmailsFunction delivers the messages of a batch each in a thread of its own
(functions/notifications/send_emails.py). What that buys is time spent waiting on AWS, which
the embedded endpoint cannot show: it answers in about a millisecond, one request at a time.
So every AWS call of the layer here first waits its modelled in-region latency
(`cost.LATENCY_MS`: SES 40 ms, DynamoDB 5 ms, ...) in a botocore `before-call` hook on
`cashew.aws.session()`, outside the endpoint, where the waits of concurrent calls overlap as
the network's would; then the endpoint serves it.

For each of `rounds` rounds: two batches of `BATCH` payments' bus events (each payment
published and its log entries written first, so every email has its receipt: 2 emails a
message), one delivered by SendEmailsFunction as deployed (at once), the other by Powertools'
BatchProcessor calling the same record handler one record after another (as before), in
alternating order. Reported: the median wall time of a batch each way and their ratio, beside
what `cost.billed_ms` models for a batch each way from the operation's measured calls and CPU
(the capacity model's figure): the measurement is the check on the model.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from bench import cost
from bench.harness import Driver, HarnessError, LocalStack, call_name, local_stack
from cashew import aws

BATCH = cost.QUEUE_BATCH
PAYMENT_AMOUNT = 100
FUNCTION = "SendEmailsFunction"


@contextmanager
def modelled_latency() -> Iterator[None]:
    """Each AWS call of the layer waits its `cost.LATENCY_MS` first, inside this block: the
    layer's clients are made anew from a hooked session (a client copies its session's hooks
    when it is made), and forgotten again after it."""

    def wait(model: Any, **_: Any) -> None:  # None: the call goes on
        time.sleep(cost.latency(call_name(model)) / 1000)

    aws.reset()
    session = aws.session()
    session.events.register("before-call", wait)
    try:
        yield
    finally:
        session.events.unregister("before-call", wait)
        aws.reset()


def _one_at_a_time(event: dict[str, Any]) -> dict[str, Any]:
    """The batch as the email consumer delivered it before: one record after another."""
    from cashew.notifications import service  # after the stack's environment is set

    def deliver(record: SQSRecord) -> None:
        receives = int(record.attributes.approximate_receive_count or 1)
        service.handle(record.body, receives, record.receipt_handle)

    return dict(process_partial_response(event, deliver, BatchProcessor(EventType.SQS)))


def _batch_event(driver: Driver, payer: Any, payee_id: str) -> dict[str, Any]:
    """One SQS event of `BATCH` payments' bus events, their outcomes published and logged."""
    records: list[dict[str, Any]] = []
    for _ in range(BATCH):
        payment = driver.pay(payer, payee_id, PAYMENT_AMOUNT)
        driver.send(driver.publish_request(payment["id"]))
        driver.send(driver.consume_request(payment["id"]))
        records.extend(driver.email_request(payment["id"]).event["Records"])
    return {"Records": records}


def batch_figures(
    stack: LocalStack, results: dict[str, Any], rounds: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The figures of this module's docstring; `results` holds the measured operations
    (`send_emails` among them) that `cost.billed_ms` models from."""
    driver = Driver(stack)
    payer, payee = driver.new_account(), driver.new_account()
    card = driver.add_card(payer)
    driver.top_up(payer, card, 2 * rounds * BATCH * PAYMENT_AMOUNT)
    while driver._stream_records():  # this driver starts at the stream's oldest change
        pass
    ways: dict[str, Callable[[dict[str, Any]], Any]] = {
        "at_once": lambda event: stack.invoke(FUNCTION, event),
        "one_at_a_time": _one_at_a_time,
    }
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    progress(f"the email consumer: {rounds} x 2 batches of {BATCH}, AWS latencies modelled")
    for round_ in range(rounds):
        order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for way in order:
            event = _batch_event(driver, payer, payee.id)
            with modelled_latency():
                began = time.perf_counter()
                result = ways[way](event)
                seconds[way].append(time.perf_counter() - began)
            if result.get("batchItemFailures") != []:
                raise HarnessError(f"the email consumer ({way}) failed items: {result}")
    measured = {way: round(statistics.median(s) * 1000, 1) for way, s in seconds.items()}
    step = next(s for s in cost.path() if s.operation == "send_emails")
    modelled = {
        "at_once": round(cost.billed_ms(results, step), 1),
        "one_at_a_time": round(cost.billed_ms(results, step.one_at_a_time()), 1),
    }
    return {
        "batch": BATCH,
        "rounds": rounds,
        "emails_per_message": 2,
        "measured_ms_per_batch": measured,
        "ratio": round(measured["one_at_a_time"] / measured["at_once"], 2),
        "modelled_ms_per_batch": modelled,
        "modelled_ratio": round(modelled["one_at_a_time"] / modelled["at_once"], 2),
    }


def print_report(figures: dict[str, Any]) -> None:
    measured, modelled = figures["measured_ms_per_batch"], figures["modelled_ms_per_batch"]
    print(
        f"\nEmail consumer, a batch of {figures['batch']} messages with AWS latencies modelled:"
        f" at once {measured['at_once']} ms, one at a time {measured['one_at_a_time']} ms"
        f" ({figures['ratio']} x); the capacity model's {modelled['at_once']} and"
        f" {modelled['one_at_a_time']} ms ({figures['modelled_ratio']} x)"
    )


def main() -> int:
    """`python -m bench.emails`: this section alone (the operations it models from, then the
    batches), printed; bench/results.json is left as it is."""
    from bench import run  # here: run imports this module

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    args = run._parser().parse_args([])
    needed = {run.BUDGET_OPERATION, "log_consume", "send_emails"}
    with local_stack() as stack:
        measurements = run._measure_all(stack, args.warm_runs, progress, needed)
        measured = run.results({}, measurements, args)
        measured["memory_mb"] = {f: spec.memory for f, spec in stack.functions.items()}
        with run.quiet_handlers():
            figures = batch_figures(stack, measured, args.email_rounds, progress)
    print_report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
