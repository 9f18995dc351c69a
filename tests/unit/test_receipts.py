"""Receipts (API.md "Receipts", property 49): an entry signed with a key of its own, checked
offline with the JWKS alone, and never an access token. Secrets and the log are in memory."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from cashew import aws
from cashew.auth import keys, receipts
from cashew.auth.keys import key_from_seed
from cashew.auth.tokens import issue_access_token, verify_access_token
from cashew.config import get_settings
from cashew.errors import NotFoundError, UnauthenticatedError
from cashew.identity import Caller
from cashew.ledger import chain, store
from cashew.ledger.models import Entry

TOKEN_SEED = "token-seed-" + "t" * 40
RECEIPT_SEED = "receipt-seed-" + "r" * 40
RECEIPT_SEED_OLD = "receipt-old-" + "o" * 40
ALICE = Caller("usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6", "ses_01JCQ3F7A2B4C6D8E0F2G4H6J8", "user")
BOB = Caller("usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9", "ses_01JCQ3H2A2B4C6D8E0F2G4H6J8", "user")
ADMIN = Caller("usr_01JCQ3K1J3K5M7N9P1Q3R5S7T9", "ses_01JCQ3K2A2B4C6D8E0F2G4H6J8", "admin")
PAYLOAD = {
    "iss", "iat", "entry_id", "user_id", "payment_id", "type", "direction", "amount",
    "currency", "status", "occurred_at", "seq", "prev_hash", "hash", "chain_head",
}  # fmt: skip


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """Given the two secrets in memory, by id (mutate them to rotate); any other id fails."""
    settings = get_settings()
    values = {
        settings.jwt_secret_id: {"current": TOKEN_SEED, "previous": ""},
        settings.receipt_secret_id: {"current": RECEIPT_SEED, "previous": ""},
    }

    def secret_json(secret_id: str, max_age: int) -> dict[str, str]:
        return dict(values[secret_id])

    monkeypatch.setattr(aws, "secret_json", secret_json)
    return values


def _chain(user_id: str, count: int, mark: str) -> list[Entry]:
    """A user's chain as the log appends it: each hash over the entry, linked to the last."""
    entries, prev = [], chain.GENESIS
    for seq in range(1, count + 1):
        fields = {
            "id": f"txn_01JCQ3J2K4M6N8P0Q2R4S6T8{mark}{seq}",
            "outcome_id": f"out_{mark}{seq}",
            "payment_id": f"pay_{seq}",
            "user_id": user_id,
            "type": "payment",
            "direction": "debit",
            "funds": "balance",
            "amount": 2500 * seq,
            "currency": "USD",
            "status": "succeeded",
            "failure_code": None,
            "occurred_at": f"2025-01-0{seq}T10:00:00.000Z",
            "seq": seq,
            "prev_hash": prev,
        }
        entries.append(Entry(**fields, hash=chain.entry_hash(fields)))
        prev = entries[-1].hash
    return entries


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> dict[str, Entry]:
    """Given Alice's chain of three entries and Bob's of one, in an in-memory log."""
    by_id = {e.id: e for e in _chain(ALICE.user_id, 3, "A") + _chain(BOB.user_id, 1, "B")}

    def head(user_id: str) -> Entry | None:
        return max((e for e in by_id.values() if e.user_id == user_id), key=lambda e: e.seq)

    monkeypatch.setattr(store, "get_entry", by_id.get)
    monkeypatch.setattr(store, "head", head)
    return by_id


def _entry(log: dict[str, Entry], user: Caller, seq: int) -> Entry:
    return next(e for e in log.values() if e.user_id == user.user_id and e.seq == seq)


