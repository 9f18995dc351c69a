"""AWS clients, created lazily on first use and reused across invocations.

boto3 is imported here and nowhere else, so an operation that makes no AWS call never pays
for it. Every client comes from one session (so botocore event hooks registered on it see
every call). Endpoints follow the standard `AWS_ENDPOINT_URL*` variables (the local stack
sets them); nothing here knows whether it talks to AWS or to the embedded endpoint.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cashew import snapstart

if TYPE_CHECKING:
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sqs import SQSClient

_MAKING = threading.RLock()


class _Once[T]:
    """`make`'s value for each arguments, made once even when threads ask for it together: a
    boto3 session is not thread safe (its clients are), and a consumer that works on a
    batch's records in threads (SendEmailsFunction) may make its clients lazily. One lock
    for every maker, re-entered when a client's maker asks for the session."""

    def __init__(self, make: Callable[..., T]) -> None:
        self._make = make
        self._made: dict[tuple[Any, ...], T] = {}
        functools.update_wrapper(self, make)

    def __call__(self, *args: Any) -> T:
        try:
            return self._made[args]
        except KeyError:
            with _MAKING:
                if args not in self._made:
                    self._made[args] = self._make(*args)
                return self._made[args]

    def cache_clear(self) -> None:
        with _MAKING:
            self._made.clear()

    def made(self) -> int:
        """How many values are made (one per distinct arguments)."""
        return len(self._made)


_CONFIG: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 3},
    "connect_timeout": 2,
    "read_timeout": 5,
    "tcp_keepalive": True,
}


@_Once
def session() -> boto3.session.Session:
    import boto3  # noqa: PLC0415 - paid only by operations that call AWS

    return boto3.session.Session()


@_Once
def _client(service: str) -> Any:
    from botocore.config import Config  # noqa: PLC0415

    return session().client(service, config=Config(**_CONFIG))


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client


def events() -> EventBridgeClient:
    client: EventBridgeClient = _client("events")
    return client


def kms() -> KMSClient:
    client: KMSClient = _client("kms")
    return client


@_Once
def s3() -> S3Client:
    """S3 with SigV4 signatures, which presigned links need (the reports' downloads)."""
    from botocore.config import Config  # noqa: PLC0415

    config = Config(**{**_CONFIG, "read_timeout": 60}, signature_version="s3v4")
    client: S3Client = session().client("s3", config=config)
    return client


@_Once
def sesv2() -> SESV2Client:
    """SES v2, making each call once: botocore's retries could send an email twice (a send
    whose answer was lost), so a failed send is the caller's to retry, or not."""
    from botocore.config import Config  # noqa: PLC0415

    config = Config(**{**_CONFIG, "retries": {"mode": "standard", "total_max_attempts": 1}})
    client: SESV2Client = session().client("sesv2", config=config)
    return client


@_Once
def _secrets() -> SecretsProvider:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: PLC0415

    return SecretsProvider(boto3_client=_client("secretsmanager"))


def secret_json(secret_id: str, max_age: int) -> dict[str, Any]:
    """A JSON secret from Secrets Manager, cached in memory for `max_age` seconds."""
    value = _secrets().get(secret_id, transform="json", max_age=max_age)
    if not isinstance(value, dict):
        raise TypeError(f"secret {secret_id} is not a JSON object")
    return value


_CLIENTS: dict[str, Callable[[], Any]] = {
    "dynamodb": dynamodb,
    "sqs": sqs,
    "events": events,
    "kms": kms,
    "sesv2": sesv2,
    "s3": s3,
    "secretsmanager": lambda: _client("secretsmanager"),
}


def prepare(*services: str) -> None:
    """Create these clients now if this is Lambda's INIT phase.

    Lambda runs INIT with the machine's full CPU and an invocation with a share of it
    proportional to memory (a 1,024 MB function gets 0.58 vCPU), so the ~200 ms of CPU that
    importing boto3 and building clients costs is cheaper paid here. A handler module calls
    this at module scope when `make bench` shows that its cold response is faster so
    (bench.coldstart). Outside Lambda (AWS_LAMBDA_INITIALIZATION_TYPE unset: tests, tools)
    it does nothing, and clients stay lazy. Creating a client makes no request.
    """
    if not os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):
        return
    snapstart.register(forget_secrets)
    for service in services:
        _CLIENTS[service]()


def forget_secrets() -> None:
    """Drop every cached secret: the next use reads it again (what is derived from a secret,
    signing keys and the gateway, is keyed by the secret's value). Clients are kept."""
    _secrets.cache_clear()


def reset() -> None:
    """Forget every client and cached secret (tests point the process at a new endpoint)."""
    for cached in (session, _client, sesv2, s3, _secrets):
        cached.cache_clear()
