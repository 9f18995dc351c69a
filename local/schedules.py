"""The scheduled functions of template.yaml (`Schedule` and `ScheduleV2` events), run on their
schedules by `make dev`, as EventBridge would: every `rate(...)` interval, the function is
invoked with a Scheduled Event. Nothing here lists the schedules: they are read from the
template (`local.specs`).

`CASHEW_RECONCILE_INTERVAL` (seconds, >= 1) overrides the interval of the reconciliation
schedule (the schedule of `RECONCILE_FUNCTION`), so the local stack can reconcile every
second where the template says every 5 minutes.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from local.cfn import ACCOUNT_ID, REGION
from local.runtime import Invocation
from local.specs import FunctionSpec, ScheduleEvent

_log = logging.getLogger("local.schedules")

RECONCILE_FUNCTION = "ReconcileFunction"
INTERVAL_VARIABLE = "CASHEW_RECONCILE_INTERVAL"


def scheduled_event(event: ScheduleEvent, now: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a scheduled target."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment,
        "region": REGION,
        "resources": [
            f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{event.function_id}-{event.name}"
        ],
        "detail": {},
    }


def interval(event: ScheduleEvent, environ: Mapping[str, str] = os.environ) -> float:
    """Seconds between two runs of `event`: its rate, or CASHEW_RECONCILE_INTERVAL for the
    reconciliation schedule (refused when it is not a whole number >= 1)."""
    if event.function_id == RECONCILE_FUNCTION and (value := environ.get(INTERVAL_VARIABLE)):
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{INTERVAL_VARIABLE} must be a whole number of seconds >= 1")
        return float(value)
    return float(event.rate_seconds)


def check_intervals(specs: Mapping[str, FunctionSpec]) -> None:
    """Raise ValueError when a schedule's interval is not one the local stack can run."""
    for spec in specs.values():
        for event in spec.schedule_events:
            interval(event)


class Schedule(threading.Thread):
    """One schedule: waits its interval, invokes its function, again, until `stop()`. A run
    that fails is logged and the schedule goes on, as EventBridge's does; runs never overlap
    here (the next waits for the last to end)."""

    def __init__(
        self, event: ScheduleEvent, every: float, invoke: Callable[[str, Any], Invocation]
    ) -> None:
        super().__init__(name=f"schedule-{event.function_id}-{event.name}", daemon=True)
        self.event, self.every, self._invoke = event, every, invoke
        self._stopping = threading.Event()
        self.runs = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.wait(self.every):
            invocation = self._invoke(self.event.function_id, scheduled_event(self.event))
            self.runs += 1
            if not invocation.ok:
                _log.warning("%s: scheduled run failed: %s", self.name, invocation.error)


class Schedules:
    """Every schedule of `specs`, started and stopped together."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        invoke: Callable[[str, Any], Invocation],
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.schedules = [
            Schedule(event, interval(event, environ), invoke)
            for spec in specs.values()
            for event in spec.schedule_events
        ]

    def start(self) -> Schedules:
        for schedule in self.schedules:
            schedule.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Every schedule told to stop, then waited for `timeout` seconds in all; one still
        running its function after that is a daemon thread, ending with the process."""
        for schedule in self.schedules:
            schedule.stop()
        for schedule in self.schedules:
            if schedule.is_alive():
                schedule.join(timeout)
