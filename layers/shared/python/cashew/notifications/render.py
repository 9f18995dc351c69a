"""An email's subject, text and HTML bodies, from the templates a designer edits
(`templates/`: `wording.toml` says what each email says, `layout.*`, `row.*` and `receipt*.*`
how it looks; `string.Template` placeholders), as one MIME message (multipart/alternative).

Every value is HTML-escaped in the HTML body; the templates' own words are not. An email names
a card by brand and last4 only (`formatting.card`): nothing here ever sees more of it.
"""

from __future__ import annotations

import functools
import html
import tomllib
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from string import Template

from cashew import clock

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True, slots=True)
class Receipt:
    entry_id: str
    jws: str


@dataclass(frozen=True, slots=True)
class Email:
    """What one email says: `template` is a key of wording.toml; `rows` the details shown
    (label, value), in order; `receipt` None with `receipt_pending` when it was not ready."""

    template: str
    name: str
    amount: str
    counterparty: str
    payment_id: str
    rows: tuple[tuple[str, str], ...]
    receipt: Receipt | None = None
    receipt_pending: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


@functools.cache
def wording() -> dict[str, dict[str, str]]:
    """Every email's subject and headline, by template key (`payment_succeeded.payer`)."""
    with (TEMPLATES / "wording.toml").open("rb") as file:
        raw = tomllib.load(file)
    flat: dict[str, dict[str, str]] = {}
    for key, value in raw.items():
        if "subject" in value:
            flat[key] = value
        else:
            flat.update({f"{key}.{role}": words for role, words in value.items()})
    return flat


def render(email: Email) -> Rendered:
    words = wording()[email.template]
    values = {"amount": email.amount, "counterparty": email.counterparty,
              "payment_id": email.payment_id}  # fmt: skip
    escaped = {key: html.escape(value) for key, value in values.items()}
    subject = Template(words["subject"]).substitute(values)
    text = _template("layout.txt").substitute(
        name=email.name,
        headline=Template(words["headline"]).substitute(values),
        rows="".join(_template("row.txt").substitute(label=k, value=v) for k, v in email.rows),
        receipt=_receipt("txt", email, html_escape=False),
    )
    body = _template("layout.html").substitute(
        subject=html.escape(subject),
        name=html.escape(email.name),
        headline=Template(words["headline"]).substitute(escaped),
        rows="".join(
            _template("row.html").substitute(label=html.escape(k), value=html.escape(v))
            for k, v in email.rows
        ),
        receipt=_receipt("html", email, html_escape=True),
    )
    return Rendered(subject, text, body)


def _receipt(kind: str, email: Email, *, html_escape: bool) -> str:
    if email.receipt is not None:
        quote = html.escape if html_escape else str
        return _template(f"receipt.{kind}").substitute(
            entry_id=quote(email.receipt.entry_id), receipt=quote(email.receipt.jws)
        )
    return _template(f"receipt_pending.{kind}").template if email.receipt_pending else ""


def mime(sender: str, to: str, rendered: Rendered) -> bytes:
    """The raw message: text and HTML as alternatives, dated now."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message.as_bytes(policy=SMTP)
