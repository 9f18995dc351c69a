"""The bench's DynamoDB unit rules (bench.capacity) and its cost model (bench.cost): the
figures issue 16's goals are judged by."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from bench import capacity, cost
from bench.capacity import Index, Table


def test_item_sizes_follow_dynamodbs_rules():
    # names count, strings are UTF-8 bytes, numbers one byte per two digits plus one
    assert capacity.item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert capacity.item_size({"n": {"N": "12345"}}) == 1 + 4
    assert capacity.item_size({"n": {"N": "100"}}) == 1 + 2  # trailing zeros trimmed
    assert capacity.item_size({"é": {"S": "é"}}) == 2 + 2
    assert capacity.item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 2
    # a map: 3 bytes, and per element 1 byte, its name and its value
    assert capacity.item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert capacity.item_size({"l": {"L": [{"S": "x"}, {"N": "1"}]}}) == 1 + 3 + (1 + 1) + (1 + 2)


def test_a_write_is_billed_per_kilobyte_of_the_larger_image_and_doubled_in_a_transaction():
    small = {"pk": {"S": "x" * 10}}
    big = {"pk": {"S": "x" * 1500}}
    assert capacity.write_units(None, small, transactional=False) == 1
    assert capacity.write_units(small, big, transactional=False) == 2
    assert capacity.write_units(big, small, transactional=True) == 4


def test_index_writes_count_new_moved_and_changed_entries_only():
    table = Table(
        "t", ("pk",), (Index("ByDay", ("day",), "ALL"), Index("Keys", ("k",), "KEYS_ONLY"))
    )
    before = {"pk": {"S": "a"}, "day": {"S": "d1"}, "k": {"S": "1"}, "v": {"N": "1"}}
    # a projected attribute changed: one write to ALL, none to KEYS_ONLY
    after = {**before, "v": {"N": "2"}}
    assert capacity.index_units(table, before, after) == {"ByDay": 1}
    # the index key moved: a delete and a put
    moved = {**before, "day": {"S": "d2"}}
    assert capacity.index_units(table, before, moved) == {"ByDay": 2}
    # a new item enters both; an item without the index key enters neither
    assert capacity.index_units(table, None, before) == {"ByDay": 1, "Keys": 1}
    assert capacity.index_units(table, None, {"pk": {"S": "b"}}) == {}


def test_reads_are_billed_per_4_kb_halved_when_eventually_consistent():
    assert capacity.read_units(10, consistent=False) == 0.5
    assert capacity.read_units(4097, consistent=True) == 2
    assert capacity.read_units(100, consistent=True, transactional=True) == 2


def _results() -> dict:
    operations = [step.operation for step in cost.path() + cost.webhook_path()]
    functions = {op: f"{op}_fn" for op in operations}
    units = {"read_units": 1.0, "write_units": 4.0, "index_write_units": 2.0,
             "write_units_by_table": {"t": 6.0}}  # fmt: skip
    return {
        "operation_function": functions,
        "memory_mb": {f: 1024 for f in functions.values()},
        "handler_ms_without_io": {op: 2.0 for op in operations},
        "aws_call_names": {
            op: {"warm": ["DynamoDB.GetItem", "SQS.SendMessage"]} for op in operations
        },
        "dynamodb_units": {op: dict(units) for op in operations},
        "log_bytes": {op: 1000 for op in operations},
    }


def test_the_cost_model_adds_up_and_follows_the_units():
    results = _results()
    model = cost.per_payment(results)
    assert model["total_usd"] == pytest.approx(sum(model["parts_usd"].values()), abs=0.05)
    assert model["parts_usd"]["api_gateway"] == cost.PRICES["api_gateway_rest_per_million"]
    # each step's units count once per payment, a batch's share included
    per_payment = sum(s.share * s.per_invocation for s in cost.path())
    assert model["dynamodb_units_per_payment"]["write_units"] == pytest.approx(6 * per_payment)
    # twice the writes of the payment: its part of the writes' cost grows by exactly that
    heavier = copy.deepcopy(results)
    heavier["dynamodb_units"]["balance_payment"]["write_units"] += 6
    extra = 6 * cost.PRICES["dynamodb_write_unit_per_million"]
    assert cost.per_payment(heavier)["parts_usd"]["dynamodb_writes"] == pytest.approx(
        model["parts_usd"]["dynamodb_writes"] + extra, abs=0.01
    )


def test_a_batched_send_shares_its_latency_among_the_records():
    results = _results()
    batched = cost.Step("publish_outcome", 1 / 25, 25, calls_shared_by=10)
    alone = cost.Step("publish_outcome", 1 / 25, 25)
    io = cost.LATENCY_MS["DynamoDB"] + cost.LATENCY_MS["SQS"]
    assert cost.billed_ms(results, alone) - cost.billed_ms(results, batched) == pytest.approx(
        25 * io * (1 - 1 / 10)
    )


def test_records_handled_at_once_wait_together_and_still_spend_their_cpu_one_by_one():
    results = _results()
    emails = next(s for s in cost.path() if s.operation == "send_emails")
    assert emails.at_once == cost.QUEUE_BATCH  # the email consumer's threads
    cpu = 2.0 * cost.FULL_CPU_MB / 1024
    io = cost.LATENCY_MS["DynamoDB"] + cost.LATENCY_MS["SQS"]
    assert cost.billed_ms(results, emails) == pytest.approx(10 * cpu + io)
    assert cost.billed_ms(results, emails.one_at_a_time()) == pytest.approx(10 * (cpu + io))
    # three at a time: four rounds of waits for a batch of ten
    assert cost.billed_ms(results, replace(emails, at_once=3)) == pytest.approx(10 * cpu + 4 * io)


def test_the_modelled_cold_start_charges_the_invoke_at_the_memorys_share_of_a_vcpu():
    from bench import coldstart

    run = coldstart.Run(init_ms=100.0, invoke_ms=50.0, memory=1024)
    assert run.modelled_ms == pytest.approx(100 + 50 * 1769 / 1024)
    full = coldstart.Run(init_ms=100.0, invoke_ms=50.0, memory=1769)
    assert full.modelled_ms == pytest.approx(150)


def test_cold_start_figures_are_ratios_to_the_baseline_and_flag_a_wrong_choice():
    from bench import coldstart

    def runs(init: float, invoke: float) -> tuple[coldstart.Run, ...]:
        return tuple(coldstart.Run(init, invoke, 1024) for _ in range(3))

    ddb, both = ("dynamodb",), ("dynamodb", "sqs")
    base = coldstart.ColdStart("Baseline", 1024, runs(200, 0), runs(200, 0), ddb, ddb)
    lazy_wins = coldstart.ColdStart("A", 1024, runs(100, 10), runs(300, 10), ddb, ddb)
    eager_wins = coldstart.ColdStart("B", 1024, runs(100, 100), runs(220, 5), both, ddb)
    figures = coldstart.figures([lazy_wins, eager_wins], base)
    assert figures["functions"]["B"]["ratio_to_baseline"] == pytest.approx(
        (220 + 5 * 1769 / 1024) / 200, abs=0.01
    )
    assert figures["choice_differs_from_figures"] == ["A"]
    assert figures["over_goal"] == ["A"]  # 1.59 x B; B is 1.14 x B
    assert figures["prepared_differs_from_used"] == ["B"]  # its request used SQS too
    assert figures["prepared_differs_from_used"] == ["B"]  # its request also used SQS


def test_the_capacity_model_reads_the_templates_parameters_and_their_overrides():
    from bench import capacity_model
    from local.cfn import load_template

    results = _results()
    results["operation_function"]["log_consume"] = "LogConsumerFunction"
    results["memory_mb"]["LogConsumerFunction"] = 1024
    results["memory_mb"]["PublishOutcomesFunction"] = 1024
    results["publisher"] = {"aws_calls_per_record": {"batched": 0.24}}
    results["log_consume_per_entry"] = {"entries_per_batch": 2}

    def share(rows, name):
        return next(r.share for r in rows if r.name.startswith(name))

    template = load_template()
    default = capacity_model.limits(results, 10_000, template)
    sharded = capacity_model.limits(results, 10_000, template, {"LogDayShards": "32"})
    # 20,000 entries/s on one partition of 1,000 WRU/s; then on 32
    assert share(default, "DynamoDB: DayIndex") == pytest.approx(20)
    assert share(sharded, "DynamoDB: DayIndex") == pytest.approx(20 / 32)
    # the publisher's rate grows with the parallelization factor
    faster = capacity_model.limits(
        results, 10_000, template, {"PublisherParallelizationFactor": "4"}
    )
    assert share(faster, "Streams") == pytest.approx(share(default, "Streams") / 2)
    # a hot payee's half of the payments spreads over its credit shards
    assert share(default, "DynamoDB: a hot payee's credit shard") == pytest.approx(5000 / 32 / 250)
    wider = capacity_model.limits(results, 10_000, template, {"HotPayeeShards": "64"})
    assert share(wider, "DynamoDB: a hot payee's credit shard") == pytest.approx(5000 / 64 / 250)
    # every payment's two emails count against SES's sending rate
    assert share(default, "SES: emails sent") == pytest.approx(
        20_000 / capacity_model.SES_SEND_RATE
    )
