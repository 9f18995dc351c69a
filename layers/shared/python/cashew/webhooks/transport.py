"""One POST to a checked target, connecting to the address that was checked (no second DNS
resolution), with Host, SNI and certificate verification for the URL's own name; redirects
are never followed, at most 64 KiB of the answer is read, and the whole exchange gives up
after 10 s."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from cashew.webhooks.urls import Target

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


class TransportError(Exception):
    """No HTTP answer within the time (refused, reset, TLS, timeout); the message is short
    and names no body."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    elapsed: float


def post(target: Target, body: bytes, headers: Mapping[str, str]) -> Answer:
    import urllib3  # noqa: PLC0415 - paid only by the sender

    started = time.monotonic()
    timeout = urllib3.Timeout(total=TIMEOUT_SECONDS)
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, timeout=timeout, retries=False,
            server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=timeout, retries=False
        )
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers={**headers, "Host": host_header},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )  # fmt: skip
        try:
            response.read(MAX_RESPONSE_BYTES)
        finally:
            response.release_conn()
            response.close()
    except urllib3.exceptions.HTTPError as exc:
        raise TransportError(_describe(exc)) from exc
    finally:
        pool.close()
    elapsed = time.monotonic() - started
    if elapsed > TIMEOUT_SECONDS:
        raise TransportError("no answer within 10 s")
    return Answer(response.status, elapsed)


def _describe(exc: Exception) -> str:
    import urllib3  # noqa: PLC0415

    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "no answer within 10 s"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS failed (certificate or handshake)"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection reset or invalid HTTP answer"
    return type(exc).__name__
