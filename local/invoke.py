"""`python -m local.invoke FUNCTION EVENT.json`: one invocation, like `sam local invoke`.

FUNCTION is a logical id of template.yaml (HealthFunction); EVENT.json a file, or - for stdin.
Uses the AWS endpoint on CASHEW_AWS_PORT (default 4566) when one is listening there (a
running `local.dev`), otherwise an embedded one, provisioned, for this invocation only. The
handler's return value is printed as JSON on stdout, its logs go to stderr; on a handler
error, the error object is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys

from local import aws
from local.cfn import ParameterError, load_template, local_parameters
from local.provision import provision
from local.runtime import Runtime
from local.specs import function_env, functions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.invoke", description=__doc__.splitlines()[0]
    )
    parser.add_argument("function", help="logical id of an AWS::Serverless::Function")
    parser.add_argument("event", help="path of the event JSON, or - for stdin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    template = load_template()
    specs = functions(template)
    if args.function not in specs:
        parser.error(f"no function {args.function!r}; the template has: {', '.join(specs)}")
    with sys.stdin if args.event == "-" else open(args.event, encoding="utf-8") as file:
        event = json.load(file)

    try:
        parameters = local_parameters(template)  # CASHEW_LOCAL_PARAMETERS, as for local.dev
    except ParameterError as error:
        parser.exit(2, f"cannot invoke: {error}\n")
    port = int(os.environ.get("CASHEW_AWS_PORT", aws.DEFAULT_PORT))
    with contextlib.ExitStack() as stack:
        if aws.is_listening(port):
            url = f"http://127.0.0.1:{port}"
        else:
            endpoint, url = aws.start(0)
            stack.callback(endpoint.stop)
        resources = provision(template, aws.clients(url), parameters)
        spec = specs[args.function]
        runtime = Runtime(
            {spec.logical_id: spec},
            {spec.logical_id: function_env(spec, resources, url)},
            max_workers=1,
            stdout_to_stderr=True,
        )
        stack.callback(runtime.shutdown)
        invocation = runtime.invoke(spec.logical_id, event)
    print(json.dumps(invocation.payload if invocation.ok else invocation.error, indent=2))
    return 0 if invocation.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
