"""The sandbox gateway's 3-D Secure challenge pages, served by `make dev` beside the API
(never part of template.yaml), at each `next_action.url` the sandbox gives a payment:

- `GET /_sandbox/v1/challenges/{reference}`: a small HTML page naming the amount, with a
  form of two buttons, "Pass" and "Fail";
- `POST` to the same URL with the form field `result=pass` or `result=fail`: completes the
  challenge, and the sandbox then sends its signed webhook (as for `processing` cards,
  through the local stack's scheduler), which settles the payment
  (cashew.payments.webhooks).

The reference is unguessable: the sandbox authenticates it with an HMAC under a key derived
from the stack's gateway secret (`SandboxGateway.read_challenge`). An unknown reference is
404, a bad `result` 400, and a challenge completed before 409 (this process remembers which
it completed; the webhook's dedupe and the payment's conditional move make even a repeat
after a restart change nothing). Everything the page shows is escaped, and its
Content-Security-Policy allows no script. Nothing of a request is logged.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from local.api import LocalRoute

if TYPE_CHECKING:
    from cashew.gateways.sandbox import Challenge

PREFIX = "/_sandbox/v1/challenges"
PATH = PREFIX + "/{reference}"
WEBHOOK_DELAY_SECONDS = 0.5
_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
)
_STYLE = "body{font-family:sans-serif;max-width:480px;margin:3em auto}button{margin-right:1em}"

Send = Callable[[dict[str, Any]], None]
"""Deliver a sandbox webhook event (the scheduler signs it at delivery time)."""


def _page(status: int, title: str, body: str) -> dict[str, Any]:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": _POLICY,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # the URL holds the challenge's reference
    }
    return {"statusCode": status, "headers": headers, "body": document}


def _amount(challenge: Challenge) -> str:
    return f"{challenge.amount} {challenge.currency} (minor units)"


def challenge_page(challenge: Challenge, action: str) -> dict[str, Any]:
    """The page of an open challenge: what is being paid, and the two buttons."""
    payment = html.escape(challenge.payment_id or "")
    body = (
        "<p>The sandbox bank asks you to authenticate this payment.</p>"
        f"<p>Amount: <b>{html.escape(_amount(challenge))}</b><br>"
        f"Payment: <code>{payment}</code></p>"
        f'<form method="post" action="{html.escape(action, quote=True)}">'
        '<button type="submit" name="result" value="pass">Pass</button>'
        '<button type="submit" name="result" value="fail">Fail</button>'
        "</form>"
    )
    return _page(200, "3-D Secure challenge", body)


class Challenges:
    """The challenge pages of one local stack: `secret` gives the gateway secret (asked at
    each request), `send` delivers the webhook of a completed challenge."""

    def __init__(self, secret: Callable[[], str], send: Send) -> None:
        self._secret = secret
        self._send = send
        self._completed: dict[str, str] = {}  # charge id -> "pass" | "fail"
        self._lock = threading.Lock()

    def routes(self) -> Mapping[tuple[str, str], LocalRoute]:
        return {("GET", PATH): self.show, ("POST", PATH): self.complete}

    def _challenge(self, event: dict[str, Any]) -> Challenge | None:
        from cashew.gateways.sandbox import SandboxGateway  # noqa: PLC0415 - the layer's

        reference = (event.get("pathParameters") or {}).get("reference") or ""
        return SandboxGateway(secret=self._secret()).read_challenge(reference)

    def show(self, event: dict[str, Any]) -> dict[str, Any]:
        challenge = self._challenge(event)
        if challenge is None:
            return _page(404, "Unknown challenge", "<p>No such 3-D Secure challenge.</p>")
        with self._lock:
            done = self._completed.get(challenge.charge_id)
        if done is not None:
            return _completed_page(409, done)
        return challenge_page(challenge, str(event.get("path") or ""))

    def complete(self, event: dict[str, Any]) -> dict[str, Any]:
        challenge = self._challenge(event)
        if challenge is None:
            return _page(404, "Unknown challenge", "<p>No such 3-D Secure challenge.</p>")
        form = parse_qs(str(event.get("body") or ""), keep_blank_values=True, max_num_fields=10)
        results = form.get("result", [])
        if len(results) != 1 or results[0] not in ("pass", "fail"):
            return _page(
                400, "Bad request", '<p>The form field result must be "pass" or "fail".</p>'
            )
        result = results[0]
        with self._lock:
            done = self._completed.get(challenge.charge_id)
            if done is not None:
                return _completed_page(409, done)
            self._completed[challenge.charge_id] = result
        from cashew.gateways.sandbox import SandboxGateway  # noqa: PLC0415 - the layer's

        self._send(SandboxGateway.challenge_event(challenge, passed=result == "pass"))
        return _completed_page(200, result)


def _completed_page(status: int, result: str) -> dict[str, Any]:
    outcome = "passed" if result == "pass" else "failed"
    title = "Challenge completed" if status == 200 else "Challenge already completed"
    return _page(status, title, f"<p>Authentication {outcome}. You can close this page.</p>")
