"""The accounts table: credentials, profiles, balances, payment methods and attempt histories.

Items (pk / sk), each kind a record class below with its `to_item` / `from_item`:
    EMAIL#<email> / CREDENTIALS      user_id, password_hash, role, password_version (absent
                                     until the first change of password)     `Credentials`
    USER#<id>     / PROFILE          id, email, name, phone, role, settings, created_at,
                                     updated_at (set by the first update), mfa_enabled and
                                     email_verified (absent: false)          `Profile`;
                                     password_version: a copy of the credentials' one, set
                                     with it by every change of password (absent until the
                                     first), so the authorizer can read it by user id
    USER#<id>     / BALANCE#<CUR>    currency, available (minor units; never below 0)
                                                                             `StoredBalance`
    USER#<id>     / BALANCE#<CUR>#<nn>
                                     a credit shard of that balance (same attributes): a hot
                                     payee's payments credit one of N by payment id, so no
                                     item takes them all; the balance is the sum of its items
                                     (one Query: they sort together), and a debit that needs
                                     their money first moves it into the main item,
                                     a transaction a shard (`gather_items`)     `StoredBalance`
    USER#<id>     / PM#<pm id>       card metadata, the envelope-encrypted gateway token,
                                     status, last_used_at                    `PaymentMethod`
    USER#<id>     / PM_DEFAULT       method_id: the user's default payment method (one item,
                                     so only one is)                          `DefaultMethod`
    USER#<id>     / VELOCITY         buckets, version (see accounts.velocity)  `PayerAttempts`;
                                     items written before the buckets have `attempts` instead
    GATEWAY_TOKEN#<sha256 of the gateway token> / GATEWAY_TOKEN
                                     owner, method_id, created_at: the token is attached (put
                                     with the method, conditionally: a token attaches once)
                                     and which method it charges (for card updates)
                                                                             `AttachedToken`
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from cashew import aws, clock, dynamo
from cashew.accounts import minute_buckets
from cashew.accounts.minute_buckets import MinuteBucket, Tally
from cashew.config import MAX_HOT_PAYEE_SHARDS, get_settings
from cashew.errors import ConflictError, EmailTakenError


def _user(user_id: str) -> str:
    return f"USER#{user_id}"


def _user_of(item: Mapping[str, Any]) -> str:
    return str(item["pk"]).removeprefix("USER#")


@dataclass(frozen=True, slots=True)
class Credentials:
    """EMAIL#<email> / CREDENTIALS: what a login is checked against."""

    email: str
    user_id: str
    password_hash: str
    role: str
    password_version: int = 0  # bumped by every change of password (not by a rehash)

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": f"EMAIL#{self.email}",
            "sk": "CREDENTIALS",
            "user_id": self.user_id,
            "password_hash": self.password_hash,
            "role": self.role,
        }
        if self.password_version:  # registration writes none; the first change ADDs it
            item["password_version"] = self.password_version
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            email=str(item["pk"]).removeprefix("EMAIL#"),
            user_id=item["user_id"],
            password_hash=item["password_hash"],
            role=item["role"],
            password_version=int(item.get("password_version", 0)),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """A profile's settings (their defaults are those of an account that never set them)."""

    default_currency: str = "USD"
    notify_email: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    """USER#<id> / PROFILE: the user as GET /v1/users/me shows it."""

    id: str
    email: str
    name: str
    phone: str | None
    role: str
    settings: Settings
    created_at: str
    updated_at: str | None = None  # set by the first profile update
    mfa_enabled: bool = False  # written by auth's MFA confirm and disable (`mfa_flag_item`)
    # Written by auth's email verification (`email_verified_item`); absent on profiles stored
    # before verification existed, which read as not verified.
    email_verified: bool = False

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": _user(self.id),
            "sk": "PROFILE",
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "phone": self.phone,
            "role": self.role,
            "settings": {
                "default_currency": self.settings.default_currency,
                "notify_email": self.settings.notify_email,
            },
            "created_at": self.created_at,
        }
        if self.updated_at is not None:
            item["updated_at"] = self.updated_at
        if self.mfa_enabled:
            item["mfa_enabled"] = True
        if self.email_verified:
            item["email_verified"] = True
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        # Only the settings keys there are: an absent one takes its default.
        stored = item.get("settings") or {}
        defaults = Settings()
        currency = stored.get("default_currency", defaults.default_currency)
        notify = stored.get("notify_email", defaults.notify_email)
        if not isinstance(currency, str) or not isinstance(notify, bool):
            raise ValueError("a profile's settings are a currency code and a boolean")
        settings = Settings(default_currency=currency, notify_email=notify)
        return cls(
            id=item["id"],
            email=item["email"],
            name=item["name"],
            phone=item.get("phone"),
            role=item["role"],
            settings=settings,
            created_at=item["created_at"],
            updated_at=item.get("updated_at"),
            mfa_enabled=bool(item.get("mfa_enabled", False)),
            email_verified=item.get("email_verified") is True,
        )


