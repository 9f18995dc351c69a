"""The local inbox: every email the embedded SES accepted, as `make dev` serves it beside the API
(never part of template.yaml):

- `GET /_local/mail`: a page a person can read, newest first (HTML bodies shown in a sandboxed
  iframe: no script of an email runs, nothing it links loads);
- `GET /_local/mail.json?to=<address>`: `{"data": [{id, to, from, subject, text, html,
  sent_at}]}`, newest first.

moto keeps what SES accepted in its backend's `sent_messages` (moto 5.2.5, as
requirements-dev.txt pins it: a `RawMessage` with `id`, `source`, `destinations`, `raw_data`
for a raw send; a `Message` with `subject` and one `body` for a simple one); this is the only
place that reads it, in the process that runs the embedded endpoint.
"""

from __future__ import annotations

import html
import json
from datetime import UTC
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from local.api import LocalRoute
from local.cfn import ACCOUNT_ID, REGION

PAGE_PATH = "/_local/mail"
JSON_PATH = "/_local/mail.json"


def _sent_messages() -> list[Any]:
    from moto.ses.models import ses_backends  # noqa: PLC0415 - moto is slow to import

    return list(ses_backends[ACCOUNT_ID][REGION].sent_messages)


def _addresses(values: list[str]) -> list[str]:
    return list(dict.fromkeys(address for _, address in getaddresses(values) if address))


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    return str(part.get_content())


def _rfc3339(date: str) -> str:
    """An email's Date header as the API writes times (UTC, a Z suffix)."""
    moment = parsedate_to_datetime(date).astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def as_mail(sent: Any) -> dict[str, Any]:
    """One accepted message as the inbox shows it."""
    if hasattr(sent, "raw_data"):
        message = message_from_string(sent.raw_data, policy=policy.default)
        assert isinstance(message, EmailMessage)  # nosec B101 # policy.default's
        date = message["Date"]
        return {
            "id": sent.id,
            "to": _addresses([*sent.destinations, *message.get_all("To", [])]),
            "from": sent.source or str(message["From"]),
            "subject": str(message["Subject"] or ""),
            "text": _body(message, "plain"),
            "html": _body(message, "html"),
            "sent_at": _rfc3339(str(date)) if date else None,
        }
    destinations = sent.destinations
    to = destinations.get("ToAddresses", []) if isinstance(destinations, dict) else destinations
    is_html = "<" in sent.body and ">" in sent.body
    return {
        "id": sent.id,
        "to": _addresses(list(to)),
        "from": sent.source,
        "subject": sent.subject,
        "text": None if is_html else sent.body,
        "html": sent.body if is_html else None,
        "sent_at": None,
    }


def inbox(to: str | None = None) -> list[dict[str, Any]]:
    """Every accepted email (to `to` only, compared case-insensitively), newest first."""
    mails = [as_mail(sent) for sent in reversed(_sent_messages())]
    if to is None:
        return mails
    return [m for m in mails if to.lower() in (a.lower() for a in m["to"])]


def _page(mails: list[dict[str, Any]]) -> str:
    items = []
    for mail in mails:
        frame = (
            f'<iframe sandbox="" srcdoc="{html.escape(mail["html"])}" '
            'style="width:100%;height:420px;border:1px solid #ccc"></iframe>'
            if mail["html"]
            else ""
        )
        text = f"<pre>{html.escape(mail['text'])}</pre>" if mail["text"] else ""
        items.append(
            "<article>"
            f"<h2>{html.escape(mail['subject'])}</h2>"
            f"<p><b>To</b> {html.escape(', '.join(mail['to']))} · <b>From</b> "
            f"{html.escape(mail['from'] or '')} · <b>Sent</b> {html.escape(mail['sent_at'] or '')}"
            "</p>"
            f"<details open><summary>Text</summary>{text}</details>"
            f"<details open><summary>HTML</summary>{frame}</details>"
            "</article><hr>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Cashew local inbox'
        "</title><style>body{font-family:sans-serif;max-width:900px;margin:auto}"
        "pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:8px}</style>"
        f"</head><body><h1>Local inbox ({len(mails)})</h1>"
        + ("".join(items) or "<p>No email yet.</p>")
        + "</body></html>"
    )


_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'"


def _recipient(event: dict[str, Any]) -> str | None:
    return (event.get("queryStringParameters") or {}).get("to")


def page(event: dict[str, Any]) -> dict[str, Any]:
    """`GET /_local/mail` (a proxy event in, a proxy response out, as the Gateway routes it)."""
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": _PAGE_POLICY}
    return {"statusCode": 200, "headers": headers, "body": _page(inbox(_recipient(event)))}


def listing(event: dict[str, Any]) -> dict[str, Any]:
    """`GET /_local/mail.json?to=<address>`."""
    body = json.dumps({"data": inbox(_recipient(event))})
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}


ROUTES: dict[tuple[str, str], LocalRoute] = {("GET", PAGE_PATH): page, ("GET", JSON_PATH): listing}
"""The inbox's routes, for `local.api.Gateway`'s local-only routes."""
