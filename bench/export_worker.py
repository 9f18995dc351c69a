"""One instance of the CSV export function in a process of its own, fetching a range page
by page as a client following `Link: rel="next"` would: its peak memory is then that of
one Lambda execution environment doing the whole export.

    python -m bench.export_worker < job.json

The job (written by bench.log): the function's code and layer directories, handler module
and attribute, its environment (pointed at the bench's endpoint), the events/ sample, the
admin's authorizer context and the query. Prints one JSON object: the size and time of
every page, the rows, and the process's peak resident memory after the imports and at the
end (ru_maxrss).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from local.events import api_event
from local.handlers import load_handler

# moto answers a query on an index by scanning the whole table: with 100,000 entries one
# query takes seconds, more than the functions' 5 s read timeout (DynamoDB takes
# milliseconds). This instance's clients wait longer; nothing else about them changes.
READ_TIMEOUT = 900


def _peak_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM is this program's own; ru_maxrss
    can still hold the peak of the process that started it (it survives exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _context(job: dict[str, Any]) -> SimpleNamespace:
    """What the handler's Powertools decorators read of Lambda's context object."""
    name = job["env"].get("AWS_LAMBDA_FUNCTION_NAME", "export")
    return SimpleNamespace(
        function_name=name,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        memory_limit_in_mb=int(job["env"].get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")),
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{name}",
        log_stream_name="bench",
        get_remaining_time_in_millis=lambda: 29_000,
    )


@dataclass(frozen=True)
class _Function:
    """The job's handler: what `local.handlers.load_handler` needs."""

    code_dir: str
    layer_dirs: tuple[str, ...]
    handler_module: str
    handler_attr: str


def main() -> int:
    job = json.load(sys.stdin)
    os.environ.update(job["env"])
    function = _Function(
        job["code_dir"], tuple(job["layer_dirs"]), job["handler_module"], job["handler_attr"]
    )
    handler = load_handler(function, "export_handler", resident=True)
    from cashew import aws

    aws._CONFIG["read_timeout"] = READ_TIMEOUT
    aws._CONFIG["retries"] = {"mode": "standard", "max_attempts": 1}
    after_import = _peak_mb()
    query, sizes, seconds, rows = dict(job["query"]), [], [], 0
    while True:
        event = api_event(job["sample"], authorizer=job["authorizer"], query=query)
        started = time.perf_counter()
        response: dict[str, Any] = handler(event, _context(job))
        seconds.append(time.perf_counter() - started)
        if response["statusCode"] != 200:
            print(json.dumps({"error": response["body"]}))
            return 1
        body = response["body"]
        sizes.append(len(body.encode()))
        rows += body.count("\r\n") - 1
        print(f"page {len(sizes)}: {rows} rows", file=sys.stderr, flush=True)
        headers = response.get("multiValueHeaders") or {}
        following = (headers.get("X-Next-Cursor") or [None])[0] or (
            response.get("headers") or {}
        ).get("X-Next-Cursor")
        if not following:
            break
        query["cursor"] = following
    print(json.dumps({
        "sizes": sizes, "seconds": seconds, "rows": rows,
        "rss_after_import_mb": after_import, "peak_rss_mb": _peak_mb(),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
