"""The web client at `/`: web/dist (built by `make web`) served as a static host serves it.

Only files inside web/dist are answered (`/`, `/config.json`, `/assets/<file>`), never a
path that leaves it; each with its content type, `nosniff`, and the client's CSP: scripts,
styles and requests only to this origin, no frames, no plug-ins. A host of the client's own
(S3 + CloudFront, see the README) sets the same headers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.api import LocalRoute

DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(relative: str) -> dict[str, Any]:
    root = DIST.resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file() or path.suffix not in TYPES:
        return _problem(404, "not_found", "Not found", "no such file")
    return {
        "statusCode": 200,
        "headers": {**HEADERS, "Content-Type": TYPES[path.suffix]},
        "body": path.read_text(encoding="utf-8") if path.suffix != ".png" else "",
    }


def _problem(status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/problem+json"},
        "body": json.dumps(
            {
                "type": f"https://cashew.dev/errors/{code}",
                "title": title,
                "status": status,
                "detail": detail,
                "code": code,
            }
        ),
    }


def index(event: dict[str, Any]) -> dict[str, Any]:
    if not (DIST / "index.html").is_file():
        return _problem(503, "internal_error", "Client not built", "run `make web`")
    return _file("index.html")


def config(event: dict[str, Any]) -> dict[str, Any]:
    return _file("config.json")


def asset(event: dict[str, Any]) -> dict[str, Any]:
    name = (event.get("pathParameters") or {}).get("name") or ""
    return _file(f"assets/{name}")


ROUTES: dict[tuple[str, str], LocalRoute] = {
    ("GET", "/"): index,
    ("GET", "/config.json"): config,
    ("GET", "/assets/{name}"): asset,
}
