"""TOTP multi-factor authentication (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of
drift), with pyotp: enrolment with the password, confirmation with a first code (which turns
MFA on and hands out 10 single-use recovery codes, kept only as SHA-256 digests), disabling
with password and code, and the second step of a login (`service.login_mfa`).

The secret is sealed under a KMS data key whose encryption context binds it to the user (as
accounts.cards seals gateway tokens, under a key of its own); it is never logged. A code is
accepted once: the step it was for is recorded with a conditional write that fails for a
step not after the last one, so two concurrent logins with one code cannot both pass. Every
code tried counts toward the email's lockout (cashew.auth.lockout), and 5 wrong codes kill
an `mfa_token`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import NoReturn

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cashew import aws, clock, dynamo
from cashew.accounts import face as accounts
from cashew.accounts import passwords
from cashew.auth import lockout, mfa_store
from cashew.auth.mfa_store import MfaChallenge, TotpFactor
from cashew.errors import (
    ConflictError,
    InvalidCredentialsError,
    InvalidMfaCodeError,
    NotFoundError,
)
from cashew.identity import Caller
from cashew.observability import logger

ISSUER = "Cashew"
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
MFA_TOKEN_PREFIX = "mfa_"  # nosec B105 # a prefix, not a secret
MFA_TOKEN_TTL = 5 * 60
MAX_WRONG_CODES = 5


# -- sealing the secret ----------------------------------------------------------------------


def _key_id() -> str:
    """MfaSecretKey, a KMS key of its own (template.yaml): its policy allows use only under
    the context `{"mfa_user_id": <user id>}`."""
    return os.environ["CASHEW_MFA_KEY_ID"]


def _context(user_id: str) -> dict[str, str]:
    return {"mfa_user_id": user_id}


def _aad(user_id: str) -> bytes:
    return f"{user_id}/totp".encode()


def seal(secret: str, user_id: str) -> tuple[bytes, bytes, bytes]:
    """(ciphertext, nonce, encrypted data key) of the secret, bound to the user."""
    response = aws.kms().generate_data_key(
        KeyId=_key_id(), KeySpec="AES_256", EncryptionContext=_context(user_id)
    )
    nonce = os.urandom(12)
    ciphertext = AESGCM(response["Plaintext"]).encrypt(nonce, secret.encode(), _aad(user_id))
    return ciphertext, nonce, response["CiphertextBlob"]


def unseal(factor: TotpFactor) -> str:
    response = aws.kms().decrypt(
        CiphertextBlob=factor.data_key,
        EncryptionContext=_context(factor.user_id),
        KeyId=_key_id(),
    )
    aad = _aad(factor.user_id)
    return AESGCM(response["Plaintext"]).decrypt(factor.nonce, factor.ciphertext, aad).decode()


# -- codes -------------------------------------------------------------------------------------


def current_step(epoch: int | None = None) -> int:
    return (clock.epoch() if epoch is None else epoch) // STEP_SECONDS


def matching_step(secret: str, code: str, epoch: int | None = None) -> int | None:
    """The step within the drift window whose code `code` is (the latest, if several), or
    None. Every candidate is compared in constant time."""
    now = current_step(epoch)
    totp = pyotp.TOTP(secret)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found


def _recovery_code() -> str:
    raw = secrets.token_hex(8)  # 64 bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:]}"


def recovery_digest(code: str) -> str:
    """What is stored of a recovery code: the SHA-256 of its normalised form (dashes, spaces
    and case ignored). The codes carry 64 random bits, so the digest reveals nothing."""
    normal = "".join(c for c in code.lower() if c not in "- ")
    return hashlib.sha256(f"cashew-recovery:{normal}".encode()).hexdigest()


def token_digest(mfa_token: str) -> str:
    return hashlib.sha256(mfa_token.encode()).hexdigest()


# -- enrolment ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def _check_password(caller: Caller, password: str) -> str:
    """The caller's email once `password` is theirs; counted as a login attempt."""
    profile = accounts.get_profile(caller.user_id)
    if profile is None:
        raise NotFoundError("user not found")
    lockout.attempt(profile.email)
    credentials = accounts.get_credentials(profile.email)
    if credentials is None or not passwords.verify_password(credentials.password_hash, password):
        raise InvalidCredentialsError("the password is incorrect")
    return profile.email


def enrol(caller: Caller, password: str) -> Enrolment:
    """A new secret, pending until confirmed (a pending one is replaced); 409 when MFA is on."""
    email = _check_password(caller, password)
    secret = pyotp.random_base32()  # 160 bits, RFC 4226's recommended length
    ciphertext, nonce, data_key = seal(secret, caller.user_id)
    factor = TotpFactor(
        user_id=caller.user_id,
        ciphertext=ciphertext,
        nonce=nonce,
        data_key=data_key,
        enabled=False,
        created_at=clock.utcnow_str(),
    )
    if not mfa_store.put_pending(factor):
        raise ConflictError("multi-factor authentication is already enabled")
    lockout.succeeded(email)
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    return Enrolment(secret=secret, otpauth_uri=uri)


