"""The local stack: template.yaml run on one machine, with no cloud account and no Docker.

- `local.cfn`       reads template.yaml: parameters, Rules, intrinsic functions.
- `local.provision` creates its tables, queues, buses, keys and secrets on an endpoint.
- `local.specs`     its functions and APIs as the Serverless transform builds them.
- `local.handlers`  loads a handler as Lambda does (the stack, tests, bench and tools).
- `local.events`    the events/ samples and API Gateway proxy events made from them.
- `local.aws`       the embedded AWS endpoint (moto), serving one request at a time.
- `local.runtime`   runs handlers the way Lambda does, in worker processes per function.
- `local.api`       the API Gateway front: routes, the authorizer, gateway responses.
- `local.consumers` the SQS event source mappings.
- `local.dev`       `python -m local.dev`: all of the above, until Ctrl-C or SIGTERM.
- `local.invoke`    `python -m local.invoke FUNCTION EVENT.json`: one invocation.
"""
