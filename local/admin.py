"""The local stack's first admin, from CASHEW_ADMIN_EMAIL and CASHEW_ADMIN_PASSWORD."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def create_from_env(env: Mapping[str, str], layer_dirs: list[Path]) -> str | None:
    """Create (or promote) the admin when both variables are set; returns its email."""
    email = os.environ.get("CASHEW_ADMIN_EMAIL", "").strip()
    password = os.environ.get("CASHEW_ADMIN_PASSWORD", "")
    if not email or not password:
        return None
    for layer in layer_dirs:
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))
    with _environment(env):
        from cashew.auth.admins import create_admin  # noqa: PLC0415 - the layer's code

        admin, _ = create_admin(email, password)
    return admin.email
