"""TOTP MFA through the functions (moto): enrolment, confirmation, login with a code or a
recovery code, replays, concurrent logins with one code, wrong codes, disabling."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest

from cashew import dynamo
from cashew.auth import mfa
from cashew.config import get_settings
from tests.integration.conftest import PASSWORD, authorize
from tests.integration.test_iam_policies import COVERED_BY_MFA, recorder  # noqa: F401


def _call(stack, function, sample, user=None, **body):
    extra = {"authorizer": user.authorizer, "token": user.access_token} if user else {}
    return stack.call(function, f"auth/{sample}.json", body=body, **extra)


def _enrolled(stack, user):
    """MFA on for `user`: its secret and recovery codes."""
    enrolled = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password=PASSWORD)
    assert enrolled.status == 200, enrolled.body
    secret = enrolled.body["secret"]
    code = pyotp.TOTP(secret).now()
    confirmed = _call(stack, "MfaConfirmFunction", "mfa_confirm", user, code=code)
    assert confirmed.status == 200, confirmed.body
    return secret, confirmed.body["recovery_codes"]


def _login(stack, email, password=PASSWORD):
    return _call(stack, "LoginFunction", "login", email=email, password=password)


def _step_back(stack, user):
    """Forget the step of the last accepted code, so the test can use the current one again
    without waiting 30 s for the next."""
    table = stack.env["CASHEW_SESSIONS_TABLE"]
    dynamo.update_item(table, {"pk": f"MFA#{user.id}"}, "SET last_step = :s", {":s": -1})


@pytest.fixture(autouse=True)
def _roomy_lockout(monkeypatch):
    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "50")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_enrolment_changes_nothing_until_confirmed(stack, new_user):
    user = new_user()
    enrolled = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password=PASSWORD)
    assert enrolled.status == 200
    assert enrolled.headers["Cache-Control"] == "no-store"
    assert enrolled.body["otpauth_uri"].startswith("otpauth://totp/Cashew:")
    assert f"secret={enrolled.body['secret']}" in enrolled.body["otpauth_uri"]
    assert _login(stack, user.email).status == 200  # pending: the password is still enough
    me = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert me.body["mfa_enabled"] is False


def test_the_secret_is_stored_sealed_under_the_users_context(stack, new_user):
    user = new_user()
    secret, codes = _enrolled(stack, user)
    raw = json.dumps(
        stack.clients("dynamodb").get_item(
            TableName=stack.env["CASHEW_SESSIONS_TABLE"], Key={"pk": {"S": f"MFA#{user.id}"}}
        )["Item"],
        default=str,
    )
    assert secret not in raw and not any(c in raw for c in codes)
    assert all(mfa.recovery_digest(c) in raw for c in codes)
    item = dynamo.get_item(stack.env["CASHEW_SESSIONS_TABLE"], {"pk": f"MFA#{user.id}"})
    other_context = {"mfa_user_id": "usr_someone_else"}
    with pytest.raises(Exception, match="InvalidCiphertext"):
        stack.clients("kms").decrypt(
            CiphertextBlob=item["data_key"], EncryptionContext=other_context
        )


def test_wrong_password_at_enrolment_is_invalid_credentials(stack, new_user):
    user = new_user()
    wrong = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password="not my password")
    assert (wrong.status, wrong.code) == (401, "invalid_credentials")


def test_confirm_turns_mfa_on_with_ten_recovery_codes(stack, new_user):
    user = new_user()
    _, codes = _enrolled(stack, user)
    assert len(codes) == 10 and len(set(codes)) == 10
    me = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert me.body["mfa_enabled"] is True
    again = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password=PASSWORD)
    assert (again.status, again.code) == (409, "conflict")


def test_a_wrong_confirm_code_is_refused(stack, new_user):
    user = new_user()
    enrolled = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password=PASSWORD)
    good = pyotp.TOTP(enrolled.body["secret"]).now()
    wrong = _call(
        stack, "MfaConfirmFunction", "mfa_confirm", user, code=f"{(int(good) + 1) % 10**6:06d}"
    )
    assert (wrong.status, wrong.code) == (401, "invalid_mfa_code")


def test_login_needs_the_second_factor_and_a_code_passes_once(stack, new_user):
    user = new_user()
    secret, _ = _enrolled(stack, user)
    _step_back(stack, user)
    first = _login(stack, user.email)
    assert (first.status, first.code) == (401, "mfa_required")
    assert "access_token" not in first.body and "refresh_token" not in first.body
    code = pyotp.TOTP(secret).now()
    done = _call(
        stack, "LoginMfaFunction", "login_mfa", mfa_token=first.body["mfa_token"], code=code
    )
    assert done.status == 200, done.body
    assert authorize(stack, done.body["access_token"])["context"]["user_id"] == user.id
    # the token is single use, and the code too (a replay with a fresh token)
    reused = _call(
        stack, "LoginMfaFunction", "login_mfa", mfa_token=first.body["mfa_token"], code=code
    )
    assert (reused.status, reused.code) == (401, "unauthenticated")
    second = _login(stack, user.email)
    replay = _call(
        stack, "LoginMfaFunction", "login_mfa", mfa_token=second.body["mfa_token"], code=code
    )
    assert (replay.status, replay.code) == (401, "invalid_mfa_code")


def test_eight_concurrent_logins_with_one_code_give_one_session(stack, new_user):
    user = new_user()
    secret, _ = _enrolled(stack, user)
    _step_back(stack, user)
    tokens = [_login(stack, user.email).body["mfa_token"] for _ in range(8)]
    code = pyotp.TOTP(secret).now()
    with ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(
                lambda t: _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=t, code=code),
                tokens,
            )
        )
    assert sorted(r.status for r in replies) == [200] + [401] * 7
    assert {r.code for r in replies if r.status == 401} == {"invalid_mfa_code"}


def test_a_recovery_code_passes_once(stack, new_user):
    user = new_user()
    _, codes = _enrolled(stack, user)
    token = _login(stack, user.email).body["mfa_token"]
    done = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=token, recovery_code=codes[3])
    assert done.status == 200
    token = _login(stack, user.email).body["mfa_token"]
    again = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=token, recovery_code=codes[3])
    assert (again.status, again.code) == (401, "invalid_mfa_code")
    other = _call(
        stack, "LoginMfaFunction", "login_mfa", mfa_token=token, recovery_code=codes[4].upper()
    )
    assert other.status == 200


def test_five_wrong_codes_kill_the_mfa_token(stack, new_user):
    user = new_user()
    secret, _ = _enrolled(stack, user)
    _step_back(stack, user)
    token = _login(stack, user.email).body["mfa_token"]
    good = pyotp.TOTP(secret).now()
    wrong = f"{(int(good) + 500000) % 10**6:06d}"
    for _ in range(5):
        bad = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=token, code=wrong)
        assert (bad.status, bad.code) == (401, "invalid_mfa_code")
    late = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=token, code=good)
    assert (late.status, late.code) == (401, "unauthenticated")


def test_wrong_codes_count_toward_the_lockout(stack, new_user, monkeypatch):
    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "4")
    get_settings.cache_clear()
    user = new_user()  # its login cleared the count
    secret, _ = _enrolled(stack, user)
    token = _login(stack, user.email).body["mfa_token"]  # attempt 1
    good = pyotp.TOTP(secret).now()
    wrong = f"{(int(good) + 500000) % 10**6:06d}"
    for _ in range(3):  # attempts 2-4
        assert (
            _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=token, code=wrong).status == 401
        )
    locked = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=token, code=good)
    assert (locked.status, locked.code) == (429, "too_many_attempts")


def test_a_wrong_password_does_not_reveal_mfa(stack, new_user):
    plain, protected = new_user(), new_user()
    _enrolled(stack, protected)
    a = _login(stack, plain.email, "wrong password!")
    b = _login(stack, protected.email, "wrong password!")
    assert (a.status, a.code) == (b.status, b.code) == (401, "invalid_credentials")
    assert {k: v for k, v in a.body.items() if k != "request_id"} == {
        k: v for k, v in b.body.items() if k != "request_id"
    }


def test_disable_needs_password_and_code(stack, new_user):
    user = new_user()
    secret, _ = _enrolled(stack, user)
    _step_back(stack, user)
    code = pyotp.TOTP(secret).now()
    wrong = _call(stack, "MfaDisableFunction", "mfa_disable", user, password="nope nope", code=code)
    assert (wrong.status, wrong.code) == (401, "invalid_credentials")
    done = _call(stack, "MfaDisableFunction", "mfa_disable", user, password=PASSWORD, code=code)
    assert done.status == 204, done.body
    me = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert me.body["mfa_enabled"] is False
    assert _login(stack, user.email).status == 200


def test_login_mfa_needs_exactly_one_factor(stack):
    both = _call(
        stack, "LoginMfaFunction", "login_mfa", mfa_token="mfa_x", code="123456", recovery_code="a"
    )
    neither = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token="mfa_x")
    assert both.status == neither.status == 422
    unknown = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token="mfa_x", code="123456")
    assert (unknown.status, unknown.code) == (401, "unauthenticated")


def test_turning_mfa_on_and_off_emails_the_user_each_time(stack, new_user):
    from moto.ses.models import ses_backends

    from local.cfn import ACCOUNT_ID, REGION

    def subjects() -> list[str]:
        sent = ses_backends[ACCOUNT_ID][REGION].sent_messages
        return [
            line.split(":", 1)[1].strip()
            for m in sent
            if user.email in m.destinations
            for line in m.raw_data.splitlines()
            if line.startswith("Subject:")
            # every login sends its new-sign-in email (the fixture's too): not counted here
            and "New sign-in" not in line
        ]

    # Given a user who enrols and confirms MFA, then turns it off
    user = new_user()
    secret, _ = _enrolled(stack, user)
    welcome = "Confirm your Cashew email address"  # the registration's verification email
    assert subjects() == [welcome, "Two-factor sign-in is on for your Cashew account"]
    _step_back(stack, user)
    code = pyotp.TOTP(secret).now()
    done = _call(stack, "MfaDisableFunction", "mfa_disable", user, password=PASSWORD, code=code)
    assert done.status == 204, done.body
    # Then each change was emailed (security emails: whatever notify_email says)
    assert subjects() == [
        welcome,
        "Two-factor sign-in is on for your Cashew account",
        "Two-factor sign-in is off for your Cashew account",
    ]


def test_every_action_of_the_mfa_functions_is_granted(stack, new_user, recorder):  # noqa: F811
    # Given a user who enrols, confirms, signs in with a code, and turns MFA off, each step
    # run as its function
    user = new_user()
    with recorder.acting_as("MfaEnrolFunction"):
        enrolled = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password=PASSWORD)
    secret = enrolled.body["secret"]
    with recorder.acting_as("MfaConfirmFunction"):
        code = pyotp.TOTP(secret).now()
        assert _call(stack, "MfaConfirmFunction", "mfa_confirm", user, code=code).status == 200
    challenge = _login(stack, user.email)
    _step_back(stack, user)
    with recorder.acting_as("LoginMfaFunction"):
        signed_in = _call(
            stack, "LoginMfaFunction", "login_mfa",
            mfa_token=challenge.body["mfa_token"], code=pyotp.TOTP(secret).now(),
        )  # fmt: skip
        assert signed_in.status == 200, signed_in.body
    _step_back(stack, user)
    with recorder.acting_as("MfaDisableFunction"):
        code = pyotp.TOTP(secret).now()
        done = _call(stack, "MfaDisableFunction", "mfa_disable", user, password=PASSWORD, code=code)
        assert done.status == 204, done.body
    # Then each was granted every action it performed, and only these functions ran
    assert set(recorder.used) == COVERED_BY_MFA
    assert recorder.ungranted() == {}
    for function_id in ("MfaConfirmFunction", "MfaDisableFunction"):
        assert ("ses:SendEmail", "EmailIdentity") in recorder.used[function_id]
