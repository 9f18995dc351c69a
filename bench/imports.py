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


def time_import(
    spec: FunctionSpec, env: Mapping[str, str], runs: int, *, warm_up: bool = True
) -> ImportTiming:
    """`runs` timed imports of the handler module of `spec`, after one untimed one (unless
    `warm_up` is False: the bytecode caches are known to be written)."""
    paths = [str(spec.code_dir), *(str(layer) for layer in spec.layer_dirs)]
    command = [sys.executable, "-I", "-c", _CHILD, json.dumps(paths), spec.handler_module]
    samples: list[float] = []
    loads_boto3 = False
    for run in range(0 if warm_up else 1, runs + 1):
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
        result = json.loads(lines[-1])
        loads_boto3 = loads_boto3 or bool(result["boto3"])
        if run:  # run 0 writes the bytecode caches
            samples.append(float(result["ms"]))
    return ImportTiming(spec.logical_id, spec.handler_module, tuple(samples), loads_boto3)


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
