"""Logger and metrics: created once, shared by every module.

There is no Powertools Tracer: it needs aws-xray-sdk, which pulls botocore into the layer
(shadowing the runtime's copy). Functions run with `Tracing: Active`, so X-Ray still records
every invocation and its AWS calls' latency at the Lambda level.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger(log_uncaught_exceptions=True)
metrics = Metrics()
