"""PATCH /v1/users/me input rules, and the store's own guard against writing other fields."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cashew.accounts import store
from cashew.accounts.models import UpdateMeRequest
from cashew.accounts.store import Settings


def errors(body: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        UpdateMeRequest.model_validate(body)
    return [(".".join(map(str, e["loc"])), e["type"]) for e in caught.value.errors()]


# --- what may be written -------------------------------------------------------------------


def test_only_the_fields_sent_are_changes():
    # Given a body with a name only (padded with spaces)
    # When it is validated
    request = UpdateMeRequest.model_validate({"name": "  Ada King  "})
    # Then the name is stripped and nothing else is part of the change
    assert request.model_dump() == {"name": "Ada King"}


def test_every_writable_field_at_once():
    body = {
        "name": "Ada",
        "phone": "+447700900123",
        "settings": {"default_currency": "JPY", "notify_email": False},
    }
    assert UpdateMeRequest.model_validate(body).model_dump() == body


def test_a_partial_settings_object_changes_only_its_keys():
    request = UpdateMeRequest.model_validate({"settings": {"notify_email": False}})
    assert request.model_dump() == {"settings": {"notify_email": False}}


def test_phone_null_clears_the_phone():
    assert UpdateMeRequest.model_validate({"phone": None}).model_dump() == {"phone": None}


# --- what may not ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("role", "admin"),
        ("email", "eve@example.com"),
        ("id", "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"),
        ("balances", [{"currency": "USD", "available": 10**8}]),
        ("available", 10**8),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("Name", "Ada"),  # field names are case-sensitive
        ("colour", "blue"),
    ],
)
def test_a_field_that_is_not_writable_is_rejected_even_beside_valid_ones(field, value):
    # Given a valid change plus one field the operation does not define
    # When it is validated
    # Then it is rejected, naming that field
    assert errors({"name": "Ada", field: value}) == [(field, "extra_forbidden")]


def test_unknown_settings_keys_are_rejected():
    assert errors({"settings": {"notify_email": True, "role": "admin"}}) == [
        ("settings.role", "extra_forbidden")
    ]


def test_an_empty_body_is_nothing_to_update():
    with pytest.raises(ValidationError, match="nothing to update"):
        UpdateMeRequest.model_validate({})


def test_an_empty_settings_object_is_rejected():
    assert errors({"settings": {}}) == [("settings", "value_error")]


@pytest.mark.parametrize("body", [[], "name", None, 1])
def test_a_body_that_is_not_an_object_is_rejected(body):
    assert errors(body) == [("", "model_type")]


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"name": None}, ("name", "string_type")),  # null does not clear a required field
        ({"settings": None}, ("settings", "model_type")),
        ({"settings": {"default_currency": None}}, ("settings.default_currency", "literal_error")),
        ({"settings": {"notify_email": None}}, ("settings.notify_email", "bool_type")),
    ],
)
def test_null_is_only_a_value_of_phone(body, expected):
    assert errors(body) == [expected]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, 42])
def test_name_is_1_to_100_characters_after_stripping(name):
    assert [loc for loc, _ in errors({"name": name})] == ["name"]


def test_name_of_100_characters_is_accepted():
    assert UpdateMeRequest.model_validate({"name": "x" * 100}).model_dump() == {"name": "x" * 100}


@pytest.mark.parametrize("currency", ["usd", "CHF", "", 840])
def test_default_currency_is_one_we_support(currency):
    assert errors({"settings": {"default_currency": currency}}) == [
        ("settings.default_currency", "literal_error")
    ]


@pytest.mark.parametrize("value", ["true", 1, 0, "yes"])
def test_notify_email_is_a_json_boolean(value):
    assert errors({"settings": {"notify_email": value}}) == [("settings.notify_email", "bool_type")]


@pytest.mark.parametrize("phone", ["+4477009", "+123456789012345", "+15551234567"])
def test_e164_phones_are_accepted(phone):
    assert UpdateMeRequest.model_validate({"phone": phone}).model_dump() == {"phone": phone}


@pytest.mark.parametrize(
    "phone",
    [
        "447700900123",  # no +
        "+0447700900123",  # country code cannot start with 0
        "+123456",  # 6 digits: too short
        "+1234567890123456",  # 16 digits: too long
        "+44 7700 900123",  # no spaces
        "+44-7700-900123",
        " +447700900123",
        "+447700900123\n",  # no trailing newline ($ must not allow one)
        "+44770090012\u0663",  # an Arabic-Indic digit (\d would accept it)
        "+\uff14\uff147700900123",  # full-width digits
        "",
    ],
)
def test_phones_that_are_not_e164_are_rejected(phone):
    assert errors({"phone": phone}) == [("phone", "string_pattern_mismatch")]


def test_a_phone_that_is_not_a_string_is_rejected():
    assert errors({"phone": 447700900123}) == [("phone", "string_type")]


# --- the store refuses to write anything else, whoever calls it ----------------------------


@pytest.mark.parametrize(
    "fields, settings",
    [({"role": "admin"}, {}), ({"email": "e@example.com"}, {}), ({}, {"available": 1})],
)
def test_the_store_refuses_fields_that_are_not_writable(fields, settings, monkeypatch):
    # Given a store whose DynamoDB call would be recorded
    calls: list[Any] = []
    monkeypatch.setattr(store.dynamo, "update_item", lambda *a, **k: calls.append((a, k)))
    # When it is asked to write a field that is not a profile field
    # Then it refuses before any call
    with pytest.raises(ValueError, match="not writable"):
        store.update_profile("usr_1", fields, settings, "2026-11-30T09:30:00Z")
    assert calls == []


def test_the_store_builds_one_conditional_update_of_only_the_given_keys(monkeypatch):
    # Given a store whose DynamoDB call is recorded
    calls: list[Any] = []

    def update_item(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append((args, kwargs))
        return {
            "pk": "USER#usr_1",
            "sk": "PROFILE",
            "id": "usr_1",
            "email": "ada@example.com",
            "name": "Ada",
            "phone": None,
            "role": "user",
            "settings": {"default_currency": "USD", "notify_email": False},
            "created_at": "2026-11-30T09:00:00Z",
            "updated_at": "2026-11-30T09:30:00Z",
        }

    monkeypatch.setattr(store.dynamo, "update_item", update_item)
    # When a name, a cleared phone and one settings key are written
    profile = store.update_profile(
        "usr_1", {"name": "Ada", "phone": None}, {"notify_email": False}, "2026-11-30T09:30:00Z"
    )
    # Then one UpdateItem sets exactly those, nested for settings, only if the profile exists
    ((args, kwargs),) = calls
    _, key, update, values = args
    assert key == {"pk": "USER#usr_1", "sk": "PROFILE"}
    assert update == (
        "SET #updated_at = :updated_at, #name = :name, #phone = :phone, "
        "#settings.#s_notify_email = :s_notify_email"
    )
    assert values == {
        ":updated_at": "2026-11-30T09:30:00Z",
        ":name": "Ada",
        ":phone": None,
        ":s_notify_email": False,
    }
    assert kwargs["condition"] == "attribute_exists(pk)"
    assert kwargs["return_new"] is True
    assert profile == store.Profile(
        id="usr_1",
        email="ada@example.com",
        name="Ada",
        phone=None,
        role="user",
        settings=Settings(default_currency="USD", notify_email=False),
        created_at="2026-11-30T09:00:00Z",
        updated_at="2026-11-30T09:30:00Z",
    )
