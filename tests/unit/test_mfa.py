"""TOTP windows, replay rules, recovery codes and the MFA records (no AWS)."""

from __future__ import annotations

import json

import pyotp
import pytest
from pydantic import ValidationError

from cashew.auth import mfa
from cashew.auth.mfa_store import MfaChallenge, TotpFactor
from cashew.auth.models import LoginMfaRequest, MfaConfirmRequest
from cashew.errors import MfaRequiredError
from cashew.http import _problem_body

SECRET = pyotp.random_base32()
NOW = 1_800_000_015  # 15 s into a step


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_of_the_step_or_one_step_either_side_is_accepted_with_its_step(offset):
    code = pyotp.TOTP(SECRET).at(NOW + 30 * offset)
    assert mfa.matching_step(SECRET, code, NOW) == NOW // 30 + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_a_code_two_steps_away_is_refused(offset):
    code = pyotp.TOTP(SECRET).at(NOW + 30 * offset)
    window = {pyotp.TOTP(SECRET).at(NOW + 30 * o) for o in (-1, 0, 1)}
    if code not in window:  # a 1-in-10^6 collision with a neighbour's code
        assert mfa.matching_step(SECRET, code, NOW) is None


def test_the_rfc_6238_test_vector():
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: its last 6
    key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert mfa.matching_step(key, "287082", 59) == 1


def test_another_secrets_code_and_garbage_are_refused():
    other = pyotp.random_base32()
    code = pyotp.TOTP(other).at(NOW)
    if code not in {pyotp.TOTP(SECRET).at(NOW + 30 * o) for o in (-1, 0, 1)}:
        assert mfa.matching_step(SECRET, code, NOW) is None
    assert mfa.matching_step(SECRET, "12345", NOW) is None


def test_recovery_codes_are_random_distinct_and_stored_as_normalised_digests():
    codes = [mfa._recovery_code() for _ in range(200)]
    assert len(set(codes)) == 200
    code = codes[0]
    digest = mfa.recovery_digest(code)
    assert code not in digest and len(digest) == 64
    assert mfa.recovery_digest(code.upper().replace("-", " ")) == digest
    assert mfa.recovery_digest(codes[1]) != digest


def test_login_mfa_takes_exactly_one_factor_and_codes_are_six_digits():
    LoginMfaRequest.model_validate({"mfa_token": "mfa_x", "code": "012345"})
    LoginMfaRequest.model_validate({"mfa_token": "mfa_x", "recovery_code": "ab12-cd34"})
    for body in (
        {"mfa_token": "mfa_x"},
        {"mfa_token": "mfa_x", "code": "012345", "recovery_code": "a"},
        {"mfa_token": "mfa_x", "code": "12345a"},
        {"mfa_token": "mfa_x", "code": "٠١٢٣٤٥"},  # Arabic-Indic digits are not ASCII
        {"mfa_token": "mfa_x", "code": "012345", "extra": 1},
        {"mfa_token": "mfa_x", "code": None, "recovery_code": "ab12"},  # null is no value
    ):
        with pytest.raises(ValidationError):
            LoginMfaRequest.model_validate(body)
    with pytest.raises(ValidationError):
        MfaConfirmRequest.model_validate({"code": "1234567"})


def test_the_records_round_trip():
    factor = TotpFactor(
        "usr_1", b"c", b"n", b"k", True, "2026-01-01T00:00:00.000Z", 7, frozenset({"h"})
    )
    assert TotpFactor.from_item(factor.to_item()) == factor
    pending = TotpFactor("usr_1", b"c", b"n", b"k", False, "2026-01-01T00:00:00.000Z")
    assert "recovery" not in pending.to_item()
    assert TotpFactor.from_item(pending.to_item()) == pending
    challenge = MfaChallenge("d", "usr_1", "a@b.c", "user", 2, 99, 3, False)
    assert MfaChallenge.from_item(challenge.to_item()) == challenge


def test_the_mfa_required_problem_carries_the_token():
    error = MfaRequiredError("second factor", extensions={"mfa_token": "mfa_abc"})
    body = json.loads(_problem_body(error, "req"))
    assert body["code"] == "mfa_required" and body["status"] == 401
    assert body["mfa_token"] == "mfa_abc"
    # an extension never overrides a member of the problem
    clash = MfaRequiredError("x", extensions={"code": "ok", "status": "200"})
    assert json.loads(_problem_body(clash, "req"))["code"] == "mfa_required"
