"""Attacks on receipts (review of issue 12): an access-token key must not be able to sign a
receipt that the documented offline verifier accepts. Both key sets are published in one
JWKS, so a verifier can only tell a receipt key from a token key by what the JWKS says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from cashew import aws
from cashew.auth import keys, receipts
from cashew.config import get_settings
from cashew.identity import Caller
from cashew.ledger import chain, store
from cashew.ledger.models import Entry

REPO = Path(__file__).resolve().parents[2]
ALICE = Caller("usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6", "ses_01JCQ3F7A2B4C6D8E0F2G4H6J8", "user")


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    values = {
        settings.jwt_secret_id: {"current": "token-seed-" + "t" * 40, "previous": ""},
        settings.receipt_secret_id: {"current": "receipt-seed-" + "r" * 40, "previous": ""},
    }
    monkeypatch.setattr(aws, "secret_json", lambda secret_id, max_age: dict(values[secret_id]))


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Entry:
    fields = {
        "id": "txn_01JCQ3J2K4M6N8P0Q2R4S6T8A1",
        "outcome_id": "out_A1",
        "payment_id": "pay_1",
        "user_id": ALICE.user_id,
        "type": "top_up",
        "direction": "credit",
        "funds": "balance",
        "amount": 1250,
        "currency": "USD",
        "status": "succeeded",
        "failure_code": None,
        "occurred_at": "2025-01-01T10:00:00.000Z",
        "seq": 1,
        "prev_hash": chain.GENESIS,
    }
    one = Entry(**fields, hash=chain.entry_hash(fields))
    monkeypatch.setattr(store, "get_entry", {one.id: one}.get)
    monkeypatch.setattr(store, "head", lambda user_id: one)
    return one


def _readme_verifier() -> str:
    section = (REPO / "README.md").read_text().split("## Verifying a receipt", 1)[1]
    found = re.search(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert found, "the README's receipt section has no python block"
    return found.group(1)


def _run_verifier(tmp_path: Path, jwks: object, reply: object) -> subprocess.CompletedProcess[str]:
    (tmp_path / "verify_receipt.py").write_text(_readme_verifier())
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "receipt.json").write_text(json.dumps(reply))
    return subprocess.run(
        [sys.executable, "verify_receipt.py", "jwks.json", "receipt.json"], cwd=tmp_path,
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_receipt_signed_with_an_access_token_key_is_refused_by_the_readmes_verifier(
    secrets, entry, tmp_path
):
    # Given a real receipt (the control: the README's verifier accepts it)
    issued = receipts.issue_receipt(ALICE, entry.id)
    reply = {"receipt": issued.receipt, "entry": issued.entry.model_dump(mode="json")}
    jwks = keys.published_jwks()
    assert _run_verifier(tmp_path, jwks, reply).returncode == 0
    # When someone holding an access-token key (every login, refresh and authorizer function
    # has it) signs a receipt of an entry altered to suit them, typed as a receipt
    altered = {**reply["entry"], "amount": 1_250_000}
    altered["hash"] = chain.entry_hash(altered)
    claims = jwt.decode(issued.receipt, options={"verify_signature": False})
    access = keys.key_set().current
    forged = jwt.encode(
        {**claims, "amount": 1_250_000, "hash": altered["hash"]}, access.private,
        algorithm="EdDSA", headers={"kid": access.kid, "typ": receipts.RECEIPT_TYPE},
    )  # fmt: skip
    # Then the published JWKS and the documented verifier do not take it for a receipt
    run = _run_verifier(tmp_path, jwks, {"receipt": forged, "entry": altered})
    assert run.returncode != 0, run.stdout
    assert "valid:" not in run.stdout


def test_the_jwks_tells_receipt_keys_from_access_token_keys(secrets):
    # Given the published JWKS
    published = keys.published_jwks()["keys"]
    token_kids = set(keys.key_set().all)
    receipt_kids = set(keys.receipt_key_set().all)
    # Then every receipt key, and no access-token key, has a receipt kid
    assert {k["kid"] for k in published} == token_kids | receipt_kids
    assert all(kid.startswith(keys.RECEIPT_KID_PREFIX) for kid in receipt_kids)
    assert not any(kid.startswith(keys.RECEIPT_KID_PREFIX) for kid in token_kids)
