"""The sandbox gateway's local side: the webhooks of `processing` charges, and its own
tokenisation endpoint (`POST /_sandbox/v1/tokens`, see `tokens_endpoint`).

The sandbox adapter (in the layer) POSTs `{"delay_seconds": n, "event": {...}}` to
CASHEW_SANDBOX_WEBHOOK_URL when it answers `processing`; this scheduler signs the event
when its delay has passed and delivers it to the API's POST /v1/webhooks/gateway, as the
gateway would.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_log = logging.getLogger("local.sandbox")
WEBHOOK_PATH = "/v1/webhooks/gateway"


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # as local.api's front: socketserver's 5 overflows under a burst


class WebhookScheduler:
    def __init__(self, api_url: str, secret: Callable[[], str], host: str = "127.0.0.1") -> None:
        """`secret` returns the webhook secret to sign with, asked at each delivery."""
        self._api_url = api_url
        self._secret = secret
        self._timers: list[threading.Timer] = []
        scheduler = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length))
                    scheduler.schedule(float(request["delay_seconds"]), dict(request["event"]))
                except (ValueError, KeyError, TypeError):
                    self.send_response(400)
                else:
                    self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug(format, *args)

        self._server = _Server((host, 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def schedule(self, delay: float, event: dict[str, Any]) -> None:
        timer = threading.Timer(max(0.0, min(delay, 60.0)), self.deliver, args=(event,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def deliver(self, event: dict[str, Any]) -> int:
        from cashew.gateways.base import SIGNATURE_HEADER  # noqa: PLC0415
        from cashew.gateways.sandbox import signed_delivery  # noqa: PLC0415

        body, signature = signed_delivery(event, self._secret(), int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - our own API on loopback
            self._api_url + WEBHOOK_PATH,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 # nosec B310 # the local API
                status = int(response.status)
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError as error:
            _log.warning("webhook %s not delivered: %s", event.get("id"), error)
            return 0
        _log.info("webhook %s delivered: %s", event.get("id"), status)
        return status

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._server.shutdown()
        self._server.server_close()


TOKENS_PATH = "/_sandbox/v1/tokens"


def tokens_endpoint(secret: Callable[[], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The handler of `POST /_sandbox/v1/tokens` (see `local.sandbox_tokens`), issuing tokens
    under the secret `secret` returns (asked at each call). Imported on use: it needs the
    layer on sys.path."""
    from local.sandbox_tokens import handler  # noqa: PLC0415

    return handler(secret)
