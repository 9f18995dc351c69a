"""`make reconcile`: one reconciliation run now, against the running `make dev`, with the
scheduled function's own configuration (template.yaml's ReconcileFunction) and code
(cashew.payments.reconcile); it prints the run's summary as JSON.

    python -m local.reconcile [--endpoint URL]

Any CASHEW_* variable set for the command reaches the run, over the template's value, as for
`make dev` (CASHEW_AUTHORIZATION_TTL=30 make reconcile, say).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from local.cfn import load_template
from local.provision import provision
from local.schedules import RECONCILE_FUNCTION
from local.specs import function_env, functions

MAX_RUN_MS = 120_000


def main(argv: list[str] | None = None) -> int:
    from local import aws  # noqa: PLC0415 - only the command needs the endpoint's clients

    port = int(os.environ.get("CASHEW_AWS_PORT", aws.DEFAULT_PORT))
    parser = argparse.ArgumentParser(prog="python -m local.reconcile", description=__doc__)
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{port}")
    args = parser.parse_args(argv)
    template = load_template()
    try:
        resources = provision(template, aws.clients(args.endpoint))
    except Exception as exc:  # noqa: BLE001 - any failure here means: no local stack there
        print(f"cannot reach the stack at {args.endpoint} (is `make dev` running?): {exc}")
        return 1
    spec = functions(template)[RECONCILE_FUNCTION]
    os.environ.update(function_env(spec, resources, args.endpoint))
    from cashew.payments import reconcile  # noqa: PLC0415 - needs the environment

    report = reconcile.run()
    print(json.dumps(report.as_dict(), sort_keys=True), flush=True)
    return 0 if not report.failed else 1


if __name__ == "__main__":
    sys.exit(main())