@dataclass(frozen=True, slots=True)
class StoredBalance:
    """USER#<id> / BALANCE#<CUR>: written only by the money transactions' credit and debit
    items below."""

    user_id: str
    currency: str
    available: int
    shard: int | None = None  # a credit shard's number; None: the main item

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": _user(self.user_id),
            "sk": _balance_sk(self.currency, self.shard),
            "currency": self.currency,
            "available": self.available,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        available = item["available"]
        if type(available) is not int:  # a number, as ADD writes it: not "5", not True
            raise TypeError(f"available is not a number: {type(available).__name__}")
        currency, shard = _balance_key_of(str(item["sk"]))
        if currency != item["currency"]:
            raise ValueError("the currency is not its key's")
        return cls(_user_of(item), currency, available, shard)


_SHARD = re.compile(r"[0-9]{2}")  # ASCII digits: str.isdigit takes others


def _balance_sk(currency: str, shard: int | None = None) -> str:
    return f"BALANCE#{currency}" if shard is None else f"BALANCE#{currency}#{shard:02d}"


def _balance_key_of(sk: str) -> tuple[str, int | None]:
    """(currency, shard) of a balance item's sort key; ValueError if it is none."""
    currency, hash_sign, shard = sk.removeprefix("BALANCE#").partition("#")
    if not hash_sign:
        return currency, None
    if not _SHARD.fullmatch(shard) or int(shard) >= MAX_HOT_PAYEE_SHARDS:
        raise ValueError(f"not a credit shard: {sk}")
    return currency, int(shard)


def credit_shard(spread_by: str, shards: int) -> int:
    """Which of `shards` credit shards a payment's credit goes to: by its id, so a retried
    transaction writes the same item."""
    return int.from_bytes(hashlib.sha256(spread_by.encode()).digest()[:8], "big") % shards


@dataclass(frozen=True, slots=True)
class Held:
    """A user's balance in one currency as its items hold it: the main item, and each
    credit shard's amount (none but for a hot payee)."""

    main: int
    shards: Mapping[int, int]

    @property
    def total(self) -> int:
        return self.main + sum(self.shards.values())


@dataclass(frozen=True, slots=True)
class UnreadableBalance:
    """A balance item that is not one as the money transactions write it (edited by hand,
    or written by a bug: say, a number edited to 10.5): its owner and currency, as its key
    says, and why it cannot be read. It explains no money; the audit names it."""

    user_id: str
    currency: str
    error: Exception

    @classmethod
    def of(cls, raw: Mapping[str, Any], error: Exception) -> Self:
        """From the item as DynamoDB gives it (only its key's strings are read)."""
        return cls(
            dynamo.string(raw, "pk").removeprefix("USER#"),
            dynamo.string(raw, "sk").removeprefix("BALANCE#").partition("#")[0],
            error,
        )


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """USER#<id> / PM#<pm id>: a card's metadata and its gateway token, sealed (see
    accounts.cards: the token is only ever stored encrypted)."""

    user_id: str
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    billing_name: str | None
    gateway_risk_flag: bool
    token_ciphertext: bytes
    token_nonce: bytes
    token_data_key: bytes  # the KMS-encrypted data key
    created_at: str
    type: str = "card"
    status: str = "active"  # as stored: active | expired | invalid (see `current_status`)
    last_used_at: str | None = None  # set by each successful charge

    def current_status(self) -> str:
        """The status as it is now: an active card whose expiry month has passed is expired
        (whether or not that was written yet)."""
        today = clock.now()
        if self.status == "active" and (self.exp_year, self.exp_month) < (today.year, today.month):
            return "expired"
        return self.status

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": _user(self.user_id),
            "sk": f"PM#{self.id}",
            "id": self.id,
            "type": self.type,
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "fingerprint": self.fingerprint,
            "billing_name": self.billing_name,
            "gateway_risk_flag": self.gateway_risk_flag,
            "token_ciphertext": self.token_ciphertext,
            "token_nonce": self.token_nonce,
            "token_data_key": self.token_data_key,
            "created_at": self.created_at,
            "status": self.status,
        }
        if self.last_used_at is not None:
            item["last_used_at"] = self.last_used_at
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            user_id=_user_of(item),
            id=item["id"],
            type=item.get("type", "card"),
            brand=item["brand"],
            last4=item["last4"],
            exp_month=int(item["exp_month"]),
            exp_year=int(item["exp_year"]),
            fingerprint=item["fingerprint"],
            billing_name=item.get("billing_name"),
            gateway_risk_flag=bool(item.get("gateway_risk_flag")),
            token_ciphertext=item["token_ciphertext"],
            token_nonce=item["token_nonce"],
            token_data_key=item["token_data_key"],
            created_at=item["created_at"],
            status=str(item.get("status", "active")),  # methods added before statuses existed
            last_used_at=item.get("last_used_at"),
        )


