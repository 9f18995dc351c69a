"""The idempotency protocol is one place: a card charge hands its scope to it, and does not
go back and forth (issue 11). The walk is traced: every call into the protocol's module
from code outside it counts as one visit."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from cashew.errors import IdempotencyInProgressError
from cashew.gateways import get_gateway
from cashew.gateways.base import GatewayOutcomeUnknownError
from cashew.identity import Caller
from cashew.payments import create, idempotency
from cashew.payments.models import TopUpRequest
from tests.integration.conftest import add_card, balance

PROTOCOL = idempotency.__file__
MAX_VISITS = 2


def visits(run: Callable[[], Any]) -> tuple[int, Any]:
    """How many times `run` enters the protocol's module from outside it, and its result
    (or the exception it raised)."""
    count = 0

    def tracer(frame: FrameType, event: str, _: Any) -> None:
        nonlocal count
        if event == "call" and frame.f_code.co_filename == PROTOCOL:
            caller = frame.f_back
            if caller is None or caller.f_code.co_filename != PROTOCOL:
                count += 1

    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        outcome: Any = run()
    except Exception as exc:
        outcome = exc
    finally:
        sys.settrace(None)
    return count, outcome


class _LosesTheFirstAnswers:
    """The sandbox gateway, whose answers to the first request's attempts are lost."""

    def __init__(self, real: Any) -> None:
        self.real, self.lost = real, True

    def authorise(self, *args: Any, **kwargs: Any) -> Any:
        charge = self.real.authorise(*args, **kwargs)
        if self.lost:
            raise GatewayOutcomeUnknownError("read timeout")
        return charge


def test_a_card_charge_visits_the_protocol_at_most_twice(stack, new_user, monkeypatch):
    # Given a user with a card, and a card charge traced from where it has its scope
    user = new_user()
    method = add_card(stack, user)
    caller = Caller(user.id, user.session_id, "user")
    walks: list[int] = []
    charge = create._card_charge

    def traced(*args: Any, **kwargs: Any) -> Any:
        count, outcome = visits(lambda: charge(*args, **kwargs))
        walks.append(count)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(create, "_card_charge", traced)
    request = TopUpRequest(amount=700, currency="USD", payment_method_id=method)
    # When a top-up succeeds at once
    create.top_up(caller, request, str(uuid.uuid4()))
    # ... and another loses the gateway's answers (the record stays in progress), then is
    # retried and resumed, then replayed
    gateway = _LosesTheFirstAnswers(get_gateway())
    monkeypatch.setattr(create, "get_gateway", lambda: gateway)
    key = str(uuid.uuid4())
    with pytest.raises(IdempotencyInProgressError):
        create.top_up(caller, request, key)
    gateway.lost = False
    resumed = create.top_up(caller, request, key)
    replayed = create.top_up(caller, request, key)
    # Then every walk entered the protocol at most twice, and the money moved once each
    assert (resumed.replayed, replayed.replayed) == (False, True)
    assert balance(stack, user) == 1_400
    assert len(walks) == 4 and max(walks) <= MAX_VISITS, walks
