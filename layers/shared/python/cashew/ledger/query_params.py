"""The query parameters the log's endpoints share, declared once so that each is validated
and documented the same way everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AfterValidator, AwareDatetime

from cashew.ledger.models import EntryStatus, EntryType

EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _within_bounds(moment: datetime) -> datetime:
    """Times the log can hold, so that no range arithmetic leaves the calendar."""
    if not EARLIEST <= moment <= LATEST:
        raise ValueError("must be between 2000-01-01T00:00:00Z and 9000-01-01T00:00:00Z")
    return moment


Time = Annotated[AwareDatetime, AfterValidator(_within_bounds)]
Since = Annotated[
    Time | None,
    Query(alias="from", description="RFC 3339 time with a zone; entries at or after it"),
]
Until = Annotated[
    Time | None,
    Query(alias="to", description="RFC 3339 time with a zone; entries at or before it"),
]
TypeFilter = Annotated[EntryType | None, Query()]
StatusFilter = Annotated[EntryStatus | None, Query()]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=1024)]