@dataclass(frozen=True, slots=True)
class DefaultMethod:
    """USER#<id> / PM_DEFAULT: which of the user's payment methods is the default. One item
    per user, written only in transactions that check the method it names, so there is at
    most one default and it is always one of the user's methods."""

    user_id: str
    method_id: str

    def to_item(self) -> dict[str, Any]:
        return {"pk": _user(self.user_id), "sk": "PM_DEFAULT", "method_id": self.method_id}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(user_id=_user_of(item), method_id=str(item["method_id"]))


@dataclass(frozen=True, slots=True)
class AttachedToken:
    """GATEWAY_TOKEN#<digest> / GATEWAY_TOKEN: the gateway token with this SHA-256 digest is
    attached to the owner's payment method. Never the token itself (that is sealed in the
    method)."""

    digest: str
    owner: str
    method_id: str
    created_at: str

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": f"GATEWAY_TOKEN#{self.digest}",
            "sk": "GATEWAY_TOKEN",
            "owner": self.owner,
            "method_id": self.method_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            digest=str(item["pk"]).removeprefix("GATEWAY_TOKEN#"),
            owner=str(item["owner"]),
            method_id=str(item["method_id"]),
            created_at=str(item["created_at"]),
        )


class TokenAttachedError(Exception):
    """The gateway token is attached to a payment method already (nothing was written)."""


@dataclass(frozen=True, slots=True)
class PayerAttempts:
    """USER#<id> / VELOCITY: the payer's recent attempts in per-minute buckets, oldest first
    (see accounts.minute_buckets), and the version of the item (0: never written). Written by
    `velocity_item`.

    `buckets` is a list of `[minute, {currency: [count, amount]}]`. An item written before
    the buckets has `attempts` instead, a list of `[epoch ms, amount, currency]`: it reads as
    the same attempts in buckets, and its next write replaces the list."""

    user_id: str
    version: int
    buckets: tuple[MinuteBucket, ...]

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": _user(self.user_id),
            "sk": "VELOCITY",
            "buckets": _bucket_values(self.buckets),
            "version": self.version,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        if "buckets" in item:
            buckets = tuple(
                MinuteBucket(
                    int(minute),
                    {
                        str(currency): Tally(int(count), int(amount))
                        for currency, (count, amount) in tallies.items()
                    },
                )
                for minute, tallies in item["buckets"]
            )
        else:  # the former format
            buckets = minute_buckets.from_attempts(
                (int(at), int(amount), str(currency))
                for at, amount, currency in item.get("attempts", [])
            )
        return cls(user_id=_user_of(item), version=int(item.get("version", 0)), buckets=buckets)


def _bucket_values(buckets: Iterable[MinuteBucket]) -> list[Any]:
    return [
        [b.minute, {currency: [t.count, t.amount] for currency, t in b.tallies.items()}]
        for b in buckets
    ]


def _table() -> str:
    return get_settings().accounts_table


def create_user(profile: Profile, password_hash: str) -> None:
    """Profile and credentials in one transaction; the email is unique."""
    table = _table()
    credentials = Credentials(profile.email, profile.id, password_hash, profile.role)
    try:
        new_only = "attribute_not_exists(pk)"
        dynamo.Transaction().add(
            "credentials", dynamo.put(table, credentials.to_item(), condition=new_only)
        ).add("profile", dynamo.put(table, profile.to_item(), condition=new_only)).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("credentials"):
            raise EmailTakenError("an account with this email already exists") from exc
        raise


