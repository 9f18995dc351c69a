"""cashew.notifications.ses: what a failed send means. Only an answer that says SES did not
take the message is `Refused` (sent again later); anything that may have left is `Unknown`
(never sent again: at most once)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from cashew.notifications import ses


class _Client:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def send_email(self, **_: Any) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


@pytest.mark.parametrize(
    ("outcome", "means"),
    [
        ({"MessageId": "m-1"}, None),
        (_error(429, "TooManyRequestsException"), ses.Refused),
        (_error(400, "MessageRejected"), ses.Refused),
        (EndpointConnectionError(endpoint_url="https://email"), ses.Refused),
        (ConnectTimeoutError(endpoint_url="https://email"), ses.Refused),
        (NoCredentialsError(), ses.Refused),
        (_error(500, "InternalFailure"), ses.Unknown),
        (ReadTimeoutError(endpoint_url="https://email"), ses.Unknown),
        (RuntimeError("the connection broke mid-answer"), ses.Unknown),
        ({}, ses.Unknown),  # a 2xx without a message id: SES took it
    ],
)
def test_only_a_refusal_may_be_sent_again(monkeypatch, outcome, means):
    monkeypatch.setattr(ses, "aws", SimpleNamespace(sesv2=lambda: _Client(outcome)))
    if means is None:
        assert ses.send("from@example.com", "to@example.com", b"raw") == "m-1"
    else:
        with pytest.raises(means):
            ses.send("from@example.com", "to@example.com", b"raw")


@pytest.mark.parametrize("error", [NoRegionError(), ValueError("Invalid endpoint: email")])
def test_a_client_that_cannot_be_made_sent_nothing(monkeypatch, error):
    def unmade() -> Any:
        raise error

    monkeypatch.setattr(ses, "aws", SimpleNamespace(sesv2=unmade))
    with pytest.raises(ses.Refused):
        ses.send("from@example.com", "to@example.com", b"raw")
