"""Security emails (API.md: "Security emails are always sent, whatever `notify_email`
says"): a password changed or reset, a reset requested (the email carrying the reset link),
a sign-in from a new session (`new_sign_in`, with its time, user agent and source IP), MFA
enabled or disabled; and the email-verification link (at registration and on resend), which
carries a token as the reset link does.

Sent directly through SES v2 by the request's own function, never through a queue or the
bus: a reset link's token goes from the function to SES and nowhere else (no queue message,
no table, no log). A failed send never fails the request: it is logged (without the link)
and counted (`SecurityEmailFailed`).
"""

from __future__ import annotations

import functools
import html
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit

from cashew.accounts import face as accounts
from cashew.auth.recovery import service as recovery
from cashew.auth.recovery import verification
from cashew.config import get_settings
from cashew.notifications import formatting, render, ses
from cashew.observability import logger, metrics

Kind = Literal[
    "password_reset_requested",
    "password_reset",
    "password_changed",
    "new_sign_in",
    "mfa_enabled",
    "mfa_disabled",
    "verify_email",
]


USER_AGENT_CHARS = 200  # of the client's user agent an email shows


@dataclass(frozen=True, slots=True)
class SignIn:
    """What a new-sign-in email says of the session: when (UTC), and the client's user agent
    and source IP as API Gateway saw them. Nothing secret: no session id, no token."""

    at: str  # RFC 3339, UTC
    user_agent: str
    source_ip: str

    def rows(self) -> tuple[tuple[str, str], ...]:
        agent = formatting.one_line(self.user_agent)
        if len(agent) > USER_AGENT_CHARS:
            agent = agent[: USER_AGENT_CHARS - 1] + "…"
        return (
            ("Time", formatting.moment(self.at)),
            ("Device", agent or "unknown"),
            ("IP address", formatting.one_line(self.source_ip)[:64] or "unknown"),
        )


@functools.cache
def _wording() -> dict[str, dict[str, str]]:
    with (render.TEMPLATES / "security.toml").open("rb") as file:
        return tomllib.load(file)


def compose(
    kind: Kind,
    name: str,
    link: str | None = None,
    rows: Sequence[tuple[str, str]] = (),
) -> render.Rendered:
    """The subject, text and HTML of a security email of `kind` to `name`, with the details
    `rows` (label, value: HTML-escaped in the HTML body) under its headline."""
    words = _wording()[kind]
    text_rows = "".join(f"{label}: {value}\n" for label, value in rows)
    html_rows = "".join(
        f'<tr><td style="padding:4px 16px 4px 0;color:#777">{html.escape(label)}</td>'
        f'<td style="padding:4px 0">{html.escape(value)}</td></tr>\n'
        for label, value in rows
    )
    text_details = f"\n{text_rows}" if rows else ""
    html_details = f'<table role="presentation">\n{html_rows}</table>' if rows else ""
    text_action = f"\n{words['action']}: {link}\n" if link else ""
    html_action = (
        f'<p><a href="{html.escape(link)}" style="font-weight:bold">'
        f"{html.escape(words['action'])}</a></p>"
        if link
        else ""
    )
    text = Template((render.TEMPLATES / "security.txt").read_text(encoding="utf-8")).substitute(
        name=name, headline=words["headline"], details=text_details, action=text_action
    )
    body = Template((render.TEMPLATES / "security.html").read_text(encoding="utf-8")).substitute(
        subject=html.escape(words["subject"]),
        name=html.escape(name),
        headline=html.escape(words["headline"]),
        details=html_details,
        action=html_action,
    )
    return render.Rendered(words["subject"], text, body)


def send(
    to: str,
    kind: Kind,
    name: str,
    link: str | None = None,
    rows: Sequence[tuple[str, str]] = (),
) -> bool:
    """Send one security email; False (logged and counted) when it could not be sent."""
    sender = get_settings().email_from
    try:
        ses.send(sender, to, render.mime(sender, to, compose(kind, name, link, rows)))
    except Exception as error:  # noqa: BLE001 - an email never fails the request
        metrics.add_metric(name="SecurityEmailFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "a security email was not sent",
            extra={"kind": kind, "error": type(error).__name__},
        )
        return False
    metrics.add_metric(name="SecurityEmailSent", unit=MetricUnit.Count, value=1)
    return True


def security_email(user_id: str, kind: Kind, sign_in: SignIn | None = None) -> bool:
    """The security email of `kind` to the user (whatever their notify_email says), with
    the session's details for `new_sign_in`; never raises: False when it was not sent. One
    GetItem (the profile: address and name) and one SendEmail."""
    try:
        profile = accounts.get_profile(user_id)
        rows = sign_in.rows() if sign_in is not None else ()
    except Exception as error:  # noqa: BLE001 - an email never fails the request
        metrics.add_metric(name="SecurityEmailFailed", unit=MetricUnit.Count, value=1)
        logger.warning("a security email's recipient could not be read",
                       extra={"kind": kind, "error": type(error).__name__})  # fmt: skip
        return False
    if profile is None:
        return False
    return send(profile.email, kind, formatting.one_line(profile.name), rows=rows)


def request_password_reset(email: str) -> None:
    """A reset token for `email` and its email (to the simulator for an unknown email, so
    both cost the same); TooManyAttemptsError past the hourly limit."""
    mail = recovery.request_reset(email)
    profile = accounts.get_profile(mail.user_id)  # for an unknown email too: the same work
    name = formatting.one_line(profile.name) if profile and mail.known else "Cashew user"
    send(mail.to, "password_reset_requested", name, mail.link)


def email_verification(user_id: str, email: str, name: str) -> bool:
    """At registration: a verification token for the new user and its email. Never raises
    (a failed token or email never fails the registration): False, logged without the link
    and counted (`VerificationEmailFailed`), when it was not sent; a resend makes another."""
    try:
        mail = verification.issue(user_id, email, formatting.one_line(name))
    except Exception as error:  # noqa: BLE001 - the registration stands without its email
        metrics.add_metric(name="VerificationEmailFailed", unit=MetricUnit.Count, value=1)
        logger.warning("a verification token was not issued",
                       extra={"error": type(error).__name__})  # fmt: skip
        return False
    sent = send(mail.to, "verify_email", mail.name, mail.link)
    if not sent:
        metrics.add_metric(name="VerificationEmailFailed", unit=MetricUnit.Count, value=1)
    return sent


def resend_verification(user_id: str) -> None:
    """A new verification email for the caller (voiding older tokens), unless their email is
    verified already; TooManyAttemptsError past the hourly limit."""
    mail = verification.resend(user_id)
    if mail is not None and not send(
        mail.to, "verify_email", formatting.one_line(mail.name), mail.link
    ):
        metrics.add_metric(name="VerificationEmailFailed", unit=MetricUnit.Count, value=1)
