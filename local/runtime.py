"""Handlers run the way Lambda runs them: in their own processes, one request at a time each.

Every function gets a pool of worker processes (spawned, never forked: no state leaks from
the parent), created on its first invocation. A worker is an execution environment: its
initializer applies the function's environment, puts the function's code directory and its
layers at the front of `sys.path` (as /var/task and /opt/python are), imports the handler
module once (`local.handlers`), and then serves invocations one after another, keeping
module state between them as a warm Lambda instance does. Concurrent invocations go to
different workers.

A handler that raises, times out (SIGALRM at the function's Timeout) or returns something
that is not JSON comes back as an error object like Lambda's ({"errorMessage", "errorType",
...}). A worker that dies takes its pool with it (the function's invocations in flight fail
with Runtime.ExitError) and the next invocation starts a new one; a worker that died between
invocations is noticed before the next one, which a new pool serves. Unlike Lambda, a worker
whose handler timed out is kept, not re-initialised.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.cfn import ACCOUNT_ID, REGION
from local.handlers import load_handler
from local.specs import FunctionSpec

_ISOLATED_PREFIXES = ("AWS_", "POWERTOOLS_", "CASHEW_")  # only the function's own reach it


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to become an execution environment of one function."""

    function_name: str
    handler_module: str
    handler_attr: str
    code_dir: str
    layer_dirs: tuple[str, ...]
    env: dict[str, str]
    timeout: int
    memory: int
    stdout_to_stderr: bool

    @classmethod
    def of(cls, spec: FunctionSpec, env: Mapping[str, str], stdout_to_stderr: bool) -> WorkerConfig:
        return cls(
            spec.name,
            spec.handler_module,
            spec.handler_attr,
            str(spec.code_dir),
            tuple(str(layer) for layer in spec.layer_dirs),
            dict(env),
            spec.timeout,
            spec.memory,
            stdout_to_stderr,
        )