def get_credentials(email: str) -> Credentials | None:
    item = dynamo.get_item(_table(), {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"})
    return Credentials.from_item(item) if item is not None else None


def replace_password_hash(email: str, old_hash: str, new_hash: str) -> bool:
    """Set a new hash of the same password (a rehash) unless the password changed meanwhile
    (then False, nothing written); its version stays."""
    try:
        dynamo.update_item(
            _table(),
            {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"},
            "SET password_hash = :new",
            {":new": new_hash, ":old": old_hash},
            condition="password_hash = :old",
        )
    except dynamo.ConditionFailed:
        return False
    return True


def new_password_items(
    credentials: Credentials, new_hash: str
) -> tuple[dynamo.Write, dynamo.Write]:
    """The two transaction items of a new password (a change or a reset): the credentials'
    hash replaced and their version bumped, unless either changed since `credentials` were
    read, and the same version set on the profile, where the authorizer reads it by user id
    (every session created under the old version ends on its next request)."""
    version = credentials.password_version + 1
    unchanged = "password_hash = :old AND user_id = :user AND "
    unchanged += (
        "password_version = :current"
        if credentials.password_version
        else "attribute_not_exists(password_version)"
    )
    values: dict[str, Any] = {":new": new_hash, ":version": version, ":old":
                              credentials.password_hash, ":user": credentials.user_id}  # fmt: skip
    if credentials.password_version:
        values[":current"] = credentials.password_version
    return (
        dynamo.update(
            _table(),
            {"pk": f"EMAIL#{credentials.email}", "sk": "CREDENTIALS"},
            "SET password_hash = :new, password_version = :version",
            condition=unchanged,
            values=values,
        ),
        dynamo.update(
            _table(),
            {"pk": _user(credentials.user_id), "sk": "PROFILE"},
            "SET password_version = :version",
            condition="attribute_exists(pk)",
            values={":version": version},
        ),
    )


NO_PROFILE = -1
"""The password version read for a user without a profile: no session's (versions are 0 or
more), so the authorizer refuses every session of a user it cannot find."""


def _password_version(item: dynamo.Item | None) -> int | None:
    if item is None:
        return NO_PROFILE
    if "password_version" not in item:
        return None
    return int(item["password_version"])


def password_version_read(user_id: str) -> dynamo.Read[int | None]:
    """The read of the user's current password version from the profile (that attribute and
    the key only), for a BatchGetItem: None when the profile records none (no change of
    password since profiles started to carry it), NO_PROFILE when there is no profile (the
    key in the projection tells a profile without a version from no profile at all)."""
    key = {"pk": _user(user_id), "sk": "PROFILE"}
    return dynamo.Read(_table(), key, _password_version, projection=("pk", "password_version"))


def password_unchanged_check(email: str, version: int) -> dynamo.Write:
    """A transaction item that fails if the password changed since `version` was read."""
    condition = "password_version = :version"
    if version == 0:
        condition = "(attribute_not_exists(password_version) OR password_version = :version)"
    key = {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"}
    return dynamo.check(_table(), key, condition, values={":version": version})


def get_profile(user_id: str) -> Profile | None:
    item = dynamo.get_item(_table(), {"pk": _user(user_id), "sk": "PROFILE"})
    return Profile.from_item(item) if item is not None else None


def user_exists(user_id: str) -> bool:
    item = dynamo.get_item(_table(), {"pk": _user(user_id), "sk": "PROFILE"})
    return item is not None


_DEFAULT_WRITES = 4  # rounds of a default's transaction lost to a concurrent change


def _default_key(user_id: str) -> dict[str, str]:
    return {"pk": _user(user_id), "sk": "PM_DEFAULT"}


def _method_key(user_id: str, method_id: str) -> dict[str, str]:
    return {"pk": _user(user_id), "sk": f"PM#{method_id}"}


def put_payment_method(method: PaymentMethod, token_digest: str) -> bool:
    """Store a new payment method under its owner's pk, with the marker of its gateway token
    (`token_digest`: TokenAttachedError, nothing written, when that token is attached
    already); it becomes the default if the user has none (their first card). Whether it
    did: one transaction when the user has a default (the usual case), two for the first."""
    table = _table()
    new_only = "attribute_not_exists(pk)"
    marker = AttachedToken(token_digest, method.user_id, method.id, method.created_at)
    for _ in range(_DEFAULT_WRITES):
        put = dynamo.put(table, method.to_item(), condition=new_only)
        attached = dynamo.put(table, marker.to_item(), condition=new_only)
        try:  # another default there: this one is not
            dynamo.Transaction().add("method", put).add("token", attached).add(
                "default", dynamo.check(table, _default_key(method.user_id), "attribute_exists(pk)")
            ).write_retrying()
            return False
        except dynamo.TransactionCanceled as exc:
            _raise_if_attached(exc)
            if not exc.failed("default"):
                raise
        pointer = DefaultMethod(method.user_id, method.id).to_item()
        try:  # none: this one is, unless another card became it meanwhile
            dynamo.Transaction().add("method", put).add("token", attached).add(
                "default", dynamo.put(table, pointer, condition=new_only)
            ).write_retrying()
            return True
        except dynamo.TransactionCanceled as exc:
            _raise_if_attached(exc)
            if not exc.failed("default"):
                raise
    raise ConflictError("the account's payment methods are changing; retry the request")


def _raise_if_attached(exc: dynamo.TransactionCanceled) -> None:
    if exc.failed("token"):
        raise TokenAttachedError("the gateway token is attached already") from exc


def attached_token(token_digest: str) -> AttachedToken | None:
    """Which payment method the gateway token with this digest charges (None: no method of
    ours)."""
    item = dynamo.get_item(_table(), {"pk": f"GATEWAY_TOKEN#{token_digest}", "sk": "GATEWAY_TOKEN"})
    return AttachedToken.from_item(item) if item is not None else None


def card_update_item(
    user_id: str, method_id: str, last4: str, exp_month: int, exp_year: int
) -> dynamo.Write:
    """The transaction item of a gateway's card update: the new last4 and expiry, and the
    method `active` again (an expired or invalid one included); it fails if the method is
    gone."""
    return dynamo.update(
        _table(),
        _method_key(user_id, method_id),
        "SET last4 = :last4, exp_month = :month, exp_year = :year, #status = :active",
        condition="attribute_exists(pk)",
        names={"#status": "status"},
        values={":last4": last4, ":month": exp_month, ":year": exp_year, ":active": "active"},
    )


def default_method_id(user_id: str) -> str | None:
    """The id of the user's default payment method (one strongly consistent GetItem)."""
    item = dynamo.get_item(_table(), _default_key(user_id))
    return DefaultMethod.from_item(item).method_id if item is not None else None


def set_default_method(user_id: str, method_id: str) -> bool:
    """Make the method the user's default (the previous one no longer is: there is one
    pointer), in one transaction that checks the method exists and is stored `active`; False
    if it is not."""
    table = _table()
    method = dynamo.check(
        table,
        _method_key(user_id, method_id),
        "attribute_exists(pk) AND #status = :active",
        names={"#status": "status"},
        values={":active": "active"},
    )
    try:
        dynamo.Transaction().add("method", method).add(
            "default", dynamo.put(table, DefaultMethod(user_id, method_id).to_item())
        ).write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("method"):
            return False
        raise
    return True


def all_payment_methods(user_id: str) -> list[PaymentMethod]:
    """Every payment method of the user (every page), oldest first."""
    methods: list[PaymentMethod] = []
    start: Mapping[str, Any] | None = None
    while True:
        items, last = dynamo.query(
            _table(),
            "pk = :pk AND begins_with(sk, :pm)",
            {":pk": _user(user_id), ":pm": "PM#"},
            start_key=start,
            consistent=True,
        )
        methods.extend(PaymentMethod.from_item(item) for item in items)
        if last is None:
            return methods
        start = last


def mark_used(user_id: str, method_id: str, at: str) -> bool:
    """Set the method's last_used_at to `at` unless it is gone or was used later; whether
    it was written."""
    try:
        dynamo.update_item(
            _table(),
            _method_key(user_id, method_id),
            "SET last_used_at = :at",
            {":at": at},
            condition="attribute_exists(pk) AND "
            "(attribute_not_exists(last_used_at) OR last_used_at < :at)",
        )
    except dynamo.ConditionFailed:
        return False
    return True


def mark_expired(user_id: str, method_id: str) -> bool:
    """Make an active method expired (a declined `expired_card`, or its expiry month has
    passed); whether it was (False: gone, or no longer active)."""
    try:
        dynamo.update_item(
            _table(),
            _method_key(user_id, method_id),
            "SET #status = :expired",
            {":expired": "expired", ":active": "active"},
            condition="attribute_exists(pk) AND "
            "(attribute_not_exists(#status) OR #status = :active)",
            names={"#status": "status"},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def get_payment_method(user_id: str, method_id: str) -> PaymentMethod | None:
    item = dynamo.get_item(_table(), {"pk": _user(user_id), "sk": f"PM#{method_id}"})
    return PaymentMethod.from_item(item) if item is not None else None


def list_balances(user_id: str) -> list[StoredBalance]:
    """The user's balance in each currency: its main item and its credit shards summed."""
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :prefix)",
        {":pk": _user(user_id), ":prefix": "BALANCE#"},
        consistent=True,
    )
    totals: dict[str, int] = {}
    for item in items:
        balance = StoredBalance.from_item(item)
        totals[balance.currency] = totals.get(balance.currency, 0) + balance.available
    return [StoredBalance(user_id, currency, total) for currency, total in totals.items()]


# Only these are read by the audit (and its policy allows nothing else): never a profile or a
# password hash.
_BALANCE_ONLY = {
    "ProjectionExpression": "pk, sk, currency, available",
    "Select": "SPECIFIC_ATTRIBUTES",
}


def all_balances() -> Iterator[StoredBalance | UnreadableBalance]:
    """Every balance there is, for the audit: one Scan."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "FilterExpression": "begins_with(sk, :prefix)",
        "ExpressionAttributeValues": dynamo.serialize({":prefix": "BALANCE#"}),
        **_BALANCE_ONLY,
        "ConsistentRead": True,
    }
    return _balances(aws.dynamodb().scan, request)


@dataclass(frozen=True, slots=True)
class UsersPage:
    """One page of a segment of the accounts table's users, for the audit's sweep: the
    users with a profile on it, the users with a balance item on it (whether or not they
    have a profile: a balance with no user is audited too), and where the next page
    starts (an opaque start key; None at the segment's end)."""

    profiles: list[str]
    balances: list[str]
    next_start: str | None


def users_page(segment: int, segments: int, start: str | None, limit: int) -> UsersPage:
    """A page of segment `segment` of `segments` of a consistent Scan of the profiles and
    balances (their keys only: the sweep reads each user's items itself), of at most
    `limit` items read, from `start` (a page's `next_start`)."""
    items, next_start = dynamo.scan_page(
        _table(), segment, segments, start, limit,
        FilterExpression="sk = :profile OR begins_with(sk, :balance)",
        ExpressionAttributeValues=dynamo.serialize({":profile": "PROFILE", ":balance": "BALANCE#"}),
        ProjectionExpression="pk, sk", Select="SPECIFIC_ATTRIBUTES",
    )  # fmt: skip
    profiles: list[str] = []
    balances: list[str] = []
    for raw in items:
        pk, sk = dynamo.string(raw, "pk"), dynamo.string(raw, "sk")
        if pk.startswith("USER#"):
            (profiles if sk == "PROFILE" else balances).append(pk.removeprefix("USER#"))
    return UsersPage(profiles, balances, next_start)


def has_profile(user_id: str) -> bool:
    """Whether the user exists, for the audit: a consistent Query of the profile's key only
    (what the audit may read of it)."""
    response = aws.dynamodb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk AND sk = :profile",
        ExpressionAttributeValues=dynamo.serialize({":pk": _user(user_id), ":profile": "PROFILE"}),
        ProjectionExpression="pk",
        Select="SPECIFIC_ATTRIBUTES",
        ConsistentRead=True,
    )
    return bool(response.get("Items"))


def balances_of(user_id: str) -> Iterator[StoredBalance | UnreadableBalance]:
    """The user's balances, strongly consistent, reading only what the audit may read (see
    `all_balances`)."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": dynamo.serialize(
            {":pk": _user(user_id), ":prefix": "BALANCE#"}
        ),
        **_BALANCE_ONLY,
        "ConsistentRead": True,
    }
    return _balances(aws.dynamodb().query, request)


def _balances(
    read: Callable[..., Any], request: dict[str, Any]
) -> Iterator[StoredBalance | UnreadableBalance]:
    """Every page of a Scan or Query of balances; an item that is no balance as stored is an
    `UnreadableBalance`, not a failure of the whole read."""
    while True:
        response = read(**request)
        for raw in response.get("Items", []):
            try:
                yield StoredBalance.from_item(dynamo.deserialize(raw))
            except (KeyError, ValueError, TypeError, ArithmeticError) as error:
                yield UnreadableBalance.of(raw, error)
        if "LastEvaluatedKey" not in response:
            return
        request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}


# -- items for money transactions (run by the payments module in one TransactWriteItems) --


def credit_item(user_id: str, currency: str, amount: int, shard: int | None = None) -> dynamo.Write:
    """The credit of the main item, or of credit shard `shard`."""
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": _balance_sk(currency, shard)},
        "SET currency = :currency ADD available :amount",
        values={":currency": currency, ":amount": amount},
    )


def held(user_id: str, currency: str, *, at_least: int | None = None) -> Held:
    """The user's balance items in `currency` (0 when none): one strongly consistent Query
    (the main item and its shards sort together), projected to the key and `available`.

    A Query reads the main item first, and is only read-committed against a transaction: a
    gathering move (`gather_items`) committing while it runs may be seen after it emptied
    its shard but not as it credited the main item, read before: a sum too low. Money only
    ever moves from a shard to the main item, never back, so the shards read first and the
    main item after cannot miss a move (one between the two reads is counted twice, never
    lost). So when the items include credit shards and their sum is below `at_least` (an
    amount to be refused for want of money), they are read again in that order: the shards
    (a Query), then the main item (a GetItem), then the shards again: when one grew (a
    credit landed during the reads), the main item is read again, at most CONFIRMATIONS
    times. A refusal rests on a balance that was that low when the main item was read. (One
    TransactGetItems of every item would be a snapshot, but it is cancelled whenever any
    shard has a credit in flight: at a hot payee's load, nearly always.)"""
    prefix = _balance_sk(currency)
    seen = _held_query(user_id, currency, prefix)
    if at_least is None or not seen.shards or seen.total >= at_least:
        return seen
    shards = _held_query(user_id, currency, prefix + "#").shards
    for _ in range(CONFIRMATIONS):
        response = aws.dynamodb().get_item(
            TableName=_table(),
            Key=dynamo.serialize({"pk": _user(user_id), "sk": prefix}),
            ConsistentRead=True,
            ProjectionExpression="pk, sk, available",
        )
        item = dynamo.deserialize(response["Item"]) if "Item" in response else {}
        seen = Held(int(item.get("available", 0)), shards)
        if seen.total >= at_least:
            return seen
        # A credit that landed on a shard already read, with a debit of the main item
        # meanwhile, would make a sum that never was: read the shards again, and judge
        # again if any grew.
        again = _held_query(user_id, currency, prefix + "#").shards
        if all(again.get(shard, 0) <= held_ for shard, held_ in shards.items()) and set(
            again
        ) <= set(shards):
            return seen
        shards = again
    return seen


CONFIRMATIONS = 3  # reads of the main item, each after the shards', before a refusal


def _held_query(user_id: str, currency: str, prefix: str) -> Held:
    """The balance items whose sort key begins with `prefix`, as held now."""
    response = aws.dynamodb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=dynamo.serialize({":pk": _user(user_id), ":prefix": prefix}),
        ConsistentRead=True,
        ProjectionExpression="pk, sk, available",
        Select="SPECIFIC_ATTRIBUTES",
    )  # a page holds 1 MB: far more than a balance's at most 91 items
    main, shards = 0, {}
    for raw in response.get("Items", []):
        item = dynamo.deserialize(raw)
        of, shard = _balance_key_of(str(item["sk"]))
        if of != currency:  # pragma: no cover - currencies are three letters
            continue
        if shard is None:
            main = int(item["available"])
        else:
            shards[shard] = int(item["available"])
    return Held(main, shards)


def debit_item(user_id: str, currency: str, amount: int) -> dynamo.Write:
    """Debit that fails (ConditionalCheckFailed) rather than go below zero."""
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": _balance_sk(currency)},
        "SET available = available - :amount",
        condition="available >= :amount",
        values={":amount": amount},
    )


def gather_plan(seen: Held, amount: int) -> list[tuple[int, int]]:
    """(shard, amount it holds) of the credit shards to empty into the main item, fullest
    first, for it to cover a debit of `amount`, given the balance's items as `seen`: none
    when the main item covers it already or the items together cannot."""
    if seen.main >= amount or seen.total < amount:
        return []
    plan, main = [], seen.main
    for shard, held_ in sorted(seen.shards.items(), key=lambda kv: (-kv[1], kv[0])):
        if main >= amount or held_ <= 0:
            break
        plan.append((shard, held_))
        main += held_
    return plan


def gather_items(user_id: str, currency: str, shard: int, amount: int) -> dynamo.Transaction:
    """The transaction moving `amount` from credit shard `shard` into the main item: the
    shard's item (`shard`), failing unless it still holds that much, and the main item's
    (`main`, made by the move if it is the first). The balance does not change."""
    key = {"pk": _user(user_id)}
    return (
        dynamo.Transaction()
        .add("shard", dynamo.update(
            _table(), key | {"sk": _balance_sk(currency, shard)},
            "SET available = available - :amount", condition="available >= :amount",
            values={":amount": amount},
        ))
        .add("main", dynamo.update(
            _table(), key | {"sk": _balance_sk(currency)},
            "SET currency = :currency ADD available :amount",
            values={":currency": currency, ":amount": amount},
        ))
    )  # fmt: skip


def mfa_flag_item(user_id: str, enabled: bool) -> dynamo.Write:
    """The transaction item that sets the profile's `mfa_enabled` (the profile must exist)."""
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": "PROFILE"},
        "SET mfa_enabled = :enabled",
        condition="attribute_exists(pk)",
        values={":enabled": enabled},
    )


def email_verified_item(user_id: str, email: str) -> dynamo.Write:
    """The transaction item that marks the profile's email verified, failing unless the
    profile exists and its email is still `email` (the address the link was sent to)."""
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": "PROFILE"},
        "SET email_verified = :true",
        condition="attribute_exists(pk) AND email = :email",
        values={":true": True, ":email": email},
    )


