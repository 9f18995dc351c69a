"""Republish: publish again the payment and dispute changes that `PublishFailuresQueue`
describes, from the tables, through the publisher's own code (cashew.republish).
The log and the bus's consumers deduplicate on `outcome_id`, so running it twice, or on a
change that was published after all, applies nothing twice.

Locally, while `make dev` runs (`make republish`):
    python -m local.republish [--endpoint URL]
Deployed (your AWS credentials; the publisher function's own configuration):
    python -m scripts.republish --stack NAME [--region REGION]
"""

from __future__ import annotations

import argparse
import os
import sys

from local.cfn import load_template
from local.provision import provision
from local.specs import function_env, functions

PUBLISHER = "PublishOutcomesFunction"
LOCAL_WAIT = 1  # seconds of each long poll: the local queue answers at once


def main(argv: list[str] | None = None) -> int:
    from local import aws  # noqa: PLC0415 - only the command needs the endpoint's clients

    port = int(os.environ.get("CASHEW_AWS_PORT", aws.DEFAULT_PORT))
    parser = argparse.ArgumentParser(prog="python -m local.republish", description=__doc__)
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{port}")
    args = parser.parse_args(argv)
    template = load_template()
    try:
        resources = provision(template, aws.clients(args.endpoint))
    except Exception as exc:  # noqa: BLE001 - any failure here means: no local stack there
        print(f"cannot reach the stack at {args.endpoint} (is `make dev` running?): {exc}")
        return 1
    os.environ.update(function_env(functions(template)[PUBLISHER], resources, args.endpoint))
    from cashew import republish  # noqa: PLC0415 - needs the environment

    report = republish.run(wait=LOCAL_WAIT)
    print(report.summary())
    return 0 if not report.left else 1


if __name__ == "__main__":
    sys.exit(main())