def _verify_code(email: str | None, factor: TotpFactor, code: str) -> int:
    """The step of `code`, counted toward the lockout of `email` (None: this request was
    counted already, by its password)."""
    if email is not None:
        lockout.attempt(email)
    step = matching_step(unseal(factor), code)
    if step is None or step <= factor.last_step:
        raise InvalidMfaCodeError("the code is incorrect or was already used")
    return step


def confirm(caller: Caller, code: str) -> list[str]:
    """Turn MFA on with a first code of the pending secret; the 10 recovery codes, shown once."""
    profile = accounts.get_profile(caller.user_id)
    factor = mfa_store.get_factor(caller.user_id)
    if profile is None or factor is None or factor.enabled:
        raise ConflictError("no enrolment is pending; start one with POST /v1/users/me/mfa/totp")
    step = _verify_code(profile.email, factor, code)
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    digests = frozenset(recovery_digest(c) for c in codes)
    tx = dynamo.Transaction().add("factor", mfa_store.enable_item(factor, step, digests))
    tx.add("profile", accounts.mfa_flag_item(caller.user_id, True))
    try:
        tx.write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("factor"):
            raise ConflictError("the enrolment changed meanwhile; start again") from exc
        raise
    lockout.succeeded(profile.email)
    logger.info("mfa enabled")
    return codes


def disable(caller: Caller, password: str, code: str) -> None:
    """Turn MFA off with the password and a current code (used up as at login)."""
    email = _check_password(caller, password)
    factor = mfa_store.get_factor(caller.user_id)
    if factor is None or not factor.enabled:
        raise ConflictError("multi-factor authentication is not enabled")
    step = _verify_code(None, factor, code)  # one attempt per request, counted above
    tx = dynamo.Transaction().add("factor", mfa_store.delete_item(caller.user_id, step))
    tx.add("profile", accounts.mfa_flag_item(caller.user_id, False))
    try:
        tx.write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("factor"):  # the code was used meanwhile, or MFA is off already
            raise InvalidMfaCodeError("the code is incorrect or was already used") from exc
        raise
    lockout.succeeded(email)
    logger.info("mfa disabled")


# -- the second step of a login ----------------------------------------------------------------


def enabled(user_id: str) -> bool:
    factor = mfa_store.get_factor(user_id)
    return factor is not None and factor.enabled


def start_challenge(user_id: str, email: str, role: str, password_version: int) -> str:
    """A single-use `mfa_token` for 5 minutes; only its digest is stored."""
    token = MFA_TOKEN_PREFIX + secrets.token_urlsafe(32)
    mfa_store.put_challenge(
        MfaChallenge(
            digest=token_digest(token),
            user_id=user_id,
            email=email,
            role=role,
            password_version=password_version,
            expires_at=clock.epoch() + MFA_TOKEN_TTL,
        )
    )
    return token


def live_challenge(mfa_token: str) -> MfaChallenge | None:
    if not mfa_token.startswith(MFA_TOKEN_PREFIX):
        return None
    challenge = mfa_store.get_challenge(token_digest(mfa_token))
    if challenge is None or challenge.used or challenge.failures >= MAX_WRONG_CODES:
        return None
    return challenge if challenge.expires_at > clock.epoch() else None


def second_factor(
    challenge: MfaChallenge, code: str | None, recovery: str | None
) -> dynamo.Transaction:
    """The transaction items that use up the challenge and the code (or recovery code), to be
    written with the new session; InvalidMfaCodeError (a failure counted) when it is wrong."""
    lockout.attempt(challenge.email)
    factor = mfa_store.get_factor(challenge.user_id)
    tx = dynamo.Transaction().add(
        "challenge",
        mfa_store.use_challenge_item(challenge.digest, MAX_WRONG_CODES, clock.epoch()),
    )
    if factor is not None and factor.enabled:
        if code is not None:
            step = matching_step(unseal(factor), code)
            if step is not None and step > factor.last_step:
                return tx.add("code", mfa_store.step_item(challenge.user_id, step))
        elif recovery is not None:
            digest = recovery_digest(recovery)
            if digest in factor.recovery:
                return tx.add("code", mfa_store.recovery_item(challenge.user_id, digest))
    wrong_code(challenge)


def wrong_code(challenge: MfaChallenge) -> NoReturn:
    """Count a wrong (or replayed) code against the challenge, and refuse it."""
    mfa_store.count_failure(challenge.digest)
    raise InvalidMfaCodeError("the code is incorrect or was already used")
