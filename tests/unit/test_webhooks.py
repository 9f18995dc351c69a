"""Webhooks without sockets: signatures over exact bytes, the retry schedule, URL rules (SSRF),
event ids and request models."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import ValidationError

from cashew.webhooks import dispatch, signing, urls
from cashew.webhooks.models import CreateEndpointRequest, UpdateEndpointRequest
from cashew.webhooks.settings import DEFAULT_SCHEDULE, WebhookSettings

ENV = {
    "CASHEW_WEBHOOKS_TABLE": "t", "CASHEW_WEBHOOK_KEY_ID": "k",
    "CASHEW_WEBHOOK_DELIVERIES_QUEUE_URL": "q",
}  # fmt: skip


def test_the_signature_is_the_hmac_of_t_dot_the_exact_bytes_with_one_v1_per_live_secret():
    body = b'{"id":"evt_1","amount": 10}'  # a space a re-serialisation would drop
    header = signing.header(["whsec_a", "whsec_b"], 1700000000, body)
    expected = hmac.new(b"whsec_a", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header.split(",")[:2] == ["t=1700000000", f"v1={expected}"]
    assert header.count("v1=") == 2
    assert signing.verify("whsec_a", header, body, 1700000000)
    assert signing.verify("whsec_b", header, body, 1700000000)
    assert not signing.verify("whsec_c", header, body, 1700000000)
    assert not signing.verify("whsec_a", header, body.replace(b": ", b":"), 1700000000)
    assert not signing.verify("whsec_a", header, body, 1700000000 + 301)  # too old


def test_a_secret_is_whsec_and_32_random_bytes():
    one, two = signing.new_secret(), signing.new_secret()
    assert one.startswith("whsec_") and len(one) == 6 + 43 and one != two


def test_the_default_schedule_retries_within_a_minute_then_8_or_more_attempts_over_24_h():
    config = WebhookSettings.model_validate(ENV)
    assert config.retry_schedule == DEFAULT_SCHEDULE
    assert config.retry_schedule[0] <= 60
    assert config.max_attempts >= 8
    assert sum(config.retry_schedule) >= 24 * 3600
    assert list(config.retry_schedule) == sorted(config.retry_schedule)  # backing off
    short = WebhookSettings.model_validate({**ENV, "CASHEW_WEBHOOK_RETRY_SCHEDULE": "1,2"})
    assert short.retry_schedule == (1, 2) and short.max_attempts == 3
    with pytest.raises(ValidationError):
        WebhookSettings.model_validate({**ENV, "CASHEW_WEBHOOK_RETRY_SCHEDULE": "0"})


def test_loopback_is_never_allowed_unless_the_local_stack_says_so():
    assert WebhookSettings.model_validate(ENV).allow_loopback is False


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/",
        "https://10.1.2.3/", "https://172.16.0.1/", "https://192.168.1.1/",
        "https://127.0.0.1/", "https://[::1]/", "https://0.0.0.0/", "https://100.64.0.1/",
        "https://[fe80::1]/", "https://[fc00::1]/", "https://[::ffff:169.254.169.254]/",
        "https://[::ffff:7f00:1]/", "https://[64:ff9b::a00:1]/", "https://[2002:a00:1::]/",
        "https://224.0.0.1/", "https://240.0.0.1/", "https://255.255.255.255/",
        "https://192.0.2.1/", "https://198.18.0.1/",
        "http://93.184.216.34/", "ftp://93.184.216.34/", "https://user@93.184.216.34/",
        "https://a:b@93.184.216.34/", "https:///nohost", "https://93.184.216.34/#frag",
        "https://93.184.216.34/" + "a" * 2100, "https://93.184.216.34/\\x",
        "https://93.184.216.34:99999/",
    ],
)  # fmt: skip
def test_urls_to_private_reserved_or_loopback_addresses_are_refused_when_deployed(url):
    with pytest.raises(urls.UrlRefused):
        urls.resolve(url, allow_loopback=False)


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public(monkeypatch):
    monkeypatch.setattr(urls, "resolver", lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(urls.UrlRefused, match="public addresses"):
        urls.resolve("https://mixed.example.com/", allow_loopback=False)
    monkeypatch.setattr(urls, "resolver", lambda host, port: ["93.184.216.34"])
    target = urls.resolve("https://ok.example.com:8443/p?q=1", allow_loopback=False)
    assert (target.address, target.host, target.port, target.path) == (
        "93.184.216.34", "ok.example.com", 8443, "/p?q=1",
    )  # fmt: skip


def test_the_local_stack_allows_loopback_only_never_private_ranges_or_metadata():
    target = urls.resolve("http://127.0.0.1:8080/hooks", allow_loopback=True)
    assert (target.scheme, target.address, target.port) == ("http", "127.0.0.1", 8080)
    assert urls.resolve("http://localhost:9/", allow_loopback=True).address == "127.0.0.1"
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://192.168.0.1/"):
        with pytest.raises(urls.UrlRefused):
            urls.resolve(url, allow_loopback=True)


def test_an_event_id_is_the_same_for_the_same_outcome_and_sorts_by_time():
    one = dispatch.event_id("pay_X:succeeded", "2026-12-01T10:00:00.000Z")
    assert one == dispatch.event_id("pay_X:succeeded", "2026-12-01T10:00:00.000Z")
    assert len(one) == 4 + 26 and one.startswith("evt_")
    other = dispatch.event_id("pay_Y:succeeded", "2026-12-01T10:00:00.000Z")
    later = dispatch.event_id("pay_A:succeeded", "2026-12-01T10:00:01.000Z")
    assert one != other and max(one, other) < later


def test_events_are_known_bus_types_or_star():
    ok = CreateEndpointRequest.model_validate({"url": "https://x.example", "events": ["*"]})
    assert ok.events == ["*"]
    for events in (["payment.exploded"], ["*", "payment.succeeded"], [], ["refund.succeeded"] * 2):
        with pytest.raises(ValidationError):
            CreateEndpointRequest.model_validate({"url": "https://x.example", "events": events})
    with pytest.raises(ValidationError):
        UpdateEndpointRequest.model_validate({"url": "https://elsewhere.example"})
    with pytest.raises(ValidationError):
        UpdateEndpointRequest.model_validate({"status": "paused"})
