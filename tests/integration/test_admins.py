"""The first admin: created by an operator, never through the public API."""

from __future__ import annotations

import uuid

import pytest

from cashew.auth.admins import create_admin
from tests.integration.conftest import PASSWORD, authorize


def test_create_admin_creates_a_user_with_the_admin_role(stack):
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    admin, created = create_admin(email, PASSWORD, "Ops")
    assert created and admin.role == "admin"
    login = stack.call(
        "LoginFunction", "auth/login.json", body={"email": email, "password": PASSWORD}
    )
    assert login.status == 200
    assert authorize(stack, login.body["access_token"])["context"]["role"] == "admin"


def test_create_admin_promotes_an_existing_user_who_proves_the_password(stack, new_user):
    user = new_user()
    admin, created = create_admin(user.email, PASSWORD)
    assert not created
    assert (admin.id, admin.role) == (user.id, "admin")
    me = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert me.body["role"] == "admin"
    # their sessions ended with the promotion: the role is read from the session
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(stack, user.access_token)
    login = stack.call(
        "LoginFunction", "auth/login.json", body={"email": user.email, "password": PASSWORD}
    )
    assert authorize(stack, login.body["access_token"])["context"]["role"] == "admin"
