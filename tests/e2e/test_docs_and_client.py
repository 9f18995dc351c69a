"""The public docs (GET /docs, GET /v1/openapi.json) and the web client at `/`, over HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def test_the_openapi_document_needs_no_token(stack: Stack) -> None:
    answer = stack.request("GET", "/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/payments" in document["paths"]


def test_the_docs_page_is_public_and_self_contained(stack: Stack) -> None:
    answer = stack.request("GET", "/docs")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'none'" in csp  # the document is inline: the page fetches nothing
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    page = answer.text
    assert len(answer.content) < 6 * 1024 * 1024  # Lambda's response limit
    # No script, style or image from anywhere: every <script> is inline.
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert '"/v1/payments"' in page  # the spec is in the page


def test_the_client_is_served_at_the_root_with_its_csp(stack: Stack) -> None:
    answer = stack.request("GET", "/")
    assert answer.status_code == 200
    assert '<div id="app"></div>' in answer.text
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    script = re.search(r'src="\./(assets/[^"]+\.js)"', answer.text)
    assert script, answer.text
    asset = stack.request("GET", "/" + script.group(1))
    assert asset.status_code == 200
    assert asset.headers["Content-Type"].startswith("text/javascript")
    assert stack.request("GET", "/config.json").json() == {"api": ""}


@pytest.mark.parametrize(
    "path",
    [
        "/assets/..%2f..%2fMakefile",
        "/assets/%2e%2e%2f%2e%2e%2fMakefile",
        "/assets/..%2findex.html",
        "/assets/../../Makefile",
        "/assets/%2fetc%2fpasswd",
        "/assets/nothing.js",
        "/index.html/../Makefile",
    ],
)
def test_nothing_outside_the_client_is_served(stack: Stack, path: str) -> None:
    # requests would normalise "../": send the path as written
    prepared = requests.Request("GET", stack.url + "/").prepare()
    prepared.url = stack.url + path
    answer = stack.http.send(prepared, timeout=10)
    assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])
    assert "MAKEFLAGS" not in answer.text and "root:" not in answer.text
