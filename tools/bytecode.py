"""Bytecode for what `sam build` made: every module compiled, so no cold start compiles one.

Lambda's filesystem is read-only, so Python cannot keep what it compiles there: a module
shipped without bytecode is compiled from source in every new execution environment, each
time it is imported. `sam build` ships none (wheels carry no bytecode, and it copies the
layer's and the functions' sources as they are), and bytecode checked by timestamp would not
help: SAM's zips date every file 1980-01-01, so no timestamp matches and Python compiles
anyway (aws/aws-lambda-builders#924). So every directory of `.aws-sam/build` gets bytecode
checked by the hash of its source (PEP 552, `checked-hash`): valid whatever the zip says
about times, and a source that does not match its bytecode is compiled again, never run
stale. The file names inside the bytecode are where Lambda puts them (`/opt/...` for a
layer, `/var/task/...` for a function), so tracebacks name the deployed files.

`make bench` measures what this saves (bench.coldstart: every function's cold start with and
without bytecode).

    python -m tools.bytecode            compile .aws-sam/build (make build runs it)
    python -m tools.bytecode --check    exit 1 unless every module there has valid bytecode
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import py_compile
import sys
from collections.abc import Iterator
from pathlib import Path

BUILD = Path(".aws-sam/build")
LAYER_ROOT = "/opt"  # a layer's content is extracted there
FUNCTION_ROOT = "/var/task"  # a function's code is extracted there
# A pyc's header: magic (4 bytes), flags (4: bit 0 hash-based, bit 1 checked), hash (8).
_HASH_BASED, _CHECKED = 0b01, 0b10


def artefacts(build: Path) -> Iterator[tuple[Path, str]]:
    """Each built artefact and where Lambda extracts it (a layer holds `python/`)."""
    for artefact in sorted(p for p in build.iterdir() if p.is_dir()):
        root = LAYER_ROOT if (artefact / "python").is_dir() else FUNCTION_ROOT
        yield artefact, root


def compile_build(build: Path, workers: int = 0) -> bool:
    """Bytecode for every module of `build` (`workers` processes; 0: one per core)."""
    ok = True
    for artefact, root in artefacts(build):
        ok &= bool(
            compileall.compile_dir(
                artefact,
                quiet=1,
                stripdir=str(artefact),
                prependdir=root,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                optimize=0,  # what Lambda's interpreter loads, whatever PYTHONOPTIMIZE says here
                workers=workers,
            )
        )
    return ok


def stale(build: Path) -> Iterator[str]:
    """Every module under `build` without bytecode that checks its source's hash and
    matches it."""
    for source in sorted(build.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source), optimization=""))
        if not cached.is_file():
            yield f"{source}: no bytecode"
            continue
        header = cached.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER or flags != _HASH_BASED | _CHECKED:
            yield f"{source}: bytecode not checked by its source's hash (or of another Python)"
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            yield f"{source}: bytecode of another source"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bytecode", description=__doc__)
    parser.add_argument("--build", type=Path, default=BUILD, help="sam build's output")
    parser.add_argument("--check", action="store_true", help="only check; compile nothing")
    parser.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    args = parser.parse_args(argv)
    if not args.build.is_dir():
        print(f"{args.build}: no such directory (run sam build first)", file=sys.stderr)
        return 1
    if not args.check and not compile_build(args.build, args.workers):
        print("bytecode: some modules did not compile", file=sys.stderr)
        return 1
    problems = list(stale(args.build))
    for problem in problems[:20]:
        print(problem, file=sys.stderr)
    if problems:
        print(f"bytecode: {len(problems)} modules without valid bytecode", file=sys.stderr)
        return 1
    modules = sum(1 for _ in args.build.rglob("*.py"))
    print(f"bytecode: all {modules} modules of {args.build} compiled, checked by hash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
