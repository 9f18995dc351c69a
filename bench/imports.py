"""Cold import time of each function's handler module, in fresh interpreters.

Each run is a new `sys.executable -I` process (isolated: no PYTHONPATH, no user site) whose
sys.path starts with the function's CodeUri dir and its layers' dirs, in Lambda's order,
and whose environment is exactly the function's (`local.specs.function_env`) with the AWS
endpoint pointed at a port where nothing listens: an import that called AWS would fail
instead of being timed. Only the `import <module>` statement is timed, with
time.perf_counter inside the child; interpreter start-up is not included. One unmeasured run
per function comes first, so that every measured run finds the bytecode caches written.
Functions are measured one after another, never in parallel.
"""

from __future__ import annotations

import json
import statistics
import subprocess  # nosec B404 # runs this repository's own Python, no shell
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.specs import FunctionSpec

NO_AWS = "http://127.0.0.1:1"

# argv: JSON list of sys.path entries, module name. Prints one JSON line.
_CHILD = """\
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
module = sys.argv[2]
started = time.perf_counter()
__import__(module)
elapsed = time.perf_counter() - started
print(json.dumps({"ms": elapsed * 1000, "boto3": "boto3" in sys.modules}))
"""
_TIMEOUT_SECONDS = 60


class ImportFailedError(RuntimeError):
    """A handler module could not be imported with its function's environment."""


@dataclass(frozen=True)
class ImportTiming:
    function_id: str
    module: str
    runs_ms: tuple[float, ...]
    loads_boto3: bool  # boto3 (and botocore's client machinery) was imported too

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)


def _import_once(spec: FunctionSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """One cold import of the handler module of `spec` in a child interpreter: its result
    line (`ms`, `boto3`)."""
    paths = [str(spec.code_dir), *(str(layer) for layer in spec.layer_dirs)]
    command = [sys.executable, "-I", "-c", _CHILD, json.dumps(paths), spec.handler_module]
    child = subprocess.run(  # nosec B603 # fixed argv of sys.executable, no shell
        command,
        env=dict(env),
        cwd=spec.code_dir,
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT_SECONDS,
    )
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        raise ImportFailedError(
            f"import {spec.handler_module} ({spec.logical_id}) failed:\n{child.stderr}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def warm(spec: FunctionSpec, env: Mapping[str, str]) -> None:
    """One untimed import, which writes the bytecode caches the timed ones then read."""
    _import_once(spec, env)


def time_import(
    spec: FunctionSpec, env: Mapping[str, str], runs: int, *, warm_up: bool = True
) -> ImportTiming:
    """`runs` timed imports of the handler module of `spec`, after one untimed one (unless
    `warm_up` is False: the bytecode caches are known to be written, see `warm`)."""
    if warm_up:
        warm(spec, env)
    results = [_import_once(spec, env) for _ in range(runs)]
    samples = tuple(float(result["ms"]) for result in results)
    loads_boto3 = any(bool(result["boto3"]) for result in results)
    return ImportTiming(spec.logical_id, spec.handler_module, samples, loads_boto3)


def time_imports(
    specs: Mapping[str, FunctionSpec],
    env_of: Callable[[FunctionSpec], Mapping[str, str]],
    runs: int,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, ImportTiming]:
    """Every function's import timing, measured sequentially, in template order."""
    timings = {}
    for function_id, spec in specs.items():
        progress(f"import {spec.handler_module} ({function_id})")
        timings[function_id] = time_import(spec, env_of(spec), runs)
    return timings
