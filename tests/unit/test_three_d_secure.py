"""3-D Secure (issue 14): the states out of `requires_action`, the sandbox's challenge
references and events, its local challenge page, and what the publisher makes of it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cashew import outcomes
from cashew.errors import ConflictError
from cashew.gateways.base import WebhookEvent, sign_webhook
from cashew.gateways.sandbox import SandboxGateway
from cashew.payments import states
from local.challenges import Challenges
from tests.unit.test_outcomes import _payment

SECRET = "whsec_" + "s" * 40
THREE_DS = "4000000000003063"


def _gateway(secret: str = SECRET) -> SandboxGateway:
    return SandboxGateway(
        secret=secret, challenge_url="http://127.0.0.1:3999/_sandbox/v1/challenges"
    )


def _charge(gateway: SandboxGateway, key: str = "key-1", capture: bool = True) -> Any:
    token = gateway.tokenise(THREE_DS, 12, 2030, "123").token
    return gateway.authorise(
        token, 1234, "EUR", idempotency_key=key, capture=capture, metadata={"payment_id": "pay_1"}
    )


def _reference(url: str) -> str:
    return url.rsplit("/", 1)[1]


# --- states -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("settled", "succeeded"),
        ("authorised", "requires_capture"),
        ("pending", "processing"),
        ("declined", "failed"),
    ],
)
def test_requires_action_goes_on_as_the_authentication_says(event: Any, status: str) -> None:
    assert states.after("requires_action", event) == status


@pytest.mark.parametrize("event", ["capture", "cancel"])
def test_a_payment_awaiting_authentication_cannot_be_captured_or_canceled(event: Any) -> None:
    with pytest.raises(ConflictError):
        states.after("requires_action", event)


def test_pending_moves_nothing_but_requires_action() -> None:
    for status in ("processing", "succeeded", "requires_capture", "failed", "canceled"):
        with pytest.raises(ConflictError):
            states.after(status, "pending")  # type: ignore[arg-type]


# --- the sandbox ------------------------------------------------------------------------


def test_the_3ds_card_requires_action_with_a_challenge_url_and_moves_nothing() -> None:
    gateway = _gateway()
    charge = _charge(gateway)
    assert (charge.status, charge.amount_captured) == ("requires_action", 0)
    assert charge.action_url.startswith("http://127.0.0.1:3999/_sandbox/v1/challenges/")
    assert "pay_1" not in charge.action_url  # the reference is not the payment id
    challenge = gateway.read_challenge(_reference(charge.action_url))
    assert challenge is not None
    assert (challenge.charge_id, challenge.payment_id) == (charge.id, "pay_1")
    assert (challenge.amount, challenge.currency, challenge.capture) == (1234, "EUR", True)


def test_the_same_key_gives_the_same_challenge_and_another_key_another() -> None:
    gateway = _gateway()
    assert _charge(gateway, "k") == _charge(gateway, "k")
    assert _charge(gateway, "k").action_url != _charge(gateway, "other").action_url


def test_the_3ds_card_by_client_token_requires_action_too() -> None:
    gateway = _gateway()
    attached = gateway.attach_token(gateway.issue_token(THREE_DS, 12, 2030))
    charge = gateway.authorise(
        attached.token, 500, "USD", idempotency_key="t", capture=True, metadata={}
    )
    assert charge.status == "requires_action"


def test_a_forged_edited_or_foreign_reference_is_unknown() -> None:
    gateway = _gateway()
    reference = _reference(_charge(gateway).action_url)
    body, mac = reference.split(".")
    flipped = ("0" if mac[0] != "0" else "1") + mac[1:]
    other = _reference(_charge(_gateway("whsec_" + "o" * 40)).action_url)
    for bad in (
        f"{body}.{flipped}",  # the MAC edited
        f"{body[:-2]}AA.{mac}",  # the description edited
        other,  # another stack's secret
        "pay_1",
        "",
        "<script>alert(1)</script>",
        f"{body}.{mac}.x",
    ):
        assert gateway.read_challenge(bad) is None, bad


@pytest.mark.parametrize(
    ("passed", "capture", "expected"),
    [
        (True, True, ("succeeded", None, 1234)),
        (True, False, ("requires_capture", None, 0)),
        (False, True, ("failed", "authentication_failed", 0)),
    ],
)
def test_a_challenge_event_is_signed_and_parsed_as_the_gateway_sends_it(
    passed: bool, capture: bool, expected: tuple[str, str | None, int]
) -> None:
    gateway = _gateway()
    challenge = gateway.read_challenge(_reference(_charge(gateway, capture=capture).action_url))
    assert challenge is not None
    body = json.dumps(SandboxGateway.challenge_event(challenge, passed)).encode()
    event = gateway.parse_webhook(body, sign_webhook(body, SECRET, 1000), 1000)
    assert isinstance(event, WebhookEvent)
    assert (event.status, event.failure_code, event.amount_captured) == expected
    assert (event.charge_id, event.payment_id, event.currency) == (
        challenge.charge_id, "pay_1", "EUR",
    )  # fmt: skip


def test_pass_and_fail_of_one_charge_share_one_event_id() -> None:
    gateway = _gateway()
    challenge = gateway.read_challenge(_reference(_charge(gateway).action_url))
    assert challenge is not None
    passed = SandboxGateway.challenge_event(challenge, True)
    failed = SandboxGateway.challenge_event(challenge, False)
    assert passed["id"] == failed["id"]


# --- the local challenge page -----------------------------------------------------------


@pytest.fixture
def page() -> tuple[Challenges, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    return Challenges(lambda: SECRET, sent.append), sent


def _event(reference: str, body: str | None = None) -> dict[str, Any]:
    path = f"/_sandbox/v1/challenges/{reference}"
    return {"path": path, "pathParameters": {"reference": reference}, "body": body}


def test_the_page_shows_the_amount_and_a_form_with_pass_and_fail(page: Any) -> None:
    challenges, sent = page
    reference = _reference(_charge(_gateway()).action_url)
    shown = challenges.show(_event(reference))
    assert shown["statusCode"] == 200
    assert shown["headers"]["Content-Type"].startswith("text/html")
    assert "script-src" not in shown["headers"]["Content-Security-Policy"]
    assert "default-src 'none'" in shown["headers"]["Content-Security-Policy"]
    html = shown["body"]
    assert '<form method="post"' in html
    assert 'name="result" value="pass">Pass</button>' in html
    assert 'name="result" value="fail">Fail</button>' in html
    assert "1234 EUR" in html
    assert sent == []


def test_everything_the_page_shows_is_escaped(page: Any) -> None:
    challenges, _ = page
    gateway = _gateway()
    token = gateway.tokenise(THREE_DS, 12, 2030, "123").token
    markup = '"><script>alert(1)</script>'
    charge = gateway.authorise(
        token, 10, "USD", idempotency_key="x", capture=True, metadata={"payment_id": markup}
    )
    html = challenges.show(_event(_reference(charge.action_url)))["body"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    unknown = challenges.show(_event("<script>alert(1)</script>"))
    assert unknown["statusCode"] == 404
    assert "<script>" not in unknown["body"]


def test_pass_sends_the_signed_outcome_once_and_a_second_post_is_409(page: Any) -> None:
    challenges, sent = page
    gateway = _gateway()
    charge = _charge(gateway)
    reference = _reference(charge.action_url)
    assert challenges.complete(_event(reference, "result=pass"))["statusCode"] == 200
    assert [(e["type"], e["data"]["status"]) for e in sent] == [("charge.succeeded", "succeeded")]
    assert sent[0]["data"]["charge_id"] == charge.id
    for again in ("result=pass", "result=fail"):
        assert challenges.complete(_event(reference, again))["statusCode"] == 409
    assert challenges.show(_event(reference))["statusCode"] == 409
    assert len(sent) == 1


def test_fail_sends_authentication_failed(page: Any) -> None:
    challenges, sent = page
    reference = _reference(_charge(_gateway()).action_url)
    assert challenges.complete(_event(reference, "result=fail"))["statusCode"] == 200
    assert [(e["type"], e["data"]["failure_code"]) for e in sent] == [
        ("charge.failed", "authentication_failed")
    ]


@pytest.mark.parametrize(
    "body", [None, "", "result=maybe", "result=PASS", "result=pass&result=fail", "other=pass"]
)
def test_a_bad_result_is_400_and_sends_nothing(page: Any, body: str | None) -> None:
    challenges, sent = page
    reference = _reference(_charge(_gateway()).action_url)
    assert challenges.complete(_event(reference, body))["statusCode"] == 400
    assert sent == []
    # ... and the challenge is still open
    assert challenges.show(_event(reference))["statusCode"] == 200


def test_an_unknown_reference_is_404_and_sends_nothing(page: Any) -> None:
    challenges, sent = page
    foreign = _reference(_charge(_gateway("whsec_" + "o" * 40)).action_url)
    for reference in (foreign, "pay_01J00000000000000000000001", "x"):
        assert challenges.complete(_event(reference, "result=pass"))["statusCode"] == 404
        assert challenges.show(_event(reference))["statusCode"] == 404
    assert sent == []


# --- outcomes ---------------------------------------------------------------------------


def test_requires_action_is_no_outcome_and_what_it_ends_as_is() -> None:
    waiting = _payment("requires_action", source={"type": "card", "payment_method_id": "pm_1"})
    assert outcomes.of_images(None, waiting) is None
    paid = outcomes.of_images(waiting, _payment("succeeded"))
    assert paid is not None and paid.event == "payment.succeeded"
    failed = outcomes.of_images(waiting, _payment("failed", failure_code="authentication_failed"))
    assert failed is not None and failed.event == "payment.failed"
    assert failed.outcome.failure_code == "authentication_failed"
    authorised = outcomes.of_images(waiting, _payment("requires_capture"))
    assert authorised is not None and authorised.event is None  # as after processing


def test_a_stored_requires_action_payment_implies_no_outcome_for_the_republisher() -> None:
    from cashew.payments.store import StoredPayment

    stored = StoredPayment.from_item(_payment("requires_action"))
    assert outcomes.of_item(stored) == []


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:3000/#/3ds-return"),
        (
            {"CASHEW_APP_URL": "https://pay.example.com/app/"},
            "https://pay.example.com/app/#/3ds-return",
        ),
        (
            {
                "CASHEW_APP_URL": "https://pay.example.com/",
                "CASHEW_3DS_RETURN_URL": "https://x.example/back",
            },
            "https://x.example/back",
        ),
    ],
)
def test_stripe_gets_the_configured_return_url(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    from cashew.config import get_settings
    from cashew.gateways import GatewayKeys, _stripe

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    gateway = _stripe(get_settings(), GatewayKeys("sk_test_x", SECRET))
    assert gateway._return_url == expected  # type: ignore[attr-defined]


def test_the_sandbox_gets_the_configured_challenge_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from cashew.config import get_settings
    from cashew.gateways import GatewayKeys, _sandbox

    monkeypatch.setenv(
        "CASHEW_SANDBOX_CHALLENGE_URL", "http://127.0.0.1:4321/_sandbox/v1/challenges"
    )
    get_settings.cache_clear()
    gateway = _sandbox(get_settings(), GatewayKeys("", SECRET))
    charge = _charge(gateway)  # type: ignore[arg-type]
    assert charge.action_url.startswith("http://127.0.0.1:4321/_sandbox/v1/challenges/")
