"""CORS: the allow-list's parsing, the answers it gives, and a preflight for every path."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cashew import cors
from cashew.config import parse_origins
from local.cfn import load_template
from local.specs import functions
from tools.openapi import PREFLIGHT_FUNCTIONS

ALLOWED = "https://app.example.com,http://127.0.0.1:3001"


@pytest.fixture
def allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cors.VARIABLE, ALLOWED)
    cors.config.cache_clear()
    yield
    cors.config.cache_clear()


def _event(origin: str | None) -> dict[str, Any]:
    return {"headers": {"origin": origin} if origin else {}, "requestContext": {}}


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "null",
        "https://app.example.com/",
        "https://app.example.com/path",
        "HTTPS://APP.EXAMPLE.COM",
        "ftp://app.example.com",
        "https://*.example.com",
        "app.example.com",
        "https://app.example.com:0",
        "https://app.example.com,*",
        "https://app.example.com, ",
        "https://app.example.com:443",
        "http://app.example.com:80",
    ],
)
def test_a_malformed_origin_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"is not an origin|default port"):
        parse_origins(value)


def test_origins_parse() -> None:
    assert parse_origins("") == ()
    assert parse_origins(" https://a.example , http://127.0.0.1:3001 ") == (
        "https://a.example",
        "http://127.0.0.1:3001",
    )


@pytest.mark.usefixtures("allowed")
def test_an_allowed_origin_is_echoed_and_the_contract_headers_exposed() -> None:
    headers = cors.headers(_event("http://127.0.0.1:3001"))
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3001"
    assert headers["Vary"] == "Origin"
    exposed = headers["Access-Control-Expose-Headers"].split(",")
    assert {"X-Request-Id", "Idempotent-Replayed", "Retry-After", "Link"} <= set(exposed)
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.usefixtures("allowed")
def test_a_preflight_allows_the_contract_request_headers() -> None:
    headers = cors.headers(_event("https://app.example.com"), preflight=True)
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Max-Age"] == "600"


@pytest.mark.usefixtures("allowed")
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://app.example.com.evil.example",
        "http://app.example.com",  # another scheme
        "https://app.example.com:444",  # another port
        "http://127.0.0.1:30011",
        "null",
        None,
    ],
)
def test_any_other_origin_gets_no_cors_header(origin: str | None) -> None:
    for preflight in (False, True):
        headers = cors.headers(_event(origin), preflight=preflight)
        assert not any(name.startswith("Access-Control-") for name in headers), headers


def test_no_setting_no_cors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cors.VARIABLE, raising=False)
    cors.config.cache_clear()
    assert cors.headers(_event("https://app.example.com")) == {}
    cors.config.cache_clear()


def test_every_path_of_the_api_has_its_preflight() -> None:
    specs = functions(load_template())
    preflights = [event for fid in PREFLIGHT_FUNCTIONS for event in specs[fid].api_events]
    covered = [event.path for event in preflights]
    assert len(covered) == len(set(covered)), "a path's preflight is wired twice"
    assert all(event.method == "OPTIONS" for event in preflights)
    assert all(event.authorizer is None for event in preflights)
    paths = {
        event.path
        for function_id, spec in specs.items()
        if function_id not in PREFLIGHT_FUNCTIONS
        for event in spec.api_events
    }
    missing, extra = paths - set(covered), set(covered) - paths
    assert not missing and not extra, f"missing: {sorted(missing)}, extra: {sorted(extra)}"


def test_each_preflight_function_stays_within_its_resource_policy() -> None:
    # Each Api event adds a ~400-byte statement to the function's resource policy, which
    # Lambda caps at 20 KB: 30 events keep a function well inside it.
    specs = functions(load_template())
    for function_id in PREFLIGHT_FUNCTIONS:
        assert len(specs[function_id].api_events) <= 30, function_id


@pytest.mark.parametrize(
    "value",
    [
        "",
        "https://app.example.com",
        "https://app.example.com,http://127.0.0.1:3001",
        "http://localhost:5173",
        "https://app.example.com:8443",
        "http://app.example.com:8080",
        "https://app.example.com:4430",
        # refused by parse_origins: the deploy must refuse them too, or every request fails
        "https://app.example.com:443",
        "http://app.example.com:80",
        "https://a.example,http://b.example:80",
        "https://app.example.com:0",
        "https://app..example.com",
        "https://-app.example.com",
        "https://app-.example.com",
        "https://.example.com",
        "https://app.example.com.",
        "https://app.example.com,",
        "https://app.example.com,,http://b.example",
        "https://*.example.com",
        "HTTPS://APP.EXAMPLE.COM",
        "https://app.example.com/",
        "null",
        "*",
    ],
)
def test_the_template_accepts_exactly_the_origins_the_functions_parse(value: str) -> None:

    pattern = load_template()["Parameters"]["CorsOrigins"]["AllowedPattern"]
    try:
        parse_origins(value)
        parses = True
    except ValueError:
        parses = False
    assert (re.fullmatch(pattern, value) is not None) == parses
