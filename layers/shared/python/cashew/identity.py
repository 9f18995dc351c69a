"""Who is calling: established by the authorizer, never by a request body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["user", "admin"]
ROLES: tuple[Role, ...] = ("user", "admin")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    session_id: str
    role: Role
