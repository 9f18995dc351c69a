"""tools/bytecode.py: what `make build` adds to sam build's output, and what check-layer checks."""

from __future__ import annotations

import importlib.util
import marshal
import py_compile
from pathlib import Path

import pytest

from tools import bytecode


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build as sam makes it: a layer (its modules under python/) and a function."""
    layer = tmp_path / "SharedLayer" / "python" / "cashew"
    layer.mkdir(parents=True)
    (layer / "__init__.py").write_text("")
    (layer / "money.py").write_text("MAX = 100\n")
    function = tmp_path / "GetMeFunction"
    function.mkdir()
    (function / "get_me.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    return tmp_path


def _code_of(source: Path) -> object:
    cached = Path(importlib.util.cache_from_source(str(source)))
    return marshal.loads(cached.read_bytes()[16:])


def test_every_module_gets_bytecode_checked_by_hash_naming_where_lambda_puts_it(build: Path):
    assert bytecode.main(["--build", str(build), "--check"]) == 1  # sam build ships none
    assert bytecode.main(["--build", str(build), "--workers", "1"]) == 0
    assert list(bytecode.stale(build)) == []
    money = build / "SharedLayer" / "python" / "cashew" / "money.py"
    handler = build / "GetMeFunction" / "get_me.py"
    assert _code_of(money).co_filename == "/opt/python/cashew/money.py"  # type: ignore[attr-defined]
    assert _code_of(handler).co_filename == "/var/task/get_me.py"  # type: ignore[attr-defined]
    # a zip that dates every file 1980 changes nothing: the hash is of the source
    for source in (money, handler):
        source.touch()
    assert list(bytecode.stale(build)) == []


def test_the_check_refuses_bytecode_of_another_source_or_checked_by_timestamp(build: Path):
    assert bytecode.main(["--build", str(build), "--workers", "1"]) == 0
    money = build / "SharedLayer" / "python" / "cashew" / "money.py"
    money.write_text("MAX = 200\n")  # edited after its bytecode was made
    handler = build / "GetMeFunction" / "get_me.py"
    py_compile.compile(str(handler), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    problems = list(bytecode.stale(build))
    assert problems == [
        f"{handler}: bytecode not checked by its source's hash (or of another Python)",
        f"{money}: bytecode of another source",
    ]
    assert bytecode.main(["--build", str(build), "--check"]) == 1