def _verify_offline(receipt: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a verifier with nothing but the JWKS does: the key by kid, EdDSA only."""
    header = jwt.get_unverified_header(receipt)
    assert header["typ"] == "cashew-receipt+jwt"
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims: dict[str, Any] = jwt.decode(receipt, key, algorithms=["EdDSA"])
    return claims


def test_a_receipt_verifies_with_the_jwks_alone_and_its_hash_is_the_entrys(secrets, log):
    # Given Alice's second entry (her chain is three long)
    entry = _entry(log, ALICE, 2)
    # When she asks for its receipt
    issued = receipts.issue_receipt(ALICE, entry.id)
    # Then it verifies with the published JWKS alone, names the entry as the log holds it,
    # and the head of her chain
    claims = _verify_offline(issued.receipt, keys.published_jwks())
    assert set(claims) == PAYLOAD
    assert issued.entry == entry
    assert claims["iss"] == get_settings().issuer
    assert (claims["entry_id"], claims["user_id"], claims["payment_id"]) == (
        entry.id, entry.user_id, entry.payment_id,
    )  # fmt: skip
    for name in ("type", "direction", "amount", "currency", "status", "occurred_at", "seq",
                 "prev_hash", "hash"):  # fmt: skip
        assert claims[name] == getattr(entry, name), name
    assert claims["chain_head"] == {"seq": 3, "hash": _entry(log, ALICE, 3).hash}
    # ... and recomputing the hash from the entry returned gives the signed hash
    fields = issued.entry.model_dump(mode="json")
    assert chain.entry_hash(fields) == claims["hash"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", 1), ("status", "failed"), ("direction", "credit"), ("funds", "card"),
     ("outcome_id", "out_other"), ("failure_code", "card_declined"), ("prev_hash", "f" * 64)],
)  # fmt: skip
def test_any_change_to_the_entry_breaks_the_receipt(secrets, log, field, value):
    # Given a receipt of an entry
    entry = _entry(log, ALICE, 1)
    issued = receipts.issue_receipt(ALICE, entry.id)
    claims = _verify_offline(issued.receipt, keys.published_jwks())
    # When any field of the entry is changed
    changed = {**issued.entry.model_dump(mode="json"), field: value}
    # Then its hash is no longer the one the receipt signs
    assert chain.entry_hash(changed) != claims["hash"]


def test_a_receipt_whose_payload_is_edited_does_not_verify(secrets, log):
    # Given a receipt, and its payload edited to another amount, the signature kept
    issued = receipts.issue_receipt(ALICE, _entry(log, ALICE, 1).id)
    head, _, signature = issued.receipt.split(".")
    claims = jwt.decode(issued.receipt, options={"verify_signature": False})
    forged = jwt.encode({**claims, "amount": 1}, "x" * 32, algorithm="HS256").split(".")[1]
    # Then the JWKS refuses it
    with pytest.raises(jwt.InvalidSignatureError):
        _verify_offline(f"{head}.{forged}.{signature}", keys.published_jwks())


@pytest.mark.parametrize("who", ["another user's entry", "an unknown id", "an admin, Bob's"])
def test_a_receipt_is_only_of_the_callers_own_entry(secrets, log, who):
    bob_entry = _entry(log, BOB, 1).id
    caller, entry_id = {
        "another user's entry": (ALICE, bob_entry),
        "an unknown id": (ALICE, "txn_01JCQ3J2K4M6N8P0Q2R4S6T8Z9"),
        "an admin, Bob's": (ADMIN, bob_entry),
    }[who]
    with pytest.raises(NotFoundError):
        receipts.issue_receipt(caller, entry_id)


def test_receipts_are_signed_with_the_receipt_key_not_the_access_token_key(secrets, log):
    # When a receipt and an access token are signed
    receipt = receipts.issue_receipt(ALICE, _entry(log, ALICE, 1).id).receipt
    token, _ = issue_access_token(ALICE.user_id, ALICE.session_id, "user")
    # Then each is signed with a key of its own secret, and the JWKS publishes both
    receipt_kid = jwt.get_unverified_header(receipt)["kid"]
    assert receipt_kid == key_from_seed(RECEIPT_SEED, keys.RECEIPT_KID_PREFIX).kid
    assert receipt_kid not in keys.key_set().all
    assert jwt.get_unverified_header(token)["kid"] == key_from_seed(TOKEN_SEED).kid
    published = {k["kid"] for k in keys.published_jwks()["keys"]}
    assert published == {key_from_seed(TOKEN_SEED).kid, receipt_kid}


def test_the_access_token_check_refuses_a_receipt(secrets, log):
    # Given a real receipt
    receipt = receipts.issue_receipt(ALICE, _entry(log, ALICE, 1).id).receipt
    # Then it is no access token
    with pytest.raises(UnauthenticatedError):
        verify_access_token(receipt)


def test_a_receipt_typed_token_is_refused_even_when_signed_with_an_access_key(secrets):
    # Given a token with every access claim, signed with the current access key, but typed
    # as a receipt: the typ alone refuses it
    token, _ = issue_access_token(ALICE.user_id, ALICE.session_id, "user")
    claims = jwt.decode(token, options={"verify_signature": False})
    access = keys.key_set().current
    typed = jwt.encode(claims, access.private, algorithm="EdDSA",
        headers={"kid": access.kid, "typ": receipts.RECEIPT_TYPE})  # fmt: skip
    assert verify_access_token(token).user_id == ALICE.user_id  # the control
    with pytest.raises(UnauthenticatedError, match="unsupported token"):
        verify_access_token(typed)


def test_an_access_typed_token_signed_with_the_receipt_key_is_refused(secrets):
    # Given a token with every access claim and typ at+jwt, signed with the receipt key: the
    # kid alone refuses it (a receipt key is no access-token key)
    token, _ = issue_access_token(ALICE.user_id, ALICE.session_id, "user")
    claims = jwt.decode(token, options={"verify_signature": False})
    receipt_key = keys.receipt_key_set().current
    signed = jwt.encode(claims, receipt_key.private, algorithm="EdDSA",
        headers={"kid": receipt_key.kid, "typ": "at+jwt"})  # fmt: skip
    with pytest.raises(UnauthenticatedError, match="unknown signing key"):
        verify_access_token(signed)


def test_a_receipt_of_the_previous_receipt_key_verifies_until_that_key_is_dropped(secrets, log):
    # Given a receipt signed before the receipt key rotated
    receipt_secret = secrets[get_settings().receipt_secret_id]
    receipt_secret.update(current=RECEIPT_SEED_OLD, previous="")
    old = receipts.issue_receipt(ALICE, _entry(log, ALICE, 1).id).receipt
    # When it rotates (the old seed kept as previous)
    receipt_secret.update(current=RECEIPT_SEED, previous=RECEIPT_SEED_OLD)
    # Then the old receipt still verifies with the JWKS, and new ones use the new key
    assert _verify_offline(old, keys.published_jwks())["seq"] == 1
    new = receipts.issue_receipt(ALICE, _entry(log, ALICE, 1).id).receipt
    assert (
        jwt.get_unverified_header(new)["kid"]
        == key_from_seed(RECEIPT_SEED, keys.RECEIPT_KID_PREFIX).kid
    )
    # ... and the token keys are untouched by it
    assert set(keys.key_set().all) == {key_from_seed(TOKEN_SEED).kid}
    # When the previous seed is dropped, the old receipt no longer verifies with the JWKS
    receipt_secret.update(previous="")
    with pytest.raises(KeyError):
        _verify_offline(old, keys.published_jwks())
    assert _verify_offline(new, keys.published_jwks())["seq"] == 1


@pytest.mark.parametrize("seed", ["", "x" * 31])
def test_a_receipt_seed_shorter_than_32_characters_is_refused(secrets, seed):
    secrets[get_settings().receipt_secret_id]["current"] = seed
    with pytest.raises(RuntimeError, match="the receipt secret"):
        keys.receipt_key_set()
    assert keys.key_set().current.kid == key_from_seed(TOKEN_SEED).kid
