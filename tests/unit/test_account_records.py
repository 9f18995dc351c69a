"""The stored records of accounts and auth: each converts to its item and back unchanged, also
through DynamoDB's wire format, and reads the items the stores write exactly as before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cashew import dynamo
from cashew.accounts import service, store
from cashew.accounts.minute_buckets import MinuteBucket, Tally
from cashew.auth import login_attempts, sessions

text = st.text(max_size=40)
ints = st.integers(min_value=0, max_value=2**53)
epoch_ms = st.integers(min_value=0, max_value=10**13)
currencies = st.sampled_from(["USD", "EUR", "GBP", "JPY"])

credentials = st.builds(
    store.Credentials,
    email=text,
    user_id=text,
    password_hash=text,
    role=st.sampled_from(["user", "admin"]),
    password_version=ints,
)
profiles = st.builds(
    store.Profile,
    id=text,
    email=text,
    name=text,
    phone=st.none() | text,
    role=st.sampled_from(["user", "admin"]),
    settings=st.builds(store.Settings, default_currency=currencies, notify_email=st.booleans()),
    created_at=text,
    updated_at=st.none() | text,
)
balances = st.builds(
    store.StoredBalance,
    user_id=text,
    currency=currencies,
    available=ints,
    shard=st.none() | st.integers(min_value=0, max_value=89),
)
payment_methods = st.builds(
    store.PaymentMethod,
    user_id=text,
    id=text,
    brand=text,
    last4=text,
    exp_month=st.integers(1, 12),
    exp_year=st.integers(2000, 2100),
    fingerprint=text,
    billing_name=st.none() | text,
    gateway_risk_flag=st.booleans(),
    token_ciphertext=st.binary(min_size=1),
    token_nonce=st.binary(min_size=1),
    token_data_key=st.binary(min_size=1),
    created_at=text,
)
minute_buckets = st.builds(
    MinuteBucket,
    minute=st.integers(min_value=0, max_value=10**9),
    tallies=st.dictionaries(currencies, st.builds(Tally, count=ints, amount=ints), max_size=4),
)
payer_attempts = st.builds(
    store.PayerAttempts,
    user_id=text,
    version=ints,
    buckets=st.lists(minute_buckets, max_size=5).map(tuple),
)
session_records = st.builds(
    sessions.Session,
    id=text,
    user_id=text,
    role=text,
    refresh_hash=text,
    created_at=text,
    last_used_at=text,
    user_agent=text,
    expires_at=ints,
    revoked=st.booleans(),
    email=text,
    password_version=ints,
)
rotated_tokens = st.builds(
    sessions.RotatedToken, refresh_hash=text, session_id=text, expires_at=ints
)
login_counters = st.builds(
    login_attempts.LoginAttempts,
    key=text,
    counts=st.dictionaries(st.integers(0, 10**8), st.integers(1, 10**6), max_size=3),
    expires_at=st.none() | ints,
)

RECORDS = {
    "credentials": credentials,
    "profile": profiles,
    "balance": balances,
    "payment method": payment_methods,
    "payer attempts": payer_attempts,
    "session": session_records,
    "rotated token": rotated_tokens,
    "login attempts": login_counters,
}


def _through_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    """The item as a GetItem would return it after a PutItem of it."""
    return dynamo.deserialize(dynamo.serialize(item))


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_every_record_reads_back_from_its_item(kind: str) -> None:
    @given(RECORDS[kind])
    def check(record: Any) -> None:
        assert type(record).from_item(record.to_item()) == record
        assert type(record).from_item(_through_dynamodb(record.to_item())) == record

    check()


# --- the items as the stores wrote them before they had records ----------------------------


def test_a_registered_profile_reads_as_before_and_is_written_unchanged() -> None:
    # Given a profile item as register wrote it (a dict of these keys, plus pk and sk)
    written = {
        "id": "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
        "email": "ada@example.com",
        "name": "Ada",
        "phone": None,
        "role": "user",
        "settings": {"default_currency": "USD", "notify_email": True},
        "created_at": "2026-11-30T09:00:00.000Z",
    }
    item = _through_dynamodb({"pk": f"USER#{written['id']}", "sk": "PROFILE", **written})
    # When it is read as a record
    profile = store.Profile.from_item(item)
    # Then it answers what the item said (no MFA, no verified email: v1.1's `mfa_enabled` and
    # `email_verified` false when absent), and
    # its own item is the one register wrote
    assert service.user_response(profile).model_dump() == {
        **written,
        "mfa_enabled": False,
        "email_verified": False,
    }
    assert profile.updated_at is None
    assert _through_dynamodb(profile.to_item()) == item


def test_an_updated_profile_keeps_its_update_time_and_settings() -> None:
    item = _through_dynamodb(
        {
            "pk": "USER#usr_1",
            "sk": "PROFILE",
            "id": "usr_1",
            "email": "ada@example.com",
            "name": "Ada L.",
            "phone": "+447700900123",
            "role": "admin",
            "settings": {"default_currency": "GBP", "notify_email": False},
            "created_at": "2026-11-30T09:00:00.000Z",
            "updated_at": "2026-11-30T09:30:00.000Z",
        }
    )
    profile = store.Profile.from_item(item)
    assert (profile.phone, profile.role, profile.updated_at) == (
        "+447700900123",
        "admin",
        "2026-11-30T09:30:00.000Z",
    )
    assert profile.settings == store.Settings(default_currency="GBP", notify_email=False)
    assert profile.to_item() == item


def test_a_profile_without_settings_reads_the_defaults_as_before() -> None:
    item = {"id": "usr_1", "email": "e@x.io", "name": "N", "role": "user", "created_at": "t"}
    profile = store.Profile.from_item({"pk": "USER#usr_1", "sk": "PROFILE", **item})
    assert profile.phone is None
    assert profile.settings == store.Settings()


def test_credentials_as_registration_and_a_password_change_wrote_them() -> None:
    # registration wrote no password_version (it reads as 0); a change ADDs one
    registered = {
        "pk": "EMAIL#ada@example.com",
        "sk": "CREDENTIALS",
        "user_id": "usr_1",
        "password_hash": "$argon2id$...",
        "role": "user",
    }
    first = store.Credentials.from_item(_through_dynamodb(registered))
    assert first == store.Credentials("ada@example.com", "usr_1", "$argon2id$...", "user", 0)
    assert first.to_item() == registered
    changed = store.Credentials.from_item(_through_dynamodb({**registered, "password_version": 2}))
    assert changed.password_version == 2
    assert changed.to_item() == {**registered, "password_version": 2}


def test_a_payment_method_as_add_payment_method_wrote_it() -> None:
    method = {
        "id": "pm_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
        "type": "card",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "fingerprint": "f" * 32,
        "billing_name": None,
        "gateway_risk_flag": True,
        "token_ciphertext": b"\x01cipher",
        "token_nonce": b"\x02" * 12,
        "token_data_key": b"\x03key",
        "created_at": "2026-11-30T09:00:00.000Z",
        "status": "active",
    }
    item = _through_dynamodb({"pk": "USER#usr_1", "sk": f"PM#{method['id']}", **method})
    record = store.PaymentMethod.from_item(item)
    assert {name: getattr(record, name) for name in method} == method
    assert record.user_id == "usr_1"
    assert record.last_used_at is None
    assert record.to_item() == item  # every attribute written, none added or dropped
    # ... and once charged and expired, as mark_used and mark_expired leave it
    used = {**item, "last_used_at": "2026-12-01T10:00:00.000Z", "status": "expired"}
    charged = store.PaymentMethod.from_item(_through_dynamodb(used))
    assert (charged.status, charged.last_used_at) == ("expired", "2026-12-01T10:00:00.000Z")
    assert charged.to_item() == used


def test_a_payment_method_stored_before_statuses_is_active() -> None:
    item = _through_dynamodb(
        {
            "pk": "USER#usr_1",
            "sk": "PM#pm_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
            "id": "pm_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2099,
            "fingerprint": "f" * 32,
            "token_ciphertext": b"c",
            "token_nonce": b"n",
            "token_data_key": b"k",
            "created_at": "2026-11-30T09:00:00.000Z",
        }
    )
    record = store.PaymentMethod.from_item(item)
    assert (record.status, record.current_status(), record.last_used_at) == (
        "active",
        "active",
        None,
    )


def test_an_active_card_past_its_expiry_month_is_expired(monkeypatch) -> None:
    from datetime import UTC, datetime

    def card(month: int, year: int, status: str = "active") -> store.PaymentMethod:
        return store.PaymentMethod(
            user_id="usr_1", id="pm_1", brand="visa", last4="4242", exp_month=month,
            exp_year=year, fingerprint="f", billing_name=None, gateway_risk_flag=False,
            token_ciphertext=b"", token_nonce=b"", token_data_key=b"", created_at="x",
            status=status,
        )  # fmt: skip

    monkeypatch.setattr(store.clock, "now", lambda: datetime(2027, 3, 31, 23, 59, tzinfo=UTC))
    assert card(3, 2027).current_status() == "active"  # usable through its expiry month
    assert card(2, 2027).current_status() == "expired"
    assert card(12, 2026).current_status() == "expired"
    assert card(4, 2027, "invalid").current_status() == "invalid"


def test_the_default_pointer_names_one_method() -> None:
    item = _through_dynamodb({"pk": "USER#usr_1", "sk": "PM_DEFAULT", "method_id": "pm_2"})
    assert store.DefaultMethod.from_item(item) == store.DefaultMethod("usr_1", "pm_2")
    assert store.DefaultMethod.from_item(item).to_item() == item


def test_a_balance_as_the_credit_wrote_it() -> None:
    item = _through_dynamodb(
        {"pk": "USER#usr_1", "sk": "BALANCE#EUR", "currency": "EUR", "available": 1250}
    )
    assert store.StoredBalance.from_item(item) == store.StoredBalance("usr_1", "EUR", 1250)
    assert store.StoredBalance.from_item(item).to_item() == item


def test_an_attempt_history_as_the_velocity_write_leaves_it() -> None:
    # the write sets `buckets` ([minute, {currency: [count, amount]}] lists) and `version`
    item = _through_dynamodb(
        {
            "pk": "USER#usr_1",
            "sk": "VELOCITY",
            "buckets": [[28_333_333, {"USD": [2, 507]}], [28_333_334, {"EUR": [1, 7]}]],
            "version": 3,
        }
    )
    record = store.PayerAttempts.from_item(item)
    assert record == store.PayerAttempts(
        "usr_1",
        3,
        (
            MinuteBucket(28_333_333, {"USD": Tally(2, 507)}),
            MinuteBucket(28_333_334, {"EUR": Tally(1, 7)}),
        ),
    )
    assert record.to_item() == item


def test_an_attempt_history_of_the_former_format_reads_as_the_same_attempts_in_buckets() -> None:
    # Given an item as the velocity write left it before the buckets: every attempt listed
    # ([ms, amount, currency]), two of them in one minute, one in the next minute
    item = _through_dynamodb(
        {
            "pk": "USER#usr_1",
            "sk": "VELOCITY",
            "attempts": [
                [1_700_000_000_000, 500, "USD"],  # minute 28,333,333 (second 20)
                [1_700_000_000_100, 7, "EUR"],
                [1_700_000_039_999, 5, "USD"],  # the same minute's last millisecond
                [1_700_000_040_000, 9, "USD"],  # the next minute
            ],
            "version": 3,
        }
    )
    # When it is read
    record = store.PayerAttempts.from_item(item)
    # Then it holds the same attempts, counted per minute and currency, and the same version
    assert record == store.PayerAttempts(
        "usr_1",
        3,
        (
            MinuteBucket(28_333_333, {"USD": Tally(2, 505), "EUR": Tally(1, 7)}),
            MinuteBucket(28_333_334, {"USD": Tally(1, 9)}),
        ),
    )
    # ... and written back, it is in the new format, without the list
    assert "attempts" not in record.to_item()


def test_a_session_and_a_rotated_token_as_login_and_refresh_wrote_them() -> None:
    session_item = _through_dynamodb(
        {
            "pk": "ses_1",
            "user_id": "usr_1",
            "role": "user",
            "refresh_hash": "ab" * 32,
            "email": "ada@example.com",
            "password_version": 1,
            "created_at": "2026-11-30T09:00:00.000Z",
            "last_used_at": "2026-11-30T09:05:00.000Z",
            "user_agent": "curl/8",
            "expires_at": 1_800_000_000,
            "revoked": False,
        }
    )
    session = sessions.Session.from_item(session_item)
    assert (session.id, session.email, session.password_version, session.revoked) == (
        "ses_1",
        "ada@example.com",
        1,
        False,
    )
    assert session.to_item() == session_item
    # a session stored before sessions kept an email and password version
    older = {k: v for k, v in session_item.items() if k not in ("email", "password_version")}
    assert (
        sessions.Session.from_item(older).email,
        sessions.Session.from_item(older).password_version,
    ) == ("", 0)
    rotated = {"pk": "RT#" + "cd" * 32, "session_id": "ses_1", "expires_at": 1_800_000_000}
    token = sessions.RotatedToken.from_item(_through_dynamodb(rotated))
    assert token == sessions.RotatedToken("cd" * 32, "ses_1", 1_800_000_000)
    assert token.to_item() == rotated


def test_login_counters_as_the_count_and_the_clear_left_them() -> None:
    # count's UpdateItem: one counter per bucket and the expiry
    counted = _through_dynamodb({"pk": "LOGIN#abc", "n100": 3, "n101": 1, "expires_at": 99})
    record = login_attempts.LoginAttempts.from_item(counted)
    assert (record.count(101), record.count(100), record.count(99)) == (1, 3, 0)
    assert record.to_item() == counted
    # clear's REMOVE on a key never counted leaves the bare key
    bare = login_attempts.LoginAttempts.from_item({"pk": "LOGIN#abc"})
    assert bare == login_attempts.LoginAttempts("LOGIN#abc", {}, None)


def test_an_attribute_that_is_not_a_counter_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="not a login-attempt counter"):
        login_attempts.LoginAttempts.from_item({"pk": "LOGIN#abc", "note": "x"})
