"""Review of issue 14: the sandbox's 3-D Secure challenge reference (in the URL, so in
browser history, proxies' logs and Referer headers) does not disclose the charge it names:
neither the payment id, the amount, the currency nor the charge id can be read from it, by
any decoding; and the challenge page sends no Referer onwards."""

from __future__ import annotations

import base64
import binascii
import contextlib

from local.challenges import challenge_page
from tests.unit.test_three_d_secure import _charge, _gateway, _reference


def _decodings(reference: str) -> list[bytes]:
    body = reference.split(".", maxsplit=1)[0]
    out = []
    for shift in range(4):  # every alignment, so no part of it is readable base64
        part = body[shift:]
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return [body.encode(), *out]


def test_the_reference_discloses_nothing_of_the_charge() -> None:
    gateway = _gateway()
    charge = _charge(gateway)
    reference = _reference(charge.action_url)
    challenge = gateway.read_challenge(reference)
    assert challenge is not None and challenge.payment_id == "pay_1"
    for decoded in _decodings(reference):
        for secret in (b"pay_1", b"1234", b"EUR", charge.id.encode(), b"charge_id", b"amount"):
            assert secret not in decoded, (secret, decoded)
    # (still one URL per charge: the same key gives the same reference)
    assert _charge(gateway).action_url == charge.action_url


def test_the_challenge_page_sends_no_referrer_and_cannot_be_framed() -> None:
    challenge = _gateway().read_challenge(_reference(_charge(_gateway()).action_url))
    assert challenge is not None
    headers = challenge_page(challenge, "/_sandbox/v1/challenges/x")["headers"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
