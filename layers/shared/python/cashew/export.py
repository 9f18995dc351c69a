"""GET /v1/users/me/export: everything Cashew stores about the caller, as each module's own
endpoints show it to them (so no secret a list leaves out can appear here), paged over
sections.

A page holds at most `PAGE_ITEMS` items (payment methods, sessions, payments, disputes, log
entries), filled section by section in `SECTIONS` order, plus the refunds of its payments
and the caller's profile. Every item is a few hundred bytes (a payment's description is at
most 500 characters), so a page stays far below Lambda's 6 MB response. `next_cursor` names
the section and that section's own cursor; a client follows it until it is null.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from cashew import cursor as cursor_codec
from cashew.accounts import payment_methods
from cashew.accounts import service as accounts
from cashew.accounts.models import PaymentMethodResponse, UserResponse
from cashew.auth import service as auth
from cashew.auth.models import SessionResponse
from cashew.disputes import service as disputes
from cashew.disputes.models import Dispute
from cashew.identity import Caller
from cashew.ledger import service as ledger
from cashew.ledger.models import Entry
from cashew.payments import face as payments
from cashew.payments.models import PaymentResponse, RefundResponse

PAGE_ITEMS = 100

Section = Literal[
    "payment_methods",
    "sessions",
    "payments_as_payer",
    "payments_as_payee",
    "disputes_as_payer",
    "disputes_as_payee",
    "transactions",
]
SECTIONS: tuple[Section, ...] = (
    "payment_methods",
    "sessions",
    "payments_as_payer",
    "payments_as_payee",
    "disputes_as_payer",
    "disputes_as_payee",
    "transactions",
)
_CURSOR_FIELDS = {
    "user": re.compile(r"usr_[0-9A-HJKMNP-TV-Z]{26}"),
    "section": re.compile("|".join(SECTIONS)),
    "inner": re.compile(r"[A-Za-z0-9_=-]{0,1024}"),  # "": the section's first page
}


class ExportPage(BaseModel):
    """One page of the caller's export. `user` is on every page; each list holds what this
    page reached of its section (payments as payer, then as payee not already listed; the
    same for disputes), `refunds` those of this page's payments."""

    user: UserResponse
    payment_methods: list[PaymentMethodResponse] = Field(default_factory=list)
    sessions: list[SessionResponse] = Field(default_factory=list)
    payments: list[PaymentResponse] = Field(default_factory=list)
    refunds: list[RefundResponse] = Field(default_factory=list)
    disputes: list[Dispute] = Field(default_factory=list)
    transactions: list[Entry] = Field(default_factory=list)
    has_more: bool
    next_cursor: str | None


def export(caller: Caller, cursor: str | None, page_items: int = PAGE_ITEMS) -> ExportPage:
    section, inner = _start(caller, cursor)
    page = ExportPage(user=accounts.get_me(caller), has_more=False, next_cursor=None)
    room = page_items
    index = SECTIONS.index(section)
    while room > 0 and index < len(SECTIONS):
        section = SECTIONS[index]
        taken, inner = _READERS[section](caller, page, room, inner)
        room -= taken
        if inner is None:
            index += 1
    if index < len(SECTIONS):
        state = {"user": caller.user_id, "section": SECTIONS[index], "inner": inner or ""}
        page.has_more, page.next_cursor = True, cursor_codec.encode(state)
    return page


def _start(caller: Caller, cursor: str | None) -> tuple[Section, str | None]:
    if cursor is None:
        return SECTIONS[0], None
    state = cursor_codec.decode(cursor, _CURSOR_FIELDS, user=caller.user_id)
    section = next(s for s in SECTIONS if s == state["section"])
    return section, state["inner"] or None


# Each reader adds up to `room` items of its section to the page, from `inner` (None: the
# start), and answers how many it added and the section's next cursor (None: it is done).
Read = tuple[int, str | None]
Reader = Callable[[Caller, ExportPage, int, str | None], Read]


def _payment_methods(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = payment_methods.list_payment_methods(caller, room, inner)
    page.payment_methods.extend(found.data)
    return len(found.data), found.next_cursor


def _sessions(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = auth.list_sessions(caller, room, inner)
    page.sessions.extend(found.data)
    return len(found.data), found.next_cursor


def _payments(role: Literal["payer", "payee"]) -> Reader:
    def read(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
        found, next_cursor = payments.payments_page(caller.user_id, role, room, inner)
        # A payment of the caller to themselves (a top-up) is listed once, as payer's.
        mine = [p for p in found if role == "payer" or p.payer_id != caller.user_id]
        page.payments.extend(mine)
        for payment in mine:
            if payment.amount_refunded > 0:
                page.refunds.extend(payments.refunds_of(payment.id))
        return len(found), next_cursor

    return read


def _disputes(role: Literal["payer", "payee"]) -> Reader:
    def read(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
        found = disputes.list_disputes(caller, role, room, inner)
        page.disputes.extend(
            d for d in found.data if role == "payer" or d.payer_id != caller.user_id
        )
        return len(found.data), found.next_cursor

    return read


def _transactions(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = ledger.list_transactions(caller, ledger.Filters(), room, inner)
    page.transactions.extend(found.data)
    return len(found.data), found.next_cursor


_READERS: dict[Section, Reader] = {
    "payment_methods": _payment_methods,
    "sessions": _sessions,
    "payments_as_payer": _payments("payer"),
    "payments_as_payee": _payments("payee"),
    "disputes_as_payer": _disputes("payer"),
    "disputes_as_payee": _disputes("payee"),
    "transactions": _transactions,
}