@dataclass(frozen=True)
class Invocation:
    """The outcome of an invocation: the handler's (JSON) return value, or Lambda's error object."""

    request_id: str
    payload: Any = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class LambdaContext:
    """The `context` argument of a handler, with the attributes of Lambda's Python runtime."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, config: WorkerConfig, request_id: str) -> None:
        self.function_name = config.function_name
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{config.function_name}"
        )
        self.memory_limit_in_mb = config.memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{config.function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + config.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# ------------------------------------------------------------------ inside a worker process
class _TimedOut(BaseException):
    """Raised into a handler at its deadline; a BaseException, so `except Exception` lets it by."""


_config: WorkerConfig | None = None
_handler: Callable[[Any, LambdaContext], Any] | None = None
_init_error: dict[str, Any] | None = None


def _start_worker(config: WorkerConfig) -> None:
    global _config, _handler, _init_error  # noqa: PLW0603 - the state of this execution environment
    _config = config
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    if config.stdout_to_stderr:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for name in [name for name in os.environ if name.startswith(_ISOLATED_PREFIXES)]:
        del os.environ[name]
    os.environ.update(config.env)
    time.tzset()
    try:
        os.chdir(config.code_dir)
        _handler = load_handler(config, resident=True)
    except Exception as exc:  # noqa: BLE001 - reported on every invocation, as Lambda does
        traceback.print_exc()
        _init_error = {
            "errorMessage": f"Unable to import module '{config.handler_module}': {exc}",
            "errorType": "Runtime.ImportModuleError",
            "stackTrace": [],
        }


def _on_deadline(signum: int, frame: Any) -> None:
    raise _TimedOut


def _error(exc: BaseException, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__)[1:],  # from the handler down
    }


def _run(event: Any, request_id: str, started: str) -> tuple[str | None, dict[str, Any] | None]:
    """One invocation: (the return value as JSON, None) or (None, the error object). The
    file `started` is created first, so the caller knows whether a worker that died had
    begun this invocation."""
    Path(started).touch()
    if _init_error is not None or _handler is None or _config is None:
        return None, _init_error
    signal.signal(signal.SIGALRM, _on_deadline)
    signal.setitimer(signal.ITIMER_REAL, _config.timeout)
    try:
        result = _handler(event, LambdaContext(_config, request_id))
    except _TimedOut:
        message = f"{request_id} Task timed out after {_config.timeout:.2f} seconds"
        print(message, file=sys.stderr, flush=True)
        return None, {"errorMessage": message, "errorType": "Sandbox.Timedout"}
    except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's outcome
        print(f"[ERROR] {request_id} {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc()
        return None, _error(exc, request_id)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        return json.dumps(result), None
    except (TypeError, ValueError) as exc:
        return None, {**_error(exc, request_id), "errorType": "Runtime.MarshalError"}


# ------------------------------------------------------------------ in the calling process
def _has_dead_worker(pool: ProcessPoolExecutor) -> bool:
    """Whether a worker of `pool` has exited (its executor marks itself broken only once its
    management thread notices, which may be after the next submit)."""
    processes = getattr(pool, "_processes", None) or {}
    return bool(getattr(pool, "_broken", False)) or any(
        process.exitcode is not None for process in list(processes.values())
    )


class Runtime:
    """Invokes the functions of `specs`, each in its own pool of worker processes."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        envs: Mapping[str, Mapping[str, str]],
        *,
        max_workers: int = 4,
        stdout_to_stderr: bool = False,
    ) -> None:
        self._configs = {
            fid: WorkerConfig.of(spec, envs[fid], stdout_to_stderr) for fid, spec in specs.items()
        }
        self._max_workers = max_workers
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")
        self._markers = Path(tempfile.mkdtemp(prefix="cashew-invocations-"))
        self._closed = False

    def invoke(self, function_id: str, event: Any) -> Invocation:
        """Run `function_id` on `event` and wait for the outcome."""
        request_id = str(uuid.uuid4())
        started = self._markers / request_id
        try:
            for attempt in (1, 2):
                pool = self._pool(function_id)
                if pool is None:  # shut down: a new pool's workers would outlive the stack
                    return Invocation(request_id, error={
                        "errorMessage": "the runtime is shut down",
                        "errorType": "Runtime.ExitError", "requestId": request_id,
                    })  # fmt: skip
                try:  # the worker enforces the timeout; this wait includes time queued
                    payload, error = pool.submit(_run, event, request_id, str(started)).result()
                    break
                except BrokenProcessPool:
                    self._discard(function_id, pool)
                    # A worker that died before this invocation began (killed between
                    # invocations): nothing of it ran, so a new environment serves it.
                    if attempt == 1 and not started.exists():
                        continue
                    payload, error = (
                        None,
                        {
                            "errorMessage": "the execution environment exited",
                            "errorType": "Runtime.ExitError",
                        },
                    )
        finally:
            started.unlink(missing_ok=True)
        if error is not None:
            return Invocation(request_id, error={**error, "requestId": request_id})
        return Invocation(request_id, payload=json.loads(payload) if payload is not None else None)

    def shutdown(self, grace: float = 10.0) -> None:
        """Every pool shut down at once (one after another, each waiting for its workers, a
        stack of forty functions could outlast SIGTERM's grace on a loaded machine); a worker
        still invoking after `grace` seconds is terminated, as Lambda ends an environment."""
        with self._lock:
            pools, self._pools, self._closed = list(self._pools.values()), {}, True
        workers = [
            p for pool in pools for p in list((getattr(pool, "_processes", None) or {}).values())
        ]
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.terminate()
                worker.join(1.0)
        shutil.rmtree(self._markers, ignore_errors=True)

    def _pool(self, function_id: str) -> ProcessPoolExecutor | None:
        """The function's pool; one with a dead worker (killed between invocations, say) is
        replaced before it is given work, as Lambda replaces a dead execution environment.
        None once the runtime is shut down."""
        with self._lock:
            if self._closed:
                return None
            pool = self._pools.get(function_id)
            if pool is not None and _has_dead_worker(pool):
                del self._pools[function_id]
                pool.shutdown(wait=False, cancel_futures=True)
            if function_id not in self._pools:
                self._pools[function_id] = ProcessPoolExecutor(
                    self._max_workers,
                    mp_context=self._context,
                    initializer=_start_worker,
                    initargs=(self._configs[function_id],),
                )
            return self._pools[function_id]

    def _discard(self, function_id: str, pool: ProcessPoolExecutor) -> None:
        """Forget a pool whose worker died; the next invocation starts a new one."""
        with self._lock:
            if self._pools.get(function_id) is pool:
                del self._pools[function_id]
        pool.shutdown(wait=False, cancel_futures=True)
