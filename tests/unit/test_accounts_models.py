"""Input models of the accounts endpoints: card data and registration."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from cashew.accounts.models import AddPaymentMethodRequest, CardInput, RegisterRequest, luhn_valid

VALID_CARD: dict[str, Any] = {
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2030,
    "cvc": "123",
}
STRONG_PASSWORD = "correct horse battery staple"
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))


def card(**overrides: Any) -> dict[str, Any]:
    return {**VALID_CARD, **overrides}


def error_locs(exc: ValidationError) -> set[tuple[Any, ...]]:
    return {tuple(item["loc"]) for item in exc.errors()}


# --- Luhn -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digits",
    [
        "4242424242424242",
        "5555555555554444",
        "4000000000000002",
        "4000000000009995",
        "4000000000000069",
        "4000000000000119",
        "4000000000003220",
        "4100000000000019",
        "378282246310005",  # amex, odd length
        "79927398713",  # the textbook example
    ],
)
def test_luhn_accepts_valid_numbers(digits: str) -> None:
    assert luhn_valid(digits)


@pytest.mark.parametrize(
    "digits",
    ["4242424242424241", "4242424242424243", "5555555555554445", "79927398710", "1"],
)
def test_luhn_rejects_a_wrong_check_digit(digits: str) -> None:
    assert not luhn_valid(digits)


def test_luhn_detects_a_transposition_of_adjacent_digits() -> None:
    # Given a valid number, when two adjacent (different) digits are swapped
    valid = "4532015112830366"
    swapped = valid[:1] + valid[2] + valid[1] + valid[3:]
    # Then the check fails
    assert luhn_valid(valid)
    assert not luhn_valid(swapped)


# --- CardInput ------------------------------------------------------------------------------


def test_valid_card_is_accepted_and_spaces_are_removed_from_the_number() -> None:
    # Given a number typed with spaces, as a card shows it
    parsed = CardInput(**card(number="4242 4242 4242 4242"))
    # Then the model holds the digits only, as a secret
    assert parsed.number.get_secret_value() == "4242424242424242"
    assert "4242" not in repr(parsed) and "4242" not in str(parsed)
    assert parsed.cvc.get_secret_value() == "123"
    assert "123" not in repr(parsed)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("4242424242424241", "Luhn failure"),
        ("4242-4242-4242-4242", "dashes are not digits"),
        ("4242x24242424242", "letter"),
        ("", "empty"),
        ("   ", "only spaces"),
        ("42424242420", "11 digits"),
        ("4" + "0" * 18 + "00", "20 digits"),
        ("-4242424242424242", "sign"),
    ],
)
def test_card_number_is_rejected(number: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CardInput(**card(number=number))
    assert error_locs(caught.value) == {("number",)}, why


@pytest.mark.parametrize(
    "number",
    ["424242424242", "4242424242424242", "4242424242424242428"],  # 12, 16 and 19 digits
    ids=["12", "16", "19"],
)
def test_card_number_length_bounds_are_inclusive(number: str) -> None:
    # Given Luhn-valid numbers at both length bounds (the 12/19-digit ones are built valid)
    assert luhn_valid(number), "fixture must be Luhn-valid"
    assert CardInput(**card(number=number)).number.get_secret_value() == number


@pytest.mark.parametrize(
    "overrides",
    [
        {"number": "4242424242424242".translate(FULL_WIDTH)},
        {"number": "4000000000000002".translate(FULL_WIDTH)},  # the decline card, disguised
        {"number": "4242424242424242".translate(ARABIC_INDIC)},
        {"cvc": "123".translate(ARABIC_INDIC)},
        {"cvc": "123".translate(FULL_WIDTH)},
    ],
    ids=["fullwidth-4242", "fullwidth-decline", "arabic-indic-number", "arabic-cvc", "fw-cvc"],
)
def test_card_fields_accept_ascii_digits_only(overrides: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        CardInput(**card(**overrides))


@pytest.mark.parametrize(
    ("cvc", "ok"),
    [("12", False), ("123", True), ("1234", True), ("12345", False), ("12a", False), ("", False)],
)
def test_cvc_is_three_or_four_digits(cvc: str, ok: bool) -> None:
    if ok:
        assert CardInput(**card(cvc=cvc)).cvc.get_secret_value() == cvc
    else:
        with pytest.raises(ValidationError) as caught:
            CardInput(**card(cvc=cvc))
        assert error_locs(caught.value) == {("cvc",)}


@pytest.mark.parametrize(("month", "ok"), [(0, False), (1, True), (12, True), (13, False)])
def test_exp_month_is_1_to_12(month: int, ok: bool) -> None:
    if ok:
        assert CardInput(**card(exp_month=month)).exp_month == month
    else:
        with pytest.raises(ValidationError):
            CardInput(**card(exp_month=month))


@pytest.mark.parametrize(
    ("year", "ok"), [(1999, False), (2000, True), (2100, True), (2101, False), (30, False)]
)
def test_exp_year_bounds(year: int, ok: bool) -> None:
    if ok:
        assert CardInput(**card(exp_year=year)).exp_year == year
    else:
        with pytest.raises(ValidationError):
            CardInput(**card(exp_year=year))


@pytest.mark.parametrize("field", ["exp_month", "exp_year"])
@pytest.mark.parametrize("value", ["12", 12.0, True], ids=["str", "float", "bool"])
def test_expiry_fields_are_strict_integers(field: str, value: Any) -> None:
    # Given a value that lax parsing would coerce to an int
    with pytest.raises(ValidationError) as caught:
        CardInput(**card(**{field: value}))
    # Then it is rejected, on that field only
    assert error_locs(caught.value) == {(field,)}


@pytest.mark.parametrize("raw", ['"12"', "12.0"])
def test_expiry_fields_are_strict_integers_in_json_too(raw: str) -> None:
    body = json.dumps(card()).replace('"exp_month": 12', f'"exp_month": {raw}')
    assert raw in body
    with pytest.raises(ValidationError):
        CardInput.model_validate_json(body)


def test_card_input_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        CardInput(**card(pin="1234"))
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_add_payment_method_request_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        AddPaymentMethodRequest.model_validate({"card": card(), "user_id": "usr_x"})


def test_card_errors_do_not_show_the_number_or_cvc_in_their_message() -> None:
    # Given a Luhn-invalid number and a malformed cvc
    number, cvc = "4242424242424241", "12"
    with pytest.raises(ValidationError) as caught:
        CardInput(**card(number=number, cvc="x" + cvc))
    # Then the rendered error (what ends up in a log line) holds neither value
    message = str(caught.value)
    assert number not in message
    assert "x12" not in message
    # and without inputs, nothing in the structured errors holds them either
    structured = json.dumps(caught.value.errors(include_input=False), default=str)
    assert number not in structured and "x12" not in structured


# --- RegisterRequest ------------------------------------------------------------------------


def register(**overrides: Any) -> dict[str, Any]:
    return {"email": "alice@example.com", "password": STRONG_PASSWORD, "name": "Alice", **overrides}


def test_email_is_normalised_to_lower_case_and_trimmed() -> None:
    parsed = RegisterRequest(**register(email="  Alice.Smith@Example.COM "))
    assert parsed.email == "alice.smith@example.com"


@pytest.mark.parametrize("email", ["alice", "alice@", "@example.com", "a b@example.com", "a@b"])
def test_malformed_email_is_rejected(email: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RegisterRequest(**register(email=email))
    assert error_locs(caught.value) == {("email",)}


@pytest.mark.parametrize(("length", "ok"), [(11, False), (12, True), (128, True), (129, False)])
def test_password_is_12_to_128_characters(length: int, ok: bool) -> None:
    password = "p" * length
    if ok:
        parsed = RegisterRequest(**register(password=password))
        assert parsed.password.get_secret_value() == password
    else:
        with pytest.raises(ValidationError) as caught:
            RegisterRequest(**register(password=password))
        assert error_locs(caught.value) == {("password",)}


def test_password_length_counts_characters_not_bytes() -> None:
    # 12 characters, 24 bytes in UTF-8
    assert RegisterRequest(**register(password="é" * 12)).password.get_secret_value() == "é" * 12


@pytest.mark.parametrize("extra", ["role", "id", "balance", "is_admin"])
def test_register_rejects_unknown_fields(extra: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RegisterRequest(**register(**{extra: "admin"}))
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [("extra_forbidden", (extra,))]


@pytest.mark.parametrize("field", ["email", "password", "name"])
def test_register_requires_every_field(field: str) -> None:
    body = register()
    del body[field]
    with pytest.raises(ValidationError) as caught:
        RegisterRequest(**body)
    assert error_locs(caught.value) == {(field,)}


def test_register_error_message_never_echoes_the_password() -> None:
    # Given a password one character too short
    password = "Sup3rSecret"
    assert len(password) == 11
    with pytest.raises(ValidationError) as caught:
        RegisterRequest(**register(password=password))
    # Then neither str() nor the input-free structured errors contain it
    assert password not in str(caught.value)
    assert password not in repr(caught.value)
    assert password not in json.dumps(caught.value.errors(include_input=False), default=str)


def test_hide_input_in_errors_only_hides_input_from_the_rendered_message() -> None:
    """What is true: `hide_input_in_errors` affects str(exc) only. exc.errors() and
    exc.json() still carry the raw input (the password), so they must never be logged or
    returned as-is; cashew.http builds its own field messages for that reason."""
    password = "Sup3rSecret"
    with pytest.raises(ValidationError) as caught:
        RegisterRequest(**register(password=password))
    assert caught.value.errors()[0]["input"] == password
    assert password in caught.value.json()
