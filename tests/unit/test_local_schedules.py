"""The local stack's schedules: read from template.yaml's Schedule/ScheduleV2 events, run on
their interval (CASHEW_RECONCILE_INTERVAL for reconciliation's), stopped cleanly."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from local.cfn import load_template
from local.runtime import Invocation
from local.schedules import RECONCILE_FUNCTION, Schedules, check_intervals, interval
from local.specs import ScheduleEvent, functions, rate_seconds


def test_the_template_schedules_reconciliation_every_5_minutes() -> None:
    events = [e for spec in functions(load_template()).values() for e in spec.schedule_events]
    assert [(e.function_id, e.expression, e.rate_seconds) for e in events] == [
        (RECONCILE_FUNCTION, "rate(5 minutes)", 300)
    ]


def test_schedules_of_both_kinds_are_read_and_disabled_ones_left_out() -> None:
    template = load_template()
    template["Resources"]["ReconcileFunction"]["Properties"]["Events"] = {
        "Rule": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}},
        "Scheduler": {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "rate(2 hours)"}},
        "Off": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 day)", "Enabled": False}},
        "OffV2": {"Type": "ScheduleV2",
                  "Properties": {"ScheduleExpression": "rate(1 day)", "State": "DISABLED"}},
    }  # fmt: skip
    spec = functions(template)["ReconcileFunction"]
    assert [(e.name, e.rate_seconds) for e in spec.schedule_events] == [
        ("Rule", 60),
        ("Scheduler", 7200),
    ]


@pytest.mark.parametrize("expression", ["cron(0 12 * * ? *)", "rate(0.5 minutes)", "rate(5)"])
def test_what_the_local_stack_cannot_run_is_refused_by_name(expression: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_seconds(expression)


def test_the_reconcile_interval_overrides_only_reconciliation() -> None:
    ours = ScheduleEvent(RECONCILE_FUNCTION, "Every5Minutes", "rate(5 minutes)", 300)
    other = ScheduleEvent("OtherFunction", "Hourly", "rate(1 hour)", 3600)
    env = {"CASHEW_RECONCILE_INTERVAL": "1"}
    assert (interval(ours, env), interval(other, env)) == (1.0, 3600.0)
    assert interval(ours, {}) == 300.0
    for bad in ("0", "-3", "fast"):
        with pytest.raises(ValueError, match="CASHEW_RECONCILE_INTERVAL"):
            interval(ours, {"CASHEW_RECONCILE_INTERVAL": bad})


def test_check_intervals_refuses_a_bad_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASHEW_RECONCILE_INTERVAL", "0")
    with pytest.raises(ValueError, match="CASHEW_RECONCILE_INTERVAL"):
        check_intervals(functions(load_template()))


def test_a_schedule_invokes_its_function_on_its_interval_and_stops_cleanly() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()

    def invoke(function_id: str, event: Any) -> Invocation:
        calls.append((function_id, event))
        if len(calls) >= 3:
            done.set()
        return Invocation("r", error={"errorType": "X"} if len(calls) == 2 else None)

    specs = functions(load_template())
    schedules = Schedules(specs, invoke, {"CASHEW_RECONCILE_INTERVAL": "1"})
    for schedule in schedules.schedules:
        schedule.every = 0.05  # as fast as the test needs
    started = time.monotonic()
    schedules.start()
    assert done.wait(5)
    schedules.stop(timeout=2)
    assert time.monotonic() - started < 3
    assert not any(s.is_alive() for s in schedules.schedules)
    # a failed run (the second) did not stop the schedule; every event is a Scheduled Event
    assert {f for f, _ in calls} == {RECONCILE_FUNCTION}
    assert all(e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events"
               for _, e in calls)  # fmt: skip
