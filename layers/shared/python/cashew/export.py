"""GET /v1/users/me/export: everything Cashew stores about the caller, as each module's own
endpoints show it to them (so no secret a list leaves out can appear here), paged over
sections.

A page holds at most `PAGE_ITEMS` items (payment methods, sessions, payments and their
refunds, payouts, disputes, log entries), filled section by section in `SECTIONS` order, plus the
caller's profile. An item is at most a few KB (a payment's description is at most 500
characters, a dispute's details 2000), so a page stays far below Lambda's 6 MB response.
`next_cursor` names the section, that section's own cursor, and the payment whose refunds go
on (a payment with more refunds than a page holds continues on the next); a client follows
it until it is null.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, get_args

from pydantic import BaseModel, Field

from cashew import cursor as cursor_codec
from cashew.accounts import payment_methods
from cashew.accounts import service as accounts
from cashew.accounts.models import PaymentMethodResponse, UserResponse
from cashew.auth import service as auth
from cashew.auth.models import SessionResponse
from cashew.disputes import service as disputes
from cashew.disputes.models import Dispute
from cashew.errors import InvalidRequestError
from cashew.identity import Caller
from cashew.ledger import service as ledger
from cashew.ledger.models import Entry
from cashew.payments import face as payments
from cashew.payments.models import PaymentResponse, RefundResponse
from cashew.payouts import face as payouts
from cashew.payouts.models import PayoutResponse

PAGE_ITEMS = 100

Section = Literal[
    "payment_methods",
    "sessions",
    "payments_as_payer",
    "payments_as_payee",
    "payouts",
    "disputes_as_payer",
    "disputes_as_payee",
    "transactions",
]
SECTIONS: tuple[Section, ...] = get_args(Section)  # in the order pages go through them
_CURSOR_FIELDS = {
    "user": re.compile(r"usr_[0-9A-HJKMNP-TV-Z]{26}"),
    "section": re.compile("|".join(SECTIONS)),
    "inner": re.compile(r"[A-Za-z0-9_=-]{0,1024}"),  # "": the section's first page
    "refunds_of": re.compile(r"(pay_[0-9A-HJKMNP-TV-Z]{26})?"),  # "": none pending
    "refunds_inner": re.compile(r"[A-Za-z0-9_=-]{0,1024}"),
}
# The refunds of a payment still to list: its id, and the cursor of their next page.
Pending = tuple[str, str | None]


class ExportPage(BaseModel):
    """One page of the caller's export. `user` is on every page; each list holds what this
    page reached of its section (payments as payer, then as payee not already listed; the
    same for disputes), `refunds` those of this page's payments (the refunds of a payment
    that has more than the page holds go on at the start of the next pages)."""

    user: UserResponse
    payment_methods: list[PaymentMethodResponse] = Field(default_factory=list)
    sessions: list[SessionResponse] = Field(default_factory=list)
    payments: list[PaymentResponse] = Field(default_factory=list)
    refunds: list[RefundResponse] = Field(default_factory=list)
    payouts: list[PayoutResponse] = Field(default_factory=list)
    disputes: list[Dispute] = Field(default_factory=list)
    transactions: list[Entry] = Field(default_factory=list)
    has_more: bool
    next_cursor: str | None


def export(caller: Caller, cursor: str | None, page_items: int = PAGE_ITEMS) -> ExportPage:
    section, inner, pending = _start(caller, cursor)
    page = ExportPage(user=accounts.get_me(caller), has_more=False, next_cursor=None)
    room = page_items
    if pending is not None:
        taken, pending = _refunds(page, pending, room)
        room -= taken
    index = SECTIONS.index(section)
    while room > 0 and index < len(SECTIONS) and pending is None:
        section = SECTIONS[index]
        taken, inner, pending = _READERS[section](caller, page, room, inner)
        room -= taken
        if inner is None:
            index += 1
    if index < len(SECTIONS):  # (refunds are pending only within the payments sections)
        refunds_of, refunds_inner = pending or ("", None)
        state = {
            "user": caller.user_id,
            "section": SECTIONS[index],
            "inner": inner or "",
            "refunds_of": refunds_of,
            "refunds_inner": refunds_inner or "",
        }
        page.has_more, page.next_cursor = True, cursor_codec.encode(state)
    return page


def _start(caller: Caller, cursor: str | None) -> tuple[Section, str | None, Pending | None]:
    if cursor is None:
        return SECTIONS[0], None, None
    state = cursor_codec.decode(cursor, _CURSOR_FIELDS, user=caller.user_id)
    section = next(s for s in SECTIONS if s == state["section"])
    pending: Pending | None = None
    if state["refunds_of"]:
        # The cursor is the client's to edit: the payment must be the caller's.
        found = payments.get(state["refunds_of"])
        if found is None or caller.user_id not in (found.payment.payer_id, found.payment.payee_id):
            raise InvalidRequestError(
                "cursor is invalid", errors=[{"field": "cursor", "message": "is invalid"}]
            )
        pending = (state["refunds_of"], state["refunds_inner"] or None)
    return section, state["inner"] or None, pending


def _refunds(page: ExportPage, pending: Pending, room: int) -> tuple[int, Pending | None]:
    """Up to `room` refunds of the pending payment; what is still pending after them."""
    payment_id, inner = pending
    if room <= 0:
        return 0, pending
    found, next_cursor = payments.refunds_page(payment_id, room, inner)
    page.refunds.extend(found)
    return len(found), ((payment_id, next_cursor) if next_cursor is not None else None)


# Each reader adds up to `room` items of its section to the page, from `inner` (None: the
# start), and answers how many it added, the section's next cursor (None: it is done), and
# the refunds still pending when the page ended within a payment's refunds.
Read = tuple[int, str | None, Pending | None]
Reader = Callable[[Caller, ExportPage, int, str | None], Read]


def _payment_methods(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = payment_methods.list_payment_methods(caller, room, inner)
    page.payment_methods.extend(found.data)
    return len(found.data), found.next_cursor, None


def _sessions(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = auth.list_sessions(caller, room, inner)
    page.sessions.extend(found.data)
    return len(found.data), found.next_cursor, None


def _payments(role: Literal["payer", "payee"]) -> Reader:
    def read(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
        found, next_cursor = payments.payments_page(caller.user_id, role, room, inner)
        taken = 0
        for position, payment in enumerate(found, start=1):
            taken += 1
            # A payment of the caller to themselves (a top-up) is listed once, as payer's.
            if role == "payee" and payment.payer_id == caller.user_id:
                continue
            page.payments.append(payment)
            if payment.amount_refunded == 0:
                continue
            added, pending = _refunds(page, (payment.id, None), room - taken)
            taken += added
            if pending is not None:  # the page is full within this payment's refunds
                if position < len(found):  # the section goes on right after this payment
                    _, next_cursor = payments.payments_page(caller.user_id, role, position, inner)
                return taken, next_cursor, pending
        return taken, next_cursor, None

    return read


def _payouts(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = payouts.payouts_page(caller.user_id, room, inner)
    page.payouts.extend(found.data)
    return len(found.data), found.next_cursor, None


def _disputes(role: Literal["payer", "payee"]) -> Reader:
    def read(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
        found = disputes.list_disputes(caller, role, room, inner)
        page.disputes.extend(
            d for d in found.data if role == "payer" or d.payer_id != caller.user_id
        )
        return len(found.data), found.next_cursor, None

    return read


def _transactions(caller: Caller, page: ExportPage, room: int, inner: str | None) -> Read:
    found = ledger.list_transactions(caller, ledger.Filters(), room, inner)
    page.transactions.extend(found.data)
    return len(found.data), found.next_cursor, None


_READERS: dict[Section, Reader] = {
    "payment_methods": _payment_methods,
    "sessions": _sessions,
    "payments_as_payer": _payments("payer"),
    "payments_as_payee": _payments("payee"),
    "payouts": _payouts,
    "disputes_as_payer": _disputes("payer"),
    "disputes_as_payee": _disputes("payee"),
    "transactions": _transactions,
}
