"""Every secret an e2e run saw cross the API in clear, and the scan of a stack's tables and log
for them once the run is over (issue 13, point 3; properties 43-45): passwords a client sent,
reset and verification tokens the inbox delivered, TOTP secrets and recovery codes enrolment
answered, webhook signing secrets their creation answered."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import requests

# Body fields that carry a secret, sent or answered; `token` only where it is a reset or
# verification token (elsewhere it is a gateway's card token, which the stack keeps by design)
_SECRET_FIELDS = frozenset({
    "password", "current_password", "new_password", "recovery_code", "secret", "recovery_codes",
})  # fmt: skip
_TOKEN_PATHS = frozenset({"/v1/auth/password-reset/confirm", "/v1/users/verify-email"})
_INBOX_PATH = "/_local/mail.json"
_LINK_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_.%\-]+)")
_SHORTEST = 8  # shorter values (a fuzzed "x", a 6-digit code) match stored text by chance


def standing_alone(value: str) -> re.Pattern[str]:
    """`value` as a token of its own: not inside a word or hash, not a group of a request id
    (`…-4821-…`), not part of a decimal (`0.4821`). A short secret (a CVC) occurs in those
    by chance; leaked, it stands alone (`"cvc": "0731"`, `cvc=0731`)."""
    return re.compile(rf"(?<![0-9A-Za-z.-]){re.escape(value)}(?![0-9A-Za-z-]|\.[0-9])")


def all_items(aws_url: str) -> str:
    """Every item of every table of the stack's embedded AWS, one repr a line."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=aws_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dumped = []
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table):
            dumped += [repr(item) for item in page["Items"]]
    return "\n".join(dumped)


def _json(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class SecretsSeen:
    """A response hook for the e2e client's session that keeps every secret it sees."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # secret -> where it was seen

    def add(self, value: Any, where: str) -> None:
        if isinstance(value, list):
            for item in value:
                self.add(item, where)
        elif isinstance(value, str) and len(value) >= _SHORTEST:
            self.values.setdefault(value, where)
            _, dot, secret = value.partition(".")  # `<user id>.<secret>` tokens: the secret too
            if dot and len(secret) >= _SHORTEST:
                self.values.setdefault(secret, where)

    def _walk(self, document: Any, path: str, where: str) -> None:
        if isinstance(document, dict):
            for key, value in document.items():
                if key in _SECRET_FIELDS or (key == "token" and path in _TOKEN_PATHS):
                    self.add(value, f"{where} {key}")
                else:
                    self._walk(value, path, where)
        elif isinstance(document, list):
            for item in document:
                self._walk(item, path, where)

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = urlsplit(response.request.url or "").path
        self._walk(_json(response.request.body), path, f"{response.request.method} {path}")
        if path == _INBOX_PATH:
            for token in _LINK_TOKEN.findall(response.text):
                self.add(unquote(token), "an emailed link's token")
        elif "json" in response.headers.get("Content-Type", ""):
            self._walk(_json(response.content), path, f"the answer to {path}")

    def leaks(self, aws_url: str, log_path: Path | None) -> list[str]:
        """Where each seen secret is found in clear: the tables, the log."""
        places = {"a stored item": all_items(aws_url)}
        if log_path is not None and log_path.exists():
            places["the stack's log"] = log_path.read_text(errors="replace")
        return [
            f"{where} ({secret[:3]}…) is in {place}"
            for secret, where in self.values.items()
            for place, text in places.items()
            if secret in text
        ]
