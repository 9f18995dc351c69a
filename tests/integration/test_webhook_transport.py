"""The sender's transport against a receiver that answers a byte at a time: the whole
exchange gives up at its deadline, however slowly the bytes keep coming."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cashew.webhooks import transport
from cashew.webhooks.urls import Target


@pytest.fixture
def trickler() -> Iterator[int]:
    """A loopback server that reads the request, then sends its answer one byte every 0.1 s
    (each byte well within any per-read timeout) (5 s in all)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 30
                for byte in answer:
                    if stop.is_set():
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    server.close()


def test_a_receiver_trickling_its_answer_is_given_up_at_the_deadline(
    trickler: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(transport, "TIMEOUT_SECONDS", 1.0)
    target = Target("http", "127.0.0.1", trickler, "/hooks", "127.0.0.1")
    started = time.monotonic()
    with pytest.raises(transport.TransportError):
        transport.post(target, b"{}", {"Content-Type": "application/json"})
    assert time.monotonic() - started < 2.5
