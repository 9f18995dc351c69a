"""Administrators: the first one is created by an operator (scripts/create_admin.py on a
deployed stack; CASHEW_ADMIN_EMAIL/CASHEW_ADMIN_PASSWORD in the local stack), never by the
public API."""

from __future__ import annotations

from cashew.accounts import service, store
from cashew.accounts.models import RegisterRequest, UserResponse
from cashew.errors import EmailTakenError


def create_admin(
    email: str, password: str, name: str = "Administrator"
) -> tuple[UserResponse, bool]:
    """The admin with this email, and whether it was created (False: an existing user was
    promoted; their password is left as it is)."""
    request = RegisterRequest.model_validate({"email": email, "password": password, "name": name})
    try:
        return service.register(request, role="admin"), True
    except EmailTakenError:
        credentials = store.get_credentials(request.email)
        assert credentials is not None  # the email is taken
        store.set_role(credentials.user_id, request.email, "admin")
        profile = store.get_profile(credentials.user_id)
        assert profile is not None
        return service.user_response(profile), False
