"""The query parameters the log's endpoints share, declared once so that each is validated
and documented the same way everywhere."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AwareDatetime

from cashew.ledger.models import EntryStatus, EntryType

Since = Annotated[
    AwareDatetime | None,
    Query(alias="from", description="RFC 3339 time with a zone; entries at or after it"),
]
Until = Annotated[
    AwareDatetime | None,
    Query(alias="to", description="RFC 3339 time with a zone; entries at or before it"),
]
TypeFilter = Annotated[EntryType | None, Query()]
StatusFilter = Annotated[EntryStatus | None, Query()]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=1024)]
