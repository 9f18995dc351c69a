"""Lambda SnapStart: what must not be shared by the environments restored from one snapshot.

With SnapStart (template parameter `SnapStart`), Lambda runs INIT once per published version,
snapshots the memory, and restores that snapshot into every new execution environment. What
INIT left in memory is then identical in all of them. The audit of what Cashew keeps in
memory (docs/CAPACITY.md, "SnapStart: the uniqueness audit") found:

- ids (ULIDs) and tokens, nonces and secrets (`secrets`, `os.urandom`): drawn from the OS at
  the moment of use, which Lambda reseeds on restore; none is drawn in INIT. python-ulid's
  default generator keeps the last millisecond and randomness to stay monotonic: a restored
  copy would continue the snapshot's sequence within that millisecond, so it is reset here;
- `random` (retry jitter only, never a secret): seeded at import, so every restored copy
  would draw the same jitter and retry in step; reseeded here;
- cached secrets (signing keys, the gateway's key): never fetched in INIT, and forgotten here
  in case a future INIT does, so each environment reads them itself;
- AWS clients made in INIT (`cashew.aws.prepare`): they hold no connection (none is opened in
  INIT) and resolve credentials from the restored environment's provider; kept;
- settings (`get_settings()`): the environment, the same in every copy by design; kept.

The hooks are registered by `cashew.aws.prepare` when Lambda runs INIT for a snapshot
(AWS_LAMBDA_INITIALIZATION_TYPE=snap-start); `snapshot_restore_py` ships with Lambda's
Python runtime and is absent elsewhere.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable

SNAP_START = "snap-start"


def after_restore(forget_secrets: Callable[[], None]) -> None:
    """Make this restored environment's state its own."""
    random.seed(os.urandom(32))
    import ulid  # noqa: PLC0415 - only where ids are minted

    ulid.default_generator.policy = type(ulid.default_generator.policy)()
    forget_secrets()


def register(forget_secrets: Callable[[], None]) -> bool:
    """Register the restore hook if this INIT is for a snapshot; True if it was."""
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != SNAP_START:
        return False
    from snapshot_restore_py import register_after_restore  # noqa: PLC0415 - Lambda's runtime

    register_after_restore(functools.partial(after_restore, forget_secrets))
    return True
