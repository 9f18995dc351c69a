"""Loading a function's handler as Lambda's Python runtime does, written once for the local
stack's workers, the tests, the bench and tools/openapi.

The handler file is `<CodeUri>/<module>.py` of template.yaml's `Handler: <module>.<attr>`. It
is executed with the function's layers on `sys.path` (as /opt/python is) and its code
directory in front of them (as /var/task is), and registered in `sys.modules` under its
name while and after it runs, as `import` would register it (pydantic resolves a model's
annotations through it).

Only the standard library is imported here: the bench's export worker measures the memory
of a process that has loaded one handler, and nothing of the local stack may add to it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

Handler = Callable[[Any, Any], Any]


class HandlerSource(Protocol):
    """What loading needs of a function; `local.specs.FunctionSpec` has it."""

    @property
    def code_dir(self) -> Path | str: ...

    @property
    def handler_module(self) -> str: ...

    @property
    def handler_attr(self) -> str: ...

    @property
    def layer_dirs(self) -> Sequence[Path | str]: ...


def load_module(
    source: HandlerSource, name: str | None = None, *, resident: bool = False
) -> ModuleType:
    """The handler module of `source`, executed anew as module `name` (by default the
    handler module's own name, as Lambda imports it): every call is the module state of a
    new execution environment. Callers that want a warm instance keep what they loaded.

    The layers missing from `sys.path` are put at its front and stay (a handler may import
    from them when it runs). The code directory is in front of them while the module runs;
    with `resident` (the process is the function's execution environment, a local worker)
    it stays there too, as /var/task does. Otherwise it is taken out again, so that in a
    process that loads many functions one function's files never answer another's imports.
    ModuleNotFoundError when the file does not exist; whatever the module raises, with
    nothing of it left in `sys.modules`.
    """
    module_name = name or source.handler_module
    code_dir = str(source.code_dir)
    path = os.path.join(code_dir, f"{source.handler_module}.py")
    if not os.path.isfile(path):
        raise ModuleNotFoundError(f"No module named {source.handler_module!r}", path=path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no loader for {path}", path=path)
    added = [entry for entry in (code_dir, *map(str, source.layer_dirs)) if entry not in sys.path]
    sys.path[:0] = added
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    finally:
        if not resident and code_dir in added:
            sys.path.remove(code_dir)
    return module


def load_handler(
    source: HandlerSource, name: str | None = None, *, resident: bool = False
) -> Handler:
    """The handler function of `source` (`Handler: <module>.<attr>`) from `load_module`;
    AttributeError when the module has no such function."""
    handler = getattr(load_module(source, name, resident=resident), source.handler_attr, None)
    if not callable(handler):
        raise AttributeError(f"{source.handler_module} has no function {source.handler_attr}")
    loaded: Handler = handler
    return loaded