def email_verified(user_id: str) -> bool:
    """Whether the user's email is verified: one strongly consistent GetItem of the profile
    projected to that attribute alone (so verifying takes effect at once). False for a user
    without a profile, or one stored before verification existed."""
    response = aws.dynamodb().get_item(
        TableName=_table(),
        Key=dynamo.serialize({"pk": _user(user_id), "sk": "PROFILE"}),
        ConsistentRead=True,
        ProjectionExpression="email_verified",
    )
    item = dynamo.deserialize(response["Item"]) if "Item" in response else {}
    return item.get("email_verified") is True


def user_exists_check(user_id: str) -> dynamo.Write:
    key = {"pk": _user(user_id), "sk": "PROFILE"}
    return dynamo.check(_table(), key, "attribute_exists(pk)")


def velocity_item(user_id: str, version: int, buckets: Iterable[MinuteBucket]) -> dynamo.Write:
    """The write of a payer's attempt history (USER#<id> / VELOCITY, see accounts.velocity),
    valid only if its version is still `version` (0: never written). It replaces the whole
    history, and drops the former format's `attempts` list."""
    values: dict[str, Any] = {":buckets": _bucket_values(buckets), ":next": version + 1}
    if version:
        condition = "#version = :current"
        values[":current"] = version
    else:
        condition = "attribute_not_exists(#version)"
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": "VELOCITY"},
        "SET buckets = :buckets, #version = :next REMOVE attempts",
        condition=condition,
        names={"#version": "version"},
        values=values,
    )


