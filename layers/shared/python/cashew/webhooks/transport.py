"""One POST to a checked target, connecting to the address that was checked (no second DNS
resolution), with Host, SNI and certificate verification for the URL's own name; redirects
are never followed, at most 64 KiB of the answer is read, and the whole exchange gives up
after 10 s: a deadline cuts the connection then, however slowly the receiver keeps sending
(urllib3's timeouts bound each read, not the exchange)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class _Deadline:
    """Shuts down every socket the exchange opened once `seconds` have passed: a blocked
    read returns at once, and the exchange ends in a TransportError."""

    seconds: float
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    passed: bool = False

    def __post_init__(self) -> None:
        self._timer = threading.Timer(self.seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.passed:
                _shut(sock)

    def _cut(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watched(pool: Any, deadline: _Deadline) -> None:
    """The pool's connections hand their socket to `deadline` as soon as it is connected
    (before TLS, so a slow handshake is cut too)."""
    base = pool.ConnectionCls

    class Watched(base):  # type: ignore[misc, valid-type]
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            deadline.watch(sock)
            return sock

    pool.ConnectionCls = Watched


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
    deadline = _Deadline(TIMEOUT_SECONDS)
    _watched(pool, deadline)
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
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.passed:
            raise TransportError("no answer within 10 s") from exc
        raise TransportError(_describe(exc)) from exc
    finally:
        deadline.cancel()
        pool.close()
    elapsed = time.monotonic() - started
    if deadline.passed or elapsed > TIMEOUT_SECONDS:
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
