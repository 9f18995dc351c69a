"""Receipts over HTTP against the local stack (API.md "Receipts", property 49): a receipt
verifies with nothing but the JWKS fetched over HTTP, its hash is the entry's as the chain
computes it, the authorizer refuses it as a Bearer token, and the README's verifier works."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from cashew.ledger import chain
from tests.e2e.conftest import REPO, add_card, top_up, wait_for_entries


@pytest.fixture
def paid(stack, new_user):
    """Alice topped up and paid Bob; her payment entry, once the log has it."""
    alice, bob = new_user("Alice"), new_user("Bob")
    top_up(stack, alice, add_card(stack, alice), 5_000)
    paid = stack.request("POST", "/v1/payments", alice.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 1_250, "currency": "USD", "payee_id": bob.id,
              "source": {"type": "balance"}})  # fmt: skip
    assert paid.status_code == 201, paid.text
    [entry] = wait_for_entries(stack, alice.token, type="payment")
    return alice, bob, entry


def _canonical_hash(entry: dict[str, Any]) -> str:
    """The entry's hash recomputed independently: SHA-256 of its canonical JSON without hash."""
    body = {name: value for name, value in entry.items() if name != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_a_receipt_verifies_with_nothing_but_the_jwks_fetched_over_http(stack, paid):
    # Given Alice's payment in her log
    alice, _, entry = paid
    # When she asks for its receipt, and a stranger fetches the JWKS (no token)
    reply = stack.request("GET", f"/v1/transactions/{entry['id']}/receipt", alice.token)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    jwks_reply = stack.request("GET", "/.well-known/jwks.json")
    assert jwks_reply.status_code == 200
    # Then PyJWT verifies the receipt with that JWKS alone, EdDSA, typed as a receipt
    header = jwt.get_unverified_header(body["receipt"])
    assert header["typ"] == "cashew-receipt+jwt" and header["alg"] == "EdDSA"
    key = jwt.PyJWKSet.from_dict(jwks_reply.json())[header["kid"]]
    claims = jwt.decode(body["receipt"], key, algorithms=["EdDSA"])
    # ... the entry is the one the log lists, and the receipt names it
    assert body["entry"] == entry
    assert (claims["entry_id"], claims["payment_id"], claims["amount"], claims["direction"]) == (
        entry["id"], entry["payment_id"], 1_250, "debit",
    )  # fmt: skip
    assert claims["chain_head"]["seq"] >= entry["seq"] == claims["seq"]
    # ... and its hash, recomputed from the entry as the chain does, is the signed hash
    assert _canonical_hash(body["entry"]) == chain.entry_hash(body["entry"]) == claims["hash"]
    # ... which any change to the entry breaks
    assert _canonical_hash({**body["entry"], "amount": 1}) != claims["hash"]


def test_a_receipt_presented_as_an_access_token_is_401(stack, paid):
    # Given a real receipt, and the control: Alice's access token is accepted
    alice, _, entry = paid
    receipt = stack.request("GET", f"/v1/transactions/{entry['id']}/receipt", alice.token).json()[
        "receipt"
    ]
    assert stack.request("GET", "/v1/users/me", alice.token).status_code == 200
    # Then its kid is no access-token key: the JWKS has it, but no access token carries it
    kid = jwt.get_unverified_header(receipt)["kid"]
    assert kid != jwt.get_unverified_header(alice.token)["kid"]
    assert kid in {k["kid"] for k in stack.request("GET", "/.well-known/jwks.json").json()["keys"]}
    # When it is presented as the Bearer token, Then the authorizer refuses it
    for path in ("/v1/users/me", "/v1/transactions", f"/v1/transactions/{entry['id']}/receipt"):
        refused = stack.request("GET", path, receipt)
        assert refused.status_code == 401, (path, refused.text)


def test_another_users_entry_and_an_unknown_id_are_404(stack, paid, new_user):
    alice, bob, entry = paid
    stranger = new_user()
    for token, entry_id in (
        (bob.token, entry["id"]),
        (stranger.token, entry["id"]),
        (alice.token, "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1"),
    ):
        for path in (f"/v1/transactions/{entry_id}/receipt", f"/v1/transactions/{entry_id}"):
            reply = stack.request("GET", path, token)
            assert reply.status_code == 404, (path, reply.text)
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            assert reply.json()["code"] == "not_found"


def _readme_blocks() -> tuple[str, str]:
    section = (REPO / "README.md").read_text().split("## Verifying a receipt", 1)[1]
    section = section.split("\n## ", 1)[0]
    bash = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert bash and python, "the README's receipt section has no bash or python block"
    return bash.group(1), python.group(1)


def test_the_readmes_verifier_works_and_refuses_an_altered_entry(stack, paid, tmp_path: Path):
    # Given the README's commands and verifier, with the walkthrough's variables set
    alice, _, entry = paid
    commands, verifier = _readme_blocks()
    (tmp_path / "verify_receipt.py").write_text(verifier)
    env = {
        **os.environ,
        "API": stack.url,
        "ALICE": alice.token,
        "TXN": entry["id"],
        # python3 is one with PyJWT, as `pip install "pyjwt[crypto]"` gives
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    # When they run in bash
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env,
        check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    # Then the receipt is valid
    assert run.returncode == 0, run.stderr + run.stdout
    assert run.stdout.strip() == f"valid: {entry['id']} 1250 USD succeeded"

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "verify_receipt.py", "jwks.json", "receipt.json"], cwd=tmp_path,
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    # When the entry beside it is altered, Then the verifier refuses it
    saved = json.loads((tmp_path / "receipt.json").read_text())
    altered = {**saved, "entry": {**saved["entry"], "amount": 125_000}}
    (tmp_path / "receipt.json").write_text(json.dumps(altered))
    refused = verify()
    assert refused.returncode != 0
    assert "the entry is not the one the receipt signs" in refused.stderr
    # ... and so is a receipt whose payload is edited, its signature kept
    head, payload, signature = saved["receipt"].split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "amount": 125_000}).encode())
    edited = {**altered, "receipt": f"{head}.{forged.decode()}.{signature}"}
    (tmp_path / "receipt.json").write_text(json.dumps(edited))
    refused = verify()
    assert refused.returncode != 0 and "InvalidSignatureError" in refused.stderr
