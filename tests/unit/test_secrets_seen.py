"""The e2e client's record of the secrets that crossed the API (tests/support/secrets_seen.py),
which every local stack's stop scans its tables and log for."""

from __future__ import annotations

import json

import requests

from tests.support.secrets_seen import SecretsSeen, standing_alone


def _exchange(url: str, sent: object, answer: object, content_type: str = "application/json"):
    request = requests.Request("POST", url, json=sent).prepare()
    response = requests.Response()
    response.request, response.status_code = request, 200
    response.headers["Content-Type"] = content_type
    response._content = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
    return response


def test_passwords_sent_and_secrets_answered_are_kept():
    seen = SecretsSeen()
    seen.hook(
        _exchange(
            "http://s/v1/users/me/mfa/enrol",
            {"password": "pw-long-enough"},
            {"secret": "JBSWY3DPEHPK3PXP", "otpauth_uri": "otpauth://..."},
        )
    )
    seen.hook(
        _exchange(
            "http://s/v1/users/me/mfa/confirm",
            {"code": "123456"},
            {"recovery_codes": ["abcd-efgh-ijkl", "mnop-qrst-uvwx"]},
        )
    )
    seen.hook(
        _exchange(
            "http://s/v1/auth/password-reset/confirm",
            {"token": "usr_1.secret-part-of-it", "new_password": "new pw long"},
            {},
        )
    )
    assert set(seen.values) == {
        "pw-long-enough",
        "JBSWY3DPEHPK3PXP",
        "abcd-efgh-ijkl",
        "mnop-qrst-uvwx",
        "usr_1.secret-part-of-it",
        "secret-part-of-it",
        "new pw long",
    }  # a 6-digit code is too short to tell from stored text


def test_an_emailed_links_token_is_kept_and_a_card_token_is_not():
    seen = SecretsSeen()
    mails = {
        "data": [{"text": "Verify: http://127.0.0.1:3000/#/verify-email?token=usr_9.s3cr3t-vv"}]
    }
    seen.hook(_exchange("http://s/_local/mail.json?to=a%40b.c", None, mails))
    seen.hook(
        _exchange(
            "http://s/v1/users/me/payment-methods", {"token": "tok_visa_4242_x"}, {"id": "pm_1"}
        )
    )
    assert set(seen.values) == {"usr_9.s3cr3t-vv", "s3cr3t-vv"}


def test_a_short_secret_counts_where_it_stands_alone_not_inside_an_id_or_a_decimal():
    cvc = standing_alone("0482")
    leaked = ['{"cvc": "0482"}', "cvc=0482&x", "card 0482.", "0482"]
    chance = ["c9bee02a-d10b-4768-0482-0863c1", "0.0482", "0482.5", "a0482", "104821", "x-0482"]
    assert [text for text in leaked if cvc.search(text)] == leaked
    assert [text for text in chance if cvc.search(text)] == []