def get_velocity(user_id: str) -> PayerAttempts | None:
    """The payer's attempt history (one strongly consistent GetItem); None if never written."""
    item = dynamo.get_item(_table(), {"pk": _user(user_id), "sk": "VELOCITY"})
    return PayerAttempts.from_item(item) if item is not None else None


# -- profile updates; reading and deleting payment methods ----------------------------------

# What a profile update may write, whoever calls it: never role, email, id or balances.
_WRITABLE_PROFILE = frozenset({"name", "phone"})
_WRITABLE_SETTINGS = frozenset({"default_currency", "notify_email"})


def update_profile(
    user_id: str,
    fields: Mapping[str, str | None],
    settings: Mapping[str, str | bool],
    updated_at: str,
) -> Profile | None:
    """Set the given profile fields and settings keys (the other keys of `settings` stay) in
    one UpdateItem conditional on the profile existing; the profile as it is afterwards, or
    None if there is no such user (nothing written). Profiles always have a `settings` map
    (register writes one), which the nested SET needs."""
    unwritable = (set(fields) - _WRITABLE_PROFILE) | (set(settings) - _WRITABLE_SETTINGS)
    if unwritable:
        raise ValueError(f"not writable: {sorted(unwritable)}")
    assignments = ["#updated_at = :updated_at"]
    names = {"#updated_at": "updated_at"}
    values: dict[str, Any] = {":updated_at": updated_at}
    for field in sorted(fields):
        assignments.append(f"#{field} = :{field}")
        names[f"#{field}"] = field
        values[f":{field}"] = fields[field]
    if settings:
        names["#settings"] = "settings"
    for key in sorted(settings):
        assignments.append(f"#settings.#s_{key} = :s_{key}")
        names[f"#s_{key}"] = key
        values[f":s_{key}"] = settings[key]
    try:
        item = dynamo.update_item(
            _table(),
            {"pk": _user(user_id), "sk": "PROFILE"},
            "SET " + ", ".join(assignments),
            values,
            condition="attribute_exists(pk)",
            names=names,
            return_new=True,
        )
    except dynamo.ConditionFailed:
        return None
    if item is None:  # pragma: no cover - ALL_NEW always returns the item
        return None
    return Profile.from_item(item)


