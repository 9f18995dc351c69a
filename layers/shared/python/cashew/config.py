"""Settings: one validated model, read once from the environment."""

from __future__ import annotations

import functools
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    password_reset_ttl: int = Field(1800, alias="CASHEW_PASSWORD_RESET_TTL", ge=60, le=86400)
    email_decoy_to: str = Field("success@simulator.amazonses.com", alias="CASHEW_EMAIL_DECOY_TO")
    # Email verification: money moves only for verified emails when true (the money-moving
    # functions alone get it, from the template's RequireVerifiedEmail parameter).
    require_verified_email: bool = Field(False, alias="CASHEW_REQUIRE_VERIFIED_EMAIL")

    access_token_ttl: int = Field(900, alias="CASHEW_ACCESS_TOKEN_TTL", ge=60, le=900)
    refresh_token_ttl: int = Field(30 * 86400, alias="CASHEW_REFRESH_TOKEN_TTL", ge=3600)
    login_max_failures: int = Field(5, alias="CASHEW_LOGIN_MAX_FAILURES", ge=1)
    idempotency_ttl: int = Field(86400, alias="CASHEW_IDEMPOTENCY_TTL", ge=86400)
    secrets_max_age: int = Field(300, alias="CASHEW_SECRETS_MAX_AGE", ge=0)

    fraud_max_amount: int = Field(500_000, alias="CASHEW_FRAUD_MAX_AMOUNT", ge=1)
    fraud_new_card_amount: int = Field(200_000, alias="CASHEW_FRAUD_NEW_CARD_AMOUNT", ge=1)
    fraud_max_payments_10min: int = Field(30, alias="CASHEW_FRAUD_MAX_PAYMENTS_10MIN", ge=1)
    fraud_max_amount_24h: int = Field(2_000_000, alias="CASHEW_FRAUD_MAX_AMOUNT_24H", ge=1)

    # The stack's `Stage` parameter (`local` on the local stack); a label in logs only: no
    # stage is exempt from any check.
    stage: str | None = Field(None, alias="CASHEW_STAGE")
    gateway: Literal["sandbox", "stripe"] = Field("sandbox", alias="CASHEW_GATEWAY")
    # The JSON secret {"api_key": ..., "webhook_secret": ...} of either gateway (GatewaySecret).
    gateway_secret_id: str | None = Field(None, alias="CASHEW_GATEWAY_SECRET_ID")
    sandbox_webhook_url: str | None = Field(None, alias="CASHEW_SANDBOX_WEBHOOK_URL")
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
