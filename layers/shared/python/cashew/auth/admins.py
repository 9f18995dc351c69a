"""Administrators: the first one is created by an operator (scripts/create_admin.py on a
deployed stack; CASHEW_ADMIN_EMAIL/CASHEW_ADMIN_PASSWORD in the local stack), never by the
public API."""

from __future__ import annotations

from cashew.accounts import face, passwords, service
from cashew.accounts.models import RegisterRequest, UserResponse
from cashew.auth import sessions
from cashew.errors import ConflictError, EmailTakenError


def create_admin(
    email: str, password: str, name: str = "Administrator"
) -> tuple[UserResponse, bool]:
    """The admin with this email, and whether it was created. An existing user is promoted
    only when `password` is theirs: registration is public, so whoever registered the email
    first must not become admin by being there. Promotion ends the user's sessions (their
    role is read from the session), so they sign in again as admin."""
    request = RegisterRequest.model_validate({"email": email, "password": password, "name": name})
    try:
        return service.register(request, role="admin"), True
    except EmailTakenError:
        credentials = face.get_credentials(request.email)
        if credentials is None or not passwords.verify_password(
            credentials.password_hash, request.password.get_secret_value()
        ):
            raise ConflictError(
                "a user with this email exists and the password given is not theirs"
            ) from None
        face.set_role(credentials.user_id, request.email, "admin")
        sessions.revoke_all_except(credentials.user_id, keep_session_id="")
        profile = face.get_profile(credentials.user_id)
        assert profile is not None  # nosec B101 # narrows the type; the put above made it
        return service.user_response(profile), False
