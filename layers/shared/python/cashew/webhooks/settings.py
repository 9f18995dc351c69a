"""The webhooks' own settings, read once from the environment (the other modules never see
them). `CASHEW_WEBHOOK_ALLOW_LOOPBACK` is set by the local stack's process only (local/dev.py),
never by template.yaml, so no deployed stage can reach loopback."""

from __future__ import annotations

import functools
import os

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Seconds between attempt n and n+1: the first retry within a minute, then growing; 9
# attempts over 27.6 h (>= 8 over >= 24 h, as API.md requires).
DEFAULT_SCHEDULE = (30, 300, 1800, 3600, 7200, 14400, 28800, 43200)


class WebhookSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table: str = Field(alias="CASHEW_WEBHOOKS_TABLE")
    key_id: str = Field(alias="CASHEW_WEBHOOK_KEY_ID")
    deliveries_queue_url: str = Field(alias="CASHEW_WEBHOOK_DELIVERIES_QUEUE_URL")
    email_from: str = Field("Cashew <no-reply@cashew.local>", alias="CASHEW_EMAIL_FROM")
    # Comma-separated seconds between attempts; tests shorten it.
    retry_schedule: tuple[int, ...] = Field(DEFAULT_SCHEDULE, alias="CASHEW_WEBHOOK_RETRY_SCHEDULE")
    # How long an endpoint may fail everything before it is disabled (seconds).
    disable_after: int = Field(86400, alias="CASHEW_WEBHOOK_DISABLE_AFTER", ge=1)
    allow_loopback: bool = Field(False, alias="CASHEW_WEBHOOK_ALLOW_LOOPBACK")

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(delay < 1 for delay in value):
            raise ValueError("the retry schedule is one or more positive delays")
        return value

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule) + 1


@functools.cache
def get() -> WebhookSettings:
    return WebhookSettings.model_validate(os.environ)
