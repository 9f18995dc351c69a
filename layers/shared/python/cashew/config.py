"""Settings: one validated model, read once from the environment."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from cashew.ids import PATTERNS
from cashew.money import Currency

CURRENCIES: tuple[str, ...] = get_args(Currency)


class PerCurrency(BaseModel):
    """A threshold in minor units, per currency: `for_all` for every currency `amounts` does
    not name. Read from the environment as a bare number (`500000`: every currency) or as
    `CUR=amount` pairs separated by commas (`USD=500000,JPY=50000`), where a currency not
    named gets the documented default of that setting (API.md's Defaults)."""

    model_config = ConfigDict(frozen=True)

    for_all: int = Field(ge=1)
    amounts: Mapping[Currency, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)

    def __hash__(self) -> int:  # Settings are hashed (the gateway's cache key)
        return hash((self.for_all, tuple(sorted(self.amounts.items()))))

    def __getitem__(self, currency: str) -> int:
        return cast(Mapping[str, int], self.amounts).get(currency, self.for_all)


_NUMBER = re.compile(r"[0-9]+")
_FORMAT = "a number of minor units (500000) or CUR=amount pairs (USD=500000,JPY=50000)"


def _per_currency(default: int) -> Any:
    """The validator of a PerCurrency setting whose documented default is `default`."""

    def parse(value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"for_all": value}
        if not isinstance(value, str):
            return value  # a PerCurrency, or a dict: the model validates it
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return {"for_all": int(text)}
        amounts: dict[str, int] = {}
        for pair in text.split(","):
            currency, sep, amount = (part.strip() for part in pair.partition("="))
            if not sep or not _NUMBER.fullmatch(amount):
                raise ValueError(f"expected {_FORMAT}, got {pair.strip()!r}")
            if currency not in CURRENCIES:
                raise ValueError(f"{currency!r} is not a currency ({', '.join(CURRENCIES)})")
            if currency in amounts:
                raise ValueError(f"{currency} is given twice")
            amounts[currency] = int(amount)
        return {"for_all": default, "amounts": amounts}

    return BeforeValidator(parse)


def _threshold(default: int, variable: str) -> Any:
    """A PerCurrency field of Settings: its default and how the environment spells it."""
    return Field(PerCurrency(for_all=default), alias=variable)


_ORIGIN = re.compile(
    r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(?::[1-9][0-9]{0,4})?"
)


def parse_origins(value: object) -> tuple[str, ...]:
    """The origins of a CASHEW_CORS_ORIGINS value; ValueError names the first bad one."""
    if isinstance(value, tuple | list):
        items = [str(item) for item in value]
    elif isinstance(value, str):
        items = [item.strip() for item in value.split(",")] if value.strip() else []
    else:
        raise ValueError("expected comma-separated origins")
    for origin in items:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin: expected http(s)://host[:port] in lower case, "
                "without a path (never * or null)"
            )
        if (origin.startswith("https://") and origin.endswith(":443")) or (
            origin.startswith("http://") and origin.endswith(":80")
        ):
            # a browser never sends its scheme's default port in Origin: it would never match
            raise ValueError(f"{origin!r} names its scheme's default port: leave it out")
    return tuple(dict.fromkeys(items))


MAX_HOT_PAYEES = 50  # their ids must fit Lambda's 4 KB of environment with the rest
MAX_HOT_PAYEE_SHARDS = 90  # shard numbers 00..89: two digits in a balance item's key


