"""`python -m bench.compare --against REV` (make bench-compare AGAINST=REV): each function's
cold import here against the same function at git revision REV, in pairs.

A one-off worktree of REV is checked out beside this one. For every function of this
template.yaml that REV's template also has (by logical id), the two handler modules are
imported in fresh interpreters in turn, A (this tree) then B (REV), `--rounds` times, each
with its own tree's CodeUri and layer dirs and with its own template's environment resolved
against one embedded endpoint (see bench/imports.py: interpreter start-up is not timed, an
import that called AWS would fail). The ratio of each pair (A/B) is taken, so a machine
whose speed drifts slows both sides of a pair alike; the median ratio is printed per
function, and the exit status is 1 when one is above `--limit` (default 1.10: more than
10 % slower than at REV).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess  # nosec B404 # runs git with fixed arguments, no shell
import sys
import tempfile
from pathlib import Path

from bench.harness import local_stack
from bench.imports import NO_AWS, time_import, warm
from local.cfn import REPO_ROOT, load_template
from local.specs import function_env, functions


def _git(*args: str) -> None:
    subprocess.run(["git", "-C", str(REPO_ROOT), *args], check=True, capture_output=True)  # nosec B603 B607


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=9, help="pairs per function (default 9)")
    parser.add_argument("--limit", type=float, default=1.10, help="the highest median ratio")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cashew-bench-") as scratch:
        other = Path(scratch) / "tree"
        _git("worktree", "add", "--detach", str(other), args.against)
        try:
            return _compare(other, args.rounds, args.limit, args.against)
        finally:
            _git("worktree", "remove", "--force", str(other))


def _compare(other: Path, rounds: int, limit: float, revision: str) -> int:
    theirs = functions(load_template(other / "template.yaml"), other)
    worst: list[str] = []
    print(f"cold import here / at {revision}: median of {rounds} pairs (ms here, ms there)")
    with local_stack() as stack:
        for function_id, mine in stack.functions.items():
            if function_id not in theirs:
                print(f"{function_id:40} new (not at {revision})")
                continue
            spec = theirs[function_id]
            env_a = function_env(mine, stack.resources, NO_AWS)
            env_b = function_env(spec, stack.resources, NO_AWS)
            warm(mine, env_a)
            warm(spec, env_b)
            ratios, here, there = [], [], []
            for _ in range(rounds):
                a = time_import(mine, env_a, 1, warm_up=False)
                b = time_import(spec, env_b, 1, warm_up=False)
                here.append(a.median_ms)
                there.append(b.median_ms)
                ratios.append(a.median_ms / b.median_ms)
            ratio = statistics.median(ratios)
            mark = "  SLOWER" if ratio > limit else ""
            print(
                f"{function_id:40} {ratio:5.2f}  ({statistics.median(here):6.1f},"
                f" {statistics.median(there):6.1f}){mark}"
            )
            if ratio > limit:
                worst.append(function_id)
    if worst:
        print(f"\nbench: more than {limit:.2f}x the cold import at {revision}: {', '.join(worst)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
