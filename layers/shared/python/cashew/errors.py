"""Domain errors. Logic raises them; `cashew.http` translates them to problem+json."""

from __future__ import annotations


class CashewError(Exception):
    """Base of every error a client may see. Subclasses fix the status and the code."""

    status = 500
    code = "internal_error"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extensions = extensions or {}  # extra members of the problem body (RFC 9457)


class InvalidRequestError(CashewError):
    status, code, title = 422, "validation_error", "Invalid request"


class PaymentMethodUnusableError(CashewError):
    """A payment method that is not `active` (expired or invalid): refused before the gateway."""

    status, code, title = 422, "payment_method_unusable", "Payment method unusable"


class UnauthenticatedError(CashewError):
    status, code, title = 401, "unauthenticated", "Unauthenticated"


class InvalidCredentialsError(CashewError):
    status, code, title = 401, "invalid_credentials", "Invalid credentials"


class MfaRequiredError(CashewError):
    """The password was right and the account has MFA: the problem body carries `mfa_token`."""

    status, code, title = 401, "mfa_required", "Multi-factor authentication required"


class InvalidMfaCodeError(CashewError):
    status, code, title = 401, "invalid_mfa_code", "Invalid MFA code"


class RefreshTokenReusedError(CashewError):
    status, code, title = 401, "refresh_token_reused", "Refresh token reused"


class ForbiddenError(CashewError):
    status, code, title = 403, "forbidden", "Forbidden"


class EmailUnverifiedError(CashewError):
    """A money-moving POST of a user whose email is not verified, while
    CASHEW_REQUIRE_VERIFIED_EMAIL is true (API.md: 403 `email_unverified`)."""

    status, code, title = 403, "email_unverified", "Email not verified"


class NotFoundError(CashewError):
    status, code, title = 404, "not_found", "Not found"


class EmailTakenError(CashewError):
    status, code, title = 409, "email_taken", "Email already registered"


class ConflictError(CashewError):
    status, code, title = 409, "conflict", "Conflict"


class WebhookRejectedError(CashewError):
    status, code, title = 400, "invalid_signature", "Webhook rejected"


class IdempotencyKeyMissingError(CashewError):
    status, code, title = 400, "idempotency_key_missing", "Idempotency-Key required"


class IdempotencyKeyReusedError(CashewError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key reused"


class IdempotencyInProgressError(CashewError):
    status, code, title = 409, "idempotency_in_progress", "Request in progress"


class PayloadTooLargeError(CashewError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaTypeError(CashewError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class TooManyAttemptsError(CashewError):
    status, code, title = 429, "too_many_attempts", "Too many attempts"


class RateLimitedError(CashewError):
    status, code, title = 429, "rate_limited", "Rate limited"


class InvalidTokenError(CashewError):
    """A password-reset or email-verification token that is unknown, used, voided or
    expired (API.md: 400 `invalid_token`)."""

    status, code, title = 400, "invalid_token", "Invalid token"
