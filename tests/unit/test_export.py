"""The export's paging over sections, with in-memory sections: every item once, in section
order, at most a page of them a page, and a cursor that only its owner can use."""

from __future__ import annotations

import pytest

from cashew import export
from cashew.accounts.models import UserResponse
from cashew.auth.models import SessionResponse
from cashew.errors import InvalidRequestError
from cashew.identity import Caller

ALICE = Caller(user_id="usr_01JZ0000000000000000000000", session_id="ses_1", role="user")
BOB = Caller(user_id="usr_01JZ0000000000000000000001", session_id="ses_2", role="user")


@pytest.fixture
def sections(monkeypatch):
    """Each section a list of items (sizes by section); the readers page through them as the
    real ones do, with their own cursors (the offset)."""
    sizes = dict.fromkeys(export.SECTIONS, 0)
    calls: list[tuple[str, int, str | None]] = []

    def reader(section: str):
        def read(caller, page, room, inner):
            calls.append((section, room, inner))
            start = int(inner.removeprefix("o")) if inner else 0
            taken = list(range(start, min(start + room, sizes[section])))
            page.sessions.extend(
                SessionResponse.model_construct(id=f"{section}:{i}") for i in taken
            )
            end = start + len(taken)
            return len(taken), (f"o{end}" if end < sizes[section] else None), None

        return read

    monkeypatch.setattr(export, "_READERS", {s: reader(s) for s in export.SECTIONS})
    monkeypatch.setattr(
        export.accounts, "get_me", lambda caller: UserResponse.model_construct(id=caller.user_id)
    )
    return sizes, calls


def _all_pages(caller: Caller, page_items: int) -> list[export.ExportPage]:
    pages, cursor = [], None
    while True:
        page = export.export(caller, cursor, page_items=page_items)
        pages.append(page)
        if page.next_cursor is None:
            assert page.has_more is False
            return pages
        assert page.has_more is True
        cursor = page.next_cursor


def test_every_item_comes_once_in_section_order_a_page_at_a_time(sections):
    # Given sections of 5, 0, 7, 1, 3 (the payouts), 0, 2 and 4 items
    sizes, _ = sections
    sizes.update(zip(export.SECTIONS, (5, 0, 7, 1, 3, 0, 2, 4), strict=True))
    expected = [f"{s}:{i}" for s in export.SECTIONS for i in range(sizes[s])]
    # When the caller exports 3 items a page
    pages = _all_pages(ALICE, 3)
    # Then the pages hold every item once, in order, 3 a page but the last
    got = [s.id for page in pages for s in page.sessions]
    assert got == expected
    assert [len(p.sessions) for p in pages] == [3, 3, 3, 3, 3, 3, 3, 1]
    assert all(p.user.id == ALICE.user_id for p in pages)


def test_a_page_that_ends_with_a_section_starts_the_next_one_and_an_empty_export_is_one_page(
    sections,
):
    sizes, calls = sections
    # Given nothing at all: one page, and every section asked once
    [page] = _all_pages(ALICE, 100)
    assert page.sessions == [] and page.next_cursor is None
    assert [c[0] for c in calls] == list(export.SECTIONS)
    # Given exactly a page of payment methods and one session
    calls.clear()
    sizes.update(payment_methods=3, sessions=1)
    first, second = _all_pages(ALICE, 3)
    # Then the first page is the methods, the second starts at the sessions' first page
    assert [s.id for s in first.sessions] == [f"payment_methods:{i}" for i in range(3)]
    assert [s.id for s in second.sessions] == ["sessions:0"]
    assert ("sessions", 3, None) in calls


def test_a_cursor_is_the_owners_only_and_a_forged_one_is_a_422(sections):
    # Given a cursor of Alice's export
    sizes, _ = sections
    sizes["transactions"] = 10
    cursor = export.export(ALICE, None, page_items=2).next_cursor
    assert cursor is not None
    # When Bob, or anyone with an edited cursor, presents it: a 422, never her data
    forged = export.cursor_codec.encode({"user": ALICE.user_id, "section": "secrets", "inner": ""})
    for who, bad in ((BOB, cursor), (ALICE, forged), (ALICE, "not base64!"), (ALICE, "e30")):
        with pytest.raises(InvalidRequestError):
            export.export(who, bad, page_items=2)