def parse_user_ids(value: object) -> frozenset[str]:
    """The user ids of a comma-separated CASHEW_HOT_PAYEES; ValueError names a bad one."""
    if isinstance(value, frozenset | set | tuple | list):
        items = [str(item) for item in value]
    elif isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
    else:
        raise ValueError("expected comma-separated user ids")
    for user_id in items:
        if not PATTERNS["usr"].fullmatch(user_id):
            raise ValueError(f"{user_id!r} is not a user id")
    if len(set(items)) > MAX_HOT_PAYEES:
        raise ValueError(f"at most {MAX_HOT_PAYEES} hot payees")
    return frozenset(items)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    issuer: str = Field("https://cashew.dev", alias="CASHEW_ISSUER")
    audience: str = Field("cashew-api", alias="CASHEW_AUDIENCE")

    sessions_table: str = Field(alias="CASHEW_SESSIONS_TABLE")
    accounts_table: str = Field(alias="CASHEW_ACCOUNTS_TABLE")
    payments_table: str = Field(alias="CASHEW_PAYMENTS_TABLE")
    idempotency_table: str = Field(alias="CASHEW_IDEMPOTENCY_TABLE")
    log_table: str = Field(alias="CASHEW_LOG_TABLE")
    disputes_table: str = Field(alias="CASHEW_DISPUTES_TABLE")
    # The summary's running totals (kept by the log consumer) and the admins' jobs.
    reports_table: str = Field(alias="CASHEW_REPORTS_TABLE")
    # Only the functions that start jobs and run them: the jobs' queue and their files.
    jobs_queue_url: str | None = Field(None, alias="CASHEW_JOBS_QUEUE_URL")
    reports_bucket: str | None = Field(None, alias="CASHEW_REPORTS_BUCKET")
    outcomes_queue_url: str = Field(alias="CASHEW_OUTCOMES_QUEUE_URL")
    event_bus_name: str = Field(alias="CASHEW_EVENT_BUS_NAME")
    # Only the outcome publisher has it: where it sets aside a change it cannot read.
    publish_failures_queue_url: str | None = Field(None, alias="CASHEW_PUBLISH_FAILURES_QUEUE_URL")
    card_key_id: str = Field(alias="CASHEW_CARD_KEY_ID")
    jwt_secret_id: str = Field(alias="CASHEW_JWT_SECRET_ID")
    # The seeds of the receipt keys (ReceiptSigningKeySecret): never the access-token keys.
    receipt_secret_id: str = Field(alias="CASHEW_RECEIPT_SECRET_ID")
    fingerprint_secret_id: str = Field(alias="CASHEW_FINGERPRINT_SECRET_ID")
    # Notifications: the From of every email; the email consumer's own table and queue.
    email_from: str = Field("Cashew <no-reply@cashew.local>", alias="CASHEW_EMAIL_FROM")
    notifications_table: str | None = Field(None, alias="CASHEW_NOTIFICATIONS_TABLE")
    email_queue_url: str | None = Field(None, alias="CASHEW_EMAIL_QUEUE_URL")
    # Account recovery: the web client a reset link opens, a reset token's lifetime, and
    # where the email of a reset for an unknown address goes (SES's mailbox simulator: the
    # same send as for an account, delivered to no one).
    app_url: str = Field("http://127.0.0.1:3000/", alias="CASHEW_APP_URL")
    # Browser origins allowed to read answers (cashew.cors); malformed stops the local stack.
    cors_origins: Annotated[tuple[str, ...], BeforeValidator(parse_origins)] = Field(
        (), alias="CASHEW_CORS_ORIGINS"
    )
    password_reset_ttl: int = Field(1800, alias="CASHEW_PASSWORD_RESET_TTL", ge=60, le=86400)
    email_decoy_to: str = Field("success@simulator.amazonses.com", alias="CASHEW_EMAIL_DECOY_TO")
    # Email verification: money moves only for verified emails when true (the money-moving
    # functions alone get it, from the template's RequireVerifiedEmail parameter).
    require_verified_email: bool = Field(False, alias="CASHEW_REQUIRE_VERIFIED_EMAIL")

    access_token_ttl: int = Field(900, alias="CASHEW_ACCESS_TOKEN_TTL", ge=60, le=900)
    refresh_token_ttl: int = Field(30 * 86400, alias="CASHEW_REFRESH_TOKEN_TTL", ge=3600)
    login_max_failures: int = Field(5, alias="CASHEW_LOGIN_MAX_FAILURES", ge=1)
    idempotency_ttl: int = Field(86400, alias="CASHEW_IDEMPOTENCY_TTL", ge=86400)
    # The log's DayIndex partitions per UTC day (cashew.ledger.store.day_partition), for
    # more than 1,000 entries/s; readers also read what a writer noted it used that day.
    log_day_shards: int = Field(1, alias="CASHEW_LOG_DAY_SHARDS", ge=1, le=64)
    # Hot payees (cashew.accounts.store, "credit shards"): users whose payments' credits are
    # spread over `hot_payee_shards` balance items, so that thousands of payments a second to
    # one merchant do not all write one item. Readers read the shards of every user.
    hot_payees: Annotated[frozenset[str], BeforeValidator(parse_user_ids)] = Field(
        frozenset(), alias="CASHEW_HOT_PAYEES"
    )
    hot_payee_shards: int = Field(
        32, alias="CASHEW_HOT_PAYEE_SHARDS", ge=2, le=MAX_HOT_PAYEE_SHARDS
    )
    secrets_max_age: int = Field(300, alias="CASHEW_SECRETS_MAX_AGE", ge=0)

    # Fraud screening (cashew.payments.fraud). The amount thresholds are per currency; a
    # malformed value fails these settings (the variable named), at the function's first
    # reading of them, before any logic; the local stack checks them at start.
    fraud_max_amount: Annotated[PerCurrency, _per_currency(500_000)] = _threshold(
        500_000, "CASHEW_FRAUD_MAX_AMOUNT"
    )
    fraud_new_card_amount: Annotated[PerCurrency, _per_currency(200_000)] = _threshold(
        200_000, "CASHEW_FRAUD_NEW_CARD_AMOUNT"
    )
    fraud_max_amount_24h: Annotated[PerCurrency, _per_currency(2_000_000)] = _threshold(
        2_000_000, "CASHEW_FRAUD_MAX_AMOUNT_24H"
    )
    fraud_max_payments_10min: int = Field(30, alias="CASHEW_FRAUD_MAX_PAYMENTS_10MIN", ge=1)
    # A card with the gateway's high-risk flag: blocked (true), or only elevated (false).
    fraud_block_risky_cards: bool = Field(True, alias="CASHEW_FRAUD_BLOCK_RISKY_CARDS")

    # The stack's `Stage` parameter (`local` on the local stack); a label in logs only: no
    # stage is exempt from any check.
    stage: str | None = Field(None, alias="CASHEW_STAGE")
    gateway: Literal["sandbox", "stripe"] = Field("sandbox", alias="CASHEW_GATEWAY")
    # The JSON secret {"api_key": ..., "webhook_secret": ...} of either gateway (GatewaySecret).
    gateway_secret_id: str | None = Field(None, alias="CASHEW_GATEWAY_SECRET_ID")
    sandbox_webhook_url: str | None = Field(None, alias="CASHEW_SANDBOX_WEBHOOK_URL")
    # Where the local stack serves the sandbox's 3-D Secure challenge pages.
    sandbox_challenge_url: str = Field(
        "http://127.0.0.1:3000/_sandbox/v1/challenges", alias="CASHEW_SANDBOX_CHALLENGE_URL"
    )
    # Where Stripe sends the card holder back after 3-D Secure (None: <app_url>#/3ds-return).
    three_ds_return_url: str | None = Field(None, alias="CASHEW_3DS_RETURN_URL")
    stripe_api_base: str | None = Field(None, alias="CASHEW_STRIPE_API_BASE")  # tests only
    request_lease_seconds: int = Field(60, alias="CASHEW_REQUEST_LEASE_SECONDS", ge=30)
    gateway_max_attempts: int = Field(3, alias="CASHEW_GATEWAY_MAX_ATTEMPTS", ge=1, le=5)

    # Reconciliation (cashew.payments.reconcile): authorisations voided after, requires_action
    # failed after, processing / pending asked of the gateway after (seconds); at most this
    # many records per run; the local stack's interval between runs.
    authorization_ttl: int = Field(7 * 86400, alias="CASHEW_AUTHORIZATION_TTL", ge=30)
    action_ttl: int = Field(86400, alias="CASHEW_ACTION_TTL", ge=30)
    reconcile_after: int = Field(600, alias="CASHEW_RECONCILE_AFTER", ge=30)
    reconcile_max_items: int = Field(1000, alias="CASHEW_RECONCILE_MAX_ITEMS", ge=1, le=100_000)
    reconcile_interval: int = Field(300, alias="CASHEW_RECONCILE_INTERVAL", ge=1)


@functools.cache
def get_settings() -> Settings:
    """The settings of this process; validated on first use and then reused."""
    return Settings.model_validate(os.environ)
