"""The local stack: template.yaml run on one machine, with no cloud account and no Docker.

- `local.template`  reads template.yaml, provisions its resources, describes its functions.
- `local.aws`       the embedded AWS endpoint (moto), serving one request at a time.
- `local.runtime`   runs handlers the way Lambda does, in worker processes per function.
- `local.api`       the API Gateway front: routes, the authorizer, gateway responses.
- `local.consumers` the SQS event source mappings.
- `local.dev`       `python -m local.dev`: all of the above, until Ctrl-C or SIGTERM.
- `local.invoke`    `python -m local.invoke FUNCTION EVENT.json`: one invocation.
"""