def list_payment_methods(
    user_id: str, limit: int, after_id: str | None = None
) -> tuple[list[PaymentMethod], bool]:
    """Up to `limit` of the user's payment methods, newest first (their ids are ULIDs, so sk
    order is creation order), starting after the method `after_id`; and whether more follow."""
    start = {"pk": _user(user_id), "sk": f"PM#{after_id}"} if after_id else None
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :pm)",
        {":pk": _user(user_id), ":pm": "PM#"},
        limit=limit + 1,
        newest_first=True,
        start_key=start,
        consistent=True,
    )
    return [PaymentMethod.from_item(item) for item in items[:limit]], len(items) > limit


def delete_payment_method(
    user_id: str, method_id: str, default: bool, successor: str | None
) -> bool:
    """Delete the user's payment method in one transaction that also checks what the caller
    read of the default: for the default (`default`), the pointer moves to `successor` (which
    must still exist and be active) or is removed when there is none; for another method,
    the pointer must still not name it. False (nothing deleted) if the user has no method
    with this id; `ConflictError` when the default changed meanwhile (read again).
    The key is under the user's own pk, so another user's method is never found."""
    table = _table()
    tx = dynamo.Transaction().add(
        "method",
        dynamo.delete(table, _method_key(user_id, method_id), condition="attribute_exists(pk)"),
    )
    values = {":id": method_id}
    if not default:
        tx.add(
            "default",
            dynamo.check(
                table,
                _default_key(user_id),
                "attribute_not_exists(pk) OR method_id <> :id",
                values=values,
            ),
        )
    elif successor is None:
        tx.add(
            "default",
            dynamo.delete(table, _default_key(user_id), condition="method_id = :id", values=values),
        )
    else:
        tx.add(
            "default",
            dynamo.update(
                table,
                _default_key(user_id),
                "SET method_id = :next",
                condition="method_id = :id",
                values={**values, ":next": successor},
            ),
        ).add(
            "successor",
            dynamo.check(
                table,
                _method_key(user_id, successor),
                "attribute_exists(pk) AND (attribute_not_exists(#status) OR #status = :active)",
                names={"#status": "status"},
                values={":active": "active"},
            ),
        )
    try:
        tx.write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("method"):
            return False
        if exc.failed(*(name for name in ("default", "successor") if name in tx)):
            raise ConflictError("the default payment method changed meanwhile") from exc
        raise
    return True


