"""The MFA items of the sessions table (next to the sessions and login attempts).

Items (pk only), each kind a record class below with its `to_item` / `from_item`:
    pk = MFA#<user id>      the user's TOTP factor (`TotpFactor`): the secret sealed under a
                            KMS data key bound to the user (never in clear), enabled (false
                            while enrolment is pending), last_step (the last 30 s step a code
                            was accepted for: written conditionally, so a code passes once),
                            recovery (a string set of SHA-256 digests of the unused recovery
                            codes; each removed conditionally when used), created_at.
    pk = MFA_TOKEN#<sha256> a login waiting for its second factor (`MfaChallenge`): user_id,
                            email, role, password_version, failures (wrong codes so far),
                            used, expires_at (TTL). Only the token's digest is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from cashew import dynamo
from cashew.config import get_settings


def _table() -> str:
    return get_settings().sessions_table


def _factor_key(user_id: str) -> dict[str, str]:
    return {"pk": f"MFA#{user_id}"}


def _challenge_key(digest: str) -> dict[str, str]:
    return {"pk": f"MFA_TOKEN#{digest}"}


@dataclass(frozen=True, slots=True)
class TotpFactor:
    user_id: str
    ciphertext: bytes
    nonce: bytes
    data_key: bytes  # the KMS-encrypted data key
    enabled: bool
    created_at: str
    last_step: int = -1
    recovery: frozenset[str] = field(default_factory=frozenset)

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_factor_key(self.user_id),
            "ciphertext": self.ciphertext,
            "nonce": self.nonce,
            "data_key": self.data_key,
            "enabled": self.enabled,
            "created_at": self.created_at,
            "last_step": self.last_step,
        }
        if self.recovery:  # DynamoDB has no empty sets
            item["recovery"] = set(self.recovery)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            user_id=str(item["pk"]).removeprefix("MFA#"),
            ciphertext=bytes(item["ciphertext"]),
            nonce=bytes(item["nonce"]),
            data_key=bytes(item["data_key"]),
            enabled=bool(item["enabled"]),
            created_at=str(item["created_at"]),
            last_step=int(item.get("last_step", -1)),
            recovery=frozenset(str(h) for h in item.get("recovery", ())),
        )


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    digest: str
    user_id: str
    email: str
    role: str
    password_version: int
    expires_at: int
    failures: int = 0
    used: bool = False

    def to_item(self) -> dict[str, Any]:
        return {
            **_challenge_key(self.digest),
            "user_id": self.user_id,
            "email": self.email,
            "role": self.role,
            "password_version": self.password_version,
            "expires_at": self.expires_at,
            "failures": self.failures,
            "used": self.used,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            digest=str(item["pk"]).removeprefix("MFA_TOKEN#"),
            user_id=str(item["user_id"]),
            email=str(item["email"]),
            role=str(item["role"]),
            password_version=int(item["password_version"]),
            expires_at=int(item["expires_at"]),
            failures=int(item.get("failures", 0)),
            used=bool(item.get("used", False)),
        )


# -- the factor ------------------------------------------------------------------------------


def get_factor(user_id: str) -> TotpFactor | None:
    item = dynamo.get_item(_table(), _factor_key(user_id))
    return TotpFactor.from_item(item) if item is not None else None


def put_pending(factor: TotpFactor) -> bool:
    """Start (or restart) an enrolment; False if a confirmed factor is there (it is kept)."""
    try:
        dynamo.update_item(
            _table(),
            _factor_key(factor.user_id),
            "SET ciphertext = :ciphertext, nonce = :nonce, data_key = :data_key, "
            "enabled = :false, created_at = :created_at, last_step = :last_step "
            "REMOVE recovery",
            {
                ":ciphertext": factor.ciphertext,
                ":nonce": factor.nonce,
                ":data_key": factor.data_key,
                ":false": False,
                ":created_at": factor.created_at,
                ":last_step": factor.last_step,
            },
            condition="attribute_not_exists(pk) OR enabled = :false",
        )
    except dynamo.ConditionFailed:
        return False
    return True


def enable_item(factor: TotpFactor, step: int, recovery: frozenset[str]) -> dynamo.Write:
    """The transaction item confirming the pending enrolment `factor` was read as (the same
    sealed secret: a concurrent re-enrolment fails it), with the step of its first code."""
    return dynamo.update(
        _table(),
        _factor_key(factor.user_id),
        "SET enabled = :true, last_step = :step, recovery = :recovery",
        condition="enabled = :false AND data_key = :data_key",
        values={
            ":true": True,
            ":false": False,
            ":step": step,
            ":recovery": set(recovery),
            ":data_key": factor.data_key,
        },
    )


def step_item(user_id: str, step: int) -> dynamo.Write:
    """The transaction item that records `step` as used, failing unless the factor is enabled
    and every earlier accepted code was for an earlier step (a code passes once)."""
    return dynamo.update(
        _table(),
        _factor_key(user_id),
        "SET last_step = :step",
        condition="enabled = :true AND last_step < :step",
        values={":step": step, ":true": True},
    )


def recovery_item(user_id: str, digest: str) -> dynamo.Write:
    """The transaction item that uses up the recovery code of this digest (once)."""
    return dynamo.update(
        _table(),
        _factor_key(user_id),
        "DELETE recovery :digests",
        condition="enabled = :true AND contains(recovery, :digest)",
        values={":digests": {digest}, ":digest": digest, ":true": True},
    )


def delete_item(user_id: str, step: int) -> dynamo.Write:
    """The transaction item that removes the user's factor with a code of `step`: it fails
    unless the factor is enabled and that code was not used (as `step_item`)."""
    return dynamo.delete(
        _table(),
        _factor_key(user_id),
        condition="enabled = :true AND last_step < :step",
        values={":step": step, ":true": True},
    )


# -- challenges ------------------------------------------------------------------------------


def put_challenge(challenge: MfaChallenge) -> None:
    dynamo.put_item(_table(), challenge.to_item(), condition="attribute_not_exists(pk)")


def get_challenge(digest: str) -> MfaChallenge | None:
    item = dynamo.get_item(_table(), _challenge_key(digest))
    return MfaChallenge.from_item(item) if item is not None else None


def count_failure(digest: str) -> int:
    """One more wrong code for the challenge; how many there are now (0: it is gone)."""
    try:
        item = dynamo.update_item(
            _table(),
            _challenge_key(digest),
            "ADD failures :one",
            {":one": 1},
            condition="attribute_exists(pk)",
            return_new=True,
        )
    except dynamo.ConditionFailed:
        return 0
    return MfaChallenge.from_item(item).failures if item else 0


def use_challenge_item(digest: str, max_failures: int, now: int) -> dynamo.Write:
    """The transaction item that uses the challenge up: only once, only while it is live."""
    return dynamo.update(
        _table(),
        _challenge_key(digest),
        "SET used = :true",
        condition="used = :false AND failures < :max AND expires_at > :now",
        values={":true": True, ":false": False, ":max": max_failures, ":now": now},
    )
