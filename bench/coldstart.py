"""Cold starts as Lambda pays them: INIT CPU, first-invoke CPU, and the modelled response.

For every API function (and the authorizer), `--cold-runs` times over: a fresh interpreter
(`sys.executable -I`, the function's sys.path and exact environment, pointed at the running
embedded endpoint) imports the handler module and serves one real request, prepared by the
parent as the bench's operations prepare them. The child measures its own CPU time
(`time.process_time`, every thread of the process) over

- INIT: the import of the handler module (and, in the eager mode, the creation of the AWS
  clients its first request uses: `cashew.aws.prepare`);
- the first invoke: `lambda_handler(event, context)`.

The endpoint runs in the parent, so its work is not counted: the child's CPU is what the
function's own execution environment would spend. Lambda gives INIT the full CPU of the
machine and an invocation a share proportional to memory (1 vCPU at 1,769 MB), so the
modelled cold response is INIT CPU + first-invoke CPU x 1769 / MemorySize; network time is
left out (the same for every choice). Each function is measured in two modes:

- lazy: no client exists before the first request (AWS_LAMBDA_INITIALIZATION_TYPE unset,
  so the module's own `cashew.aws.prepare` does nothing, as in tests);
- eager: Lambda's environment (AWS_LAMBDA_INITIALIZATION_TYPE=on-demand), and the clients
  of the services the lazy run's first request called are prepared in INIT.

The baseline B (`bench/baseline_function.py`: Powertools Logger, Metrics and the REST
resolver, a DynamoDB client at module scope, one GetItem) is measured the same way, and
every function's figure is reported as a ratio to B's, from the same run.

Both modes run with bytecode, as `make build` ships every module (tools/bytecode.py). Each
function (in its chosen mode) and B are also measured without any, as `sam build` alone ships
them: the child imports from a tree of the same sources with no `__pycache__` (the
function's directory, the layer's, and the layer's third-party packages: the distributions
its requirements.txt names and what they require, from this virtualenv), with `-B`, so it
compiles every module of ours and of the layer's packages it imports, as a Lambda
environment must on its read-only filesystem; the runtime's own packages (boto3, botocore)
and the standard library keep their bytecode, as in Lambda.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import statistics
import subprocess  # nosec B404 # runs this repository's own Python, no shell
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from local.specs import FunctionSpec, function_env

FULL_CPU_MB = 1769  # Lambda's memory size at which a function has one full vCPU
BASELINE = "Baseline"
BASELINE_MEMORY = 1024
GOAL_RATIO = 1.2
_TIMEOUT = 120
LAYER_REQUIREMENTS = Path(__file__).resolve().parents[1] / "layers/shared/python/requirements.txt"

# stdin: one JSON object (paths, module, attr, event, prepare, function). Writes one JSON
# line to the stdout it was given; the handler's own output (logs, metrics) goes to stderr.
_CHILD = r"""
import json, os, sys, time
config = json.loads(sys.stdin.readline())
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.path[:0] = config["paths"]
import importlib

class Context:
    function_name = config["function"]
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:" + config["function"]
    memory_limit_in_mb = config["memory"]
    aws_request_id = config["request_id"]
    log_group_name = "/aws/lambda/" + config["function"]
    log_stream_name = "bench"
    identity = None
    client_context = None
    def get_remaining_time_in_millis(self):
        return 10_000

context = Context()
started = time.process_time()
module = importlib.import_module(config["module"])
if config["prepare"]:
    from cashew import aws
    aws.prepare(*config["prepare"])
handler = getattr(module, config["attr"])
init_cpu = time.process_time() - started
services = []
aws = sys.modules.get("cashew.aws")
if aws is not None:  # which clients the request makes (not timed: the patch is made before)
    make_client, make_ses = aws._client, aws.sesv2
    def recording(service):
        services.append(service)
        return make_client(service)
    def recording_ses():
        services.append("sesv2")
        return make_ses()
    aws._client, aws.sesv2 = recording, recording_ses
if os.environ.get("CASHEW_BENCH_PROFILE"):  # where the first invoke's CPU goes, on stderr
    import cProfile, pstats
    profile = cProfile.Profile()
    profile.enable()
started = time.process_time()
result = handler(config["event"], context)
invoke_cpu = time.process_time() - started
if os.environ.get("CASHEW_BENCH_PROFILE"):
    profile.disable()
    pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
