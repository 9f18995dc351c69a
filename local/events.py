"""The events/ samples, and API Gateway REST proxy events (payload format 1.0) made from
them, written once for the tests, the bench and its export worker.

`events/<module>/<operation>.json` is the sample of the function whose CodeUri is
`functions/<module>/` and whose handler module is `<operation>` (`sample_of`). The local
stack's API builds its events from real HTTP requests instead (`local.api.proxy_event`), with
the same fields.

Only the standard library is imported here (see `local.handlers`).
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


class SampleSource(Protocol):
    """What finding a function's sample needs; `local.specs.FunctionSpec` has it."""

    @property
    def code_dir(self) -> Path: ...

    @property
    def handler_module(self) -> str: ...


@functools.cache
def _text(relative: str) -> str:
    return (EVENTS_DIR / relative).read_text(encoding="utf-8")


def sample(relative: str) -> dict[str, Any]:
    """A fresh copy of `events/<relative>` (`payments/create_payment.json`)."""
    event: dict[str, Any] = json.loads(_text(relative))
    return event


def sample_of(spec: SampleSource) -> dict[str, Any]:
    """A fresh copy of the function's sample, events/<CodeUri dir>/<handler module>.json."""
    return sample(f"{spec.code_dir.name}/{spec.handler_module}.json")


def api_event(
    base: str | Mapping[str, Any],
    *,
    body: Any = None,
    raw_body: str | None = None,
    authorizer: Mapping[str, str] | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    path: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The proxy event of a request to the resource of `base` (an events/ sample, or its
    path under events/), as API Gateway sends it:

    - a fresh request id;
    - `raw_body` as the body, or `body` as JSON (else the sample's body);
    - `authorizer`: the authorizer's context (`requestContext.authorizer`), and `token` the
      `Authorization: Bearer` header it was given. Without `authorizer` the request reached
      a public route: the sample's authorizer context and Authorization header are removed;
    - `headers` set over the sample's (single and multi-value);
    - `query` as the query string (both forms; none when empty, as API Gateway sends it);
    - `path` filling the resource's `{name}` parameters, in `path` and `requestContext.path`.
    """
    event = sample(base) if isinstance(base, str) else copy.deepcopy(dict(base))
    context = event["requestContext"]
    context["requestId"] = str(uuid.uuid4())
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    extra = dict(headers or {})
    if authorizer is None:
        context.pop("authorizer", None)
        for name in ("headers", "multiValueHeaders"):
            (event.get(name) or {}).pop("Authorization", None)
    else:
        context["authorizer"] = dict(authorizer)
        if token is not None:
            extra = {"Authorization": f"Bearer {token}", **extra}
    for name, value in extra.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if path is not None:
        concrete = event["resource"]
        for name, value in path.items():
            concrete = concrete.replace("{" + name + "}", value)
        event["pathParameters"] = dict(path) or None
        event["path"] = concrete
        context["path"] = f"/{context['stage']}{concrete}"
    return event
