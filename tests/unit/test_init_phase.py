"""What a handler does in Lambda's INIT phase (cashew.aws.prepare) and after a SnapStart
restore (cashew.snapstart)."""

from __future__ import annotations

import random
import sys
import types

import pytest
import ulid

from cashew import aws, snapstart


@pytest.fixture(autouse=True)
def fresh_layer(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # no credential lookup on the network
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset()
    yield
    aws.reset()


def test_outside_lambda_prepare_makes_no_client(monkeypatch):
    # Given no Lambda INIT (tests, tools)
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    # When a handler module prepares its clients
    aws.prepare("dynamodb", "sqs")
    # Then none exists: they stay lazy
    assert aws._client.made() == 0


def test_in_lambdas_init_prepare_makes_the_clients_and_registers_no_hook(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    registered = []
    hooks = types.SimpleNamespace(register_after_restore=registered.append)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    aws.prepare("dynamodb", "sesv2")
    assert aws._client.made() == 1 and aws.sesv2.made() == 1
    assert aws.dynamodb() is aws.dynamodb()  # the same client serves the requests
    assert registered == []


def test_an_init_for_a_snapshot_registers_the_restore_hook(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    registered = []
    hooks = types.SimpleNamespace(register_after_restore=registered.append)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    aws.prepare("dynamodb")
    [hook] = registered
    assert hook.func is snapstart.after_restore and hook.args == (aws.forget_secrets,)


def test_two_environments_restored_from_one_snapshot_draw_apart(monkeypatch):
    # Given the state a snapshot froze: random's state, and the ULID generator's last draw
    random.seed(1234)
    frozen = random.getstate()
    ulid.ULID()
    policy = ulid.default_generator.policy
    secrets_provider = aws._secrets
    aws._secrets()
    # When two environments are restored from it and each runs the hook
    draws = []
    for _ in range(2):
        random.setstate(frozen)
        snapstart.after_restore(aws.forget_secrets)
        draws.append(random.random())
    # Then their jitter differs, the generator starts afresh, and no secret is kept
    assert draws[0] != draws[1]
    assert ulid.default_generator.policy is not policy
    assert ulid.default_generator.policy.prev_timestamp == 0
    assert secrets_provider.made() == 0


def test_every_handler_prepares_only_clients_the_layer_makes():
    # A misspelt service would fail only in Lambda's INIT (tests never prepare): caught here
    from bench.coldstart import declared_services
    from local.cfn import load_template
    from local.specs import functions

    prepared = {
        function_id: declared_services(spec)
        for function_id, spec in functions(load_template()).items()
    }
    assert prepared["CreatePaymentFunction"] == ("dynamodb",)
    for function_id, services in prepared.items():
        assert set(services or ()) <= set(aws._CLIENTS), function_id


def test_threads_asking_for_clients_together_get_each_one_made_once():
    # Given ten threads that ask for the same clients at the same moment (a batch of the
    # email consumer, each record in a thread, in a process that made none yet)
    import threading

    start, got = threading.Barrier(10), []

    def ask() -> None:
        start.wait()
        got.append((aws.session(), aws.sqs(), aws.sesv2()))

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one session and one client of each were made, and every thread has those
    assert len(got) == 10 and len({tuple(map(id, g)) for g in got}) == 1
    assert aws.session.made() == 1 and aws._client.made() == 1 and aws.sesv2.made() == 1