def set_role(user_id: str, email: str, role: str) -> None:
    """Change a user's role on both its credentials and its profile, in one transaction."""
    table = _table()
    items = [
        ("credentials", f"EMAIL#{email}", "CREDENTIALS", "user_id = :user"),
        ("profile", _user(user_id), "PROFILE", "attribute_exists(pk)"),
    ]
    tx = dynamo.Transaction()
    for name, pk, sk, condition in items:
        tx.add(
            name,
            dynamo.update(
                table,
                {"pk": pk, "sk": sk},
                "SET #role = :role",
                condition=condition,
                names={"#role": "role"},
                values={":role": role, **({":user": user_id} if ":user" in condition else {})},
            ),
        )
    tx.write()


def admin_emails() -> Iterator[str]:
    """The email of every admin: one Scan of the credentials' role and email only (rare: an
    endpoint disabled), never their password hashes."""
    request: dict[str, Any] = {
        "TableName": get_settings().accounts_table,
        "ProjectionExpression": "pk, #role",
        "Select": "SPECIFIC_ATTRIBUTES",  # its policy's condition names it: absent, IAM denies
        "FilterExpression": "sk = :credentials AND #role = :admin",
        "ExpressionAttributeNames": {"#role": "role"},
        "ExpressionAttributeValues": dynamo.serialize(
            {":credentials": "CREDENTIALS", ":admin": "admin"}
        ),
    }
    while True:
        response = aws.dynamodb().scan(**request)
        for item in response.get("Items", []):
            yield dynamo.deserialize(item)["pk"].removeprefix("EMAIL#")
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
