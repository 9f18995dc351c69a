"""The docs page renders in a real browser, from the page alone, under its own CSP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser.conftest import Client


def test_the_docs_page_renders_every_operation(
    client: Client, page: Any, shot: Callable[..., Path]
) -> None:
    requests_seen: list[str] = []
    page.on("request", lambda request: requests_seen.append(request.url))
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(client.url + "/docs")
    page.get_by_role("heading", name="POST /v1/payments").first.wait_for()
    page.get_by_text("Request samples").first.wait_for()
    shot(page, "docs", full_page=False)  # the whole reference is ~50,000 px tall
    assert not violations, violations
    foreign = [url for url in requests_seen if not url.startswith((client.url, "data:", "blob:"))]
    assert not foreign, f"the docs page reached out: {foreign}"