out.write(json.dumps({
    "init_ms": init_cpu * 1000, "invoke_ms": invoke_cpu * 1000, "result": result,
    "services": sorted(set(services)), "boto3_at_init": config["prepare"] != [],
}) + "\n")
out.flush()
"""


class ColdStartError(RuntimeError):
    """A child could not import its handler or serve its request."""


def _layer_distributions() -> list[importlib.metadata.Distribution]:
    """The distributions the layer's requirements.txt names and everything they require
    (extras as named), as installed in this virtualenv."""
    found: dict[str, importlib.metadata.Distribution] = {}
    wanted: list[Requirement] = [
        Requirement(line.split("#", 1)[0].strip())
        for line in LAYER_REQUIREMENTS.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    while wanted:
        requirement = wanted.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in found:
            continue
        found[name] = dist = importlib.metadata.distribution(requirement.name)
        for text in dist.requires or []:
            required = Requirement(text)
            extras = requirement.extras or {""}
            if required.marker is None or any(
                required.marker.evaluate({"extra": extra}) for extra in extras
            ):
                wanted.append(required)
    return list(found.values())


def _mirror(files: Iterator[tuple[Path, Path]]) -> None:
    """Links `target` to `source` for each pair, bytecode left out."""
    for source, target in files:
        if source.suffix == ".pyc" or "__pycache__" in source.parts or not source.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source)


class SourceOnly:
    """Directories as `sam build` alone ships them: their sources and no bytecode (links to
    this repository's and this virtualenv's files, under `root`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        self._mirrored: dict[str, str] = {}
        for dist in _layer_distributions():
            base = Path(str(dist.locate_file("")))
            _mirror(
                (base / str(path), self.site / str(path))
                for path in dist.files or []
                if ".." not in Path(str(path)).parts
            )

    def paths(self, paths: list[str]) -> list[str]:
        """The mirrors of `paths`, then the layer's third-party packages."""
        mirrored = []
        for path in paths:
            if path not in self._mirrored:
                target = self.root / f"dir{len(self._mirrored)}"
                _mirror(
                    (Path(here) / name, target / Path(here).relative_to(path) / name)
                    for here, dirs, names in os.walk(path)
                    if "__pycache__" not in Path(here).parts
                    for name in names
                )
                self._mirrored[path] = str(target)
            mirrored.append(self._mirrored[path])
        return [*mirrored, str(self.site)]


@dataclass(frozen=True)
class Run:
    init_ms: float
    invoke_ms: float
    memory: int

    @property
    def modelled_ms(self) -> float:
        return self.init_ms + self.invoke_ms * FULL_CPU_MB / self.memory


@dataclass(frozen=True)
class ColdStart:
    function_id: str
    memory: int
    lazy: tuple[Run, ...]
    eager: tuple[Run, ...]
    services: tuple[str, ...]  # what the first request called (clients the eager mode makes)
    declared: tuple[str, ...] | None  # what the handler module prepares (None: lazy)
    without_bytecode: tuple[Run, ...] = ()  # the chosen mode, from sources alone

    @property
    def chosen(self) -> str:
        return "lazy" if self.declared is None else "eager"

    def median(self, mode: str, figure: str) -> float:
        runs = {"lazy": self.lazy, "eager": self.eager}.get(mode, self.without_bytecode)
        return float(statistics.median(getattr(run, figure) for run in runs))

    @property
    def better(self) -> str:
        if not self.services:
            return "lazy"  # nothing to prepare: the modes are the same
        eager, lazy = self.median("eager", "modelled_ms"), self.median("lazy", "modelled_ms")
        return "eager" if eager < lazy else "lazy"


def _child(
    spec_paths: list[str],
    *,
    module: str,
    attr: str,
    env: Mapping[str, str],
    cwd: Path,
    event: Any,
    prepare: list[str],
    function: str,
    memory: int,
    bytecode: bool = True,
) -> dict[str, Any]:
    config = {
        "paths": spec_paths, "module": module, "attr": attr, "event": event,
        "prepare": prepare, "function": function, "memory": memory,
        "request_id": str(uuid.uuid4()),
    }  # fmt: skip
    child = subprocess.run(  # nosec B603 # fixed argv of sys.executable, no shell
        [sys.executable, "-I", *([] if bytecode else ["-B"]), "-c", _CHILD],
        input=json.dumps(config) + "\n",
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT,
    )
    lines = child.stdout.strip().splitlines()
    if env.get("CASHEW_BENCH_PROFILE"):
        Path(env["CASHEW_BENCH_PROFILE"]).with_suffix(f".{function}.txt").write_text(child.stderr)
    if child.returncode != 0 or not lines:
        raise ColdStartError(f"{function}: the cold child failed:\n{child.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


_PREPARE = re.compile(r"\naws\.prepare\(([^)]*)\)")


def declared_services(spec: FunctionSpec) -> tuple[str, ...] | None:
    """The services the handler module prepares in INIT (`aws.prepare(...)` at module
    scope); None when it prepares nothing (lazy)."""
    source = (spec.code_dir / f"{spec.handler_module.replace('.', '/')}.py").read_text()
    found = _PREPARE.search(source)
    return tuple(sorted(re.findall(r'"(\w+)"', found.group(1)))) if found else None


def measure(
    spec: FunctionSpec,
    *,
    resources: Any,
    endpoint: str,
    extra_env: Mapping[str, str],
    prepare: Callable[[], tuple[Any, Callable[[Any], Any]]],
    runs: int,
    source_only: SourceOnly | None = None,
) -> ColdStart:
    """`runs` lazy and `runs` eager cold starts of `spec`, alternated (and, with
    `source_only`, `runs` of its chosen mode without bytecode); `prepare` gives a fresh
    event and the check of its result."""
    paths = [str(spec.code_dir), *(str(layer) for layer in spec.layer_dirs)]
    declared = declared_services(spec)
    without: list[Run] = []
    base = {**function_env(spec, resources, endpoint), **extra_env}
    base.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    lambda_env = {**base, "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
    lazy: list[Run] = []
    eager: list[Run] = []
    services: list[str] = []
    for index in range(runs + 1):  # the first lazy run is unmeasured: it writes bytecode caches
        event, check = prepare()
        got = _child(paths, module=spec.handler_module, attr=spec.handler_attr, env=base,
                     cwd=spec.code_dir, event=event, prepare=[], function=spec.name,
                     memory=spec.memory)  # fmt: skip
        check(got["result"])
        services = got["services"]
        if index == 0:
            continue
        lazy.append(Run(got["init_ms"], got["invoke_ms"], spec.memory))
        event, check = prepare()
        got = _child(paths, module=spec.handler_module, attr=spec.handler_attr, env=lambda_env,
                     cwd=spec.code_dir, event=event, prepare=services, function=spec.name,
                     memory=spec.memory)  # fmt: skip
        check(got["result"])
        eager.append(Run(got["init_ms"], got["invoke_ms"], spec.memory))
        if source_only is not None:
            event, check = prepare()
            got = _child(source_only.paths(paths), module=spec.handler_module,
                         attr=spec.handler_attr, env=base if declared is None else lambda_env,
                         cwd=spec.code_dir, event=event,
                         prepare=[] if declared is None else services,
                         function=spec.name, memory=spec.memory, bytecode=False)  # fmt: skip
            check(got["result"])
            without.append(Run(got["init_ms"], got["invoke_ms"], spec.memory))
    return ColdStart(spec.logical_id, spec.memory, tuple(lazy), tuple(eager), tuple(services),
                     declared, tuple(without))  # fmt: skip


def baseline(
    table: str,
    key: dict[str, Any],
    env: Mapping[str, str],
    event: Any,
    runs: int,
    *,
    source_only: SourceOnly | None = None,
) -> ColdStart:
    """B, measured like the functions (its client is at module scope: eager by design)."""
    here = Path(__file__).resolve().parent
    env = {**env, "BENCH_TABLE": table, "BENCH_KEY": json.dumps(key),
           "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}  # fmt: skip
    measured: list[Run] = []
    without: list[Run] = []
    for index in range(runs + 1):
        for bytecode in (True, False) if source_only is not None and index else (True,):
            paths = [str(here)]
            if not bytecode and source_only is not None:
                paths = source_only.paths(paths)
            got = _child(paths, module="baseline_function", attr="lambda_handler", env=env,
                         cwd=here, event=event, prepare=[], function=BASELINE,
                         memory=BASELINE_MEMORY, bytecode=bytecode)  # fmt: skip
            if got["result"].get("statusCode") != 200:
                raise ColdStartError(f"the baseline answered {got['result']}")
            if index:
                (measured if bytecode else without).append(
                    Run(got["init_ms"], got["invoke_ms"], BASELINE_MEMORY)
                )
    return ColdStart(BASELINE, BASELINE_MEMORY, tuple(measured), tuple(measured), ("dynamodb",),
                     ("dynamodb",), tuple(without))  # fmt: skip


def figures(starts: list[ColdStart], base: ColdStart) -> dict[str, Any]:
    b = base.median("eager", "modelled_ms")
    b_without = base.median("without", "modelled_ms") if base.without_bytecode else None

    def without_bytecode(start: ColdStart) -> dict[str, Any]:
        if not start.without_bytecode or b_without is None:
            return {}
        modelled = start.median("without", "modelled_ms")
        return {
            "without_bytecode_init_cpu_ms": round(start.median("without", "init_ms"), 1),
            "without_bytecode_modelled_cold_ms": round(modelled, 1),
            "without_bytecode_ratio_to_baseline": round(modelled / b_without, 2),
        }

    def row(start: ColdStart) -> dict[str, Any]:
        mode = start.chosen
        modelled = start.median(mode, "modelled_ms")
        return {
            "memory_mb": start.memory,
            "chosen": mode,
            "better_by_figures": start.better,
            "services": list(start.services),
            "init_cpu_ms": round(start.median(mode, "init_ms"), 1),
            "first_invoke_cpu_ms": round(start.median(mode, "invoke_ms"), 1),
            "modelled_cold_ms": round(modelled, 1),
            "lazy_modelled_cold_ms": round(start.median("lazy", "modelled_ms"), 1),
            "eager_modelled_cold_ms": round(start.median("eager", "modelled_ms"), 1),
            "ratio_to_baseline": round(modelled / b, 2),
            **without_bytecode(start),
        }

    rows = {start.function_id: row(start) for start in starts}
    saved = [
        r["without_bytecode_modelled_cold_ms"] - r["modelled_cold_ms"]
        for r in rows.values()
        if "without_bytecode_modelled_cold_ms" in r
    ]
    worst = max(rows.values(), key=lambda r: r["ratio_to_baseline"]) if rows else None
    return {
        "baseline": {
            "init_cpu_ms": round(base.median("eager", "init_ms"), 1),
            "first_invoke_cpu_ms": round(base.median("eager", "invoke_ms"), 1),
            "modelled_cold_ms": round(b, 1),
            "memory_mb": BASELINE_MEMORY,
            **(
                {
                    "without_bytecode_init_cpu_ms": round(base.median("without", "init_ms"), 1),
                    "without_bytecode_modelled_cold_ms": round(b_without, 1),
                }
                if b_without is not None
                else {}
            ),
        },
        "bytecode_saves_median_ms": round(statistics.median(saved), 1) if saved else None,
        "functions": rows,
        "goal_ratio": GOAL_RATIO,
        "worst_ratio": worst["ratio_to_baseline"] if worst else None,
        "over_goal": sorted(f for f, r in rows.items() if r["ratio_to_baseline"] > GOAL_RATIO),
        "choice_differs_from_figures": sorted(
            f for f, r in rows.items() if r["chosen"] != r["better_by_figures"]
        ),
        # eager functions that prepare other clients than their first request uses
        "prepared_differs_from_used": sorted(
            start.function_id
            for start in starts
            if start.declared is not None and start.declared != tuple(sorted(start.services))
        ),
        "runs": len(base.lazy),
    }


def print_report(result: dict[str, Any]) -> None:
    b = result["baseline"]
    print(
        f"\nCold start as Lambda pays it (CPU ms, median of {result['runs']} fresh processes;"
        " modelled = INIT + first invoke x 1769 / MemorySize)"
    )
    print(
        f"  baseline B: INIT {b['init_cpu_ms']}, first invoke {b['first_invoke_cpu_ms']},"
        f" modelled {b['modelled_cold_ms']} ms at {b['memory_mb']} MB"
        + (
            f"; without bytecode {b['without_bytecode_modelled_cold_ms']} ms"
            if "without_bytecode_modelled_cold_ms" in b
            else ""
        )
    )
    print(
        f"  {'function':<30} {'MB':>5} {'mode':>5} {'INIT':>7} {'invoke':>7} {'modelled':>9}"
        f" {'lazy':>7} {'eager':>7} {'x B':>5} {'no pyc':>7} {'x B':>5}"
    )
    for function_id, r in result["functions"].items():
        flag = (
            ""
            if r["chosen"] == r["better_by_figures"]
            else f"  ({r['better_by_figures']} is faster)"
        )
        print(
            f"  {function_id:<30} {r['memory_mb']:>5} {r['chosen']:>5} {r['init_cpu_ms']:>7.1f}"
            f" {r['first_invoke_cpu_ms']:>7.1f} {r['modelled_cold_ms']:>9.1f}"
            f" {r['lazy_modelled_cold_ms']:>7.1f} {r['eager_modelled_cold_ms']:>7.1f}"
            f" {r['ratio_to_baseline']:>5.2f}"
            f" {r.get('without_bytecode_modelled_cold_ms', float('nan')):>7.1f}"
            f" {r.get('without_bytecode_ratio_to_baseline', float('nan')):>5.2f}{flag}"
        )
    if result.get("bytecode_saves_median_ms") is not None:
        print(
            f"  bytecode (make build) saves a median {result['bytecode_saves_median_ms']} ms of"
            " modelled cold start against sources alone (sam build)"
        )
    print(
        f"  worst {result['worst_ratio']} x B (goal <= {result['goal_ratio']});"
        f" over the goal: {', '.join(result['over_goal']) or 'none'}"
    )
    if result["prepared_differs_from_used"]:
        print(
            "  preparing other clients than their first request uses: "
            + ", ".join(result["prepared_differs_from_used"])
        )
