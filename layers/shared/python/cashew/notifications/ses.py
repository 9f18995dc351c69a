"""Sending one raw message through SES v2 `SendEmail`, and what its failure means.

A send either returns a message id, or is `Refused` (SES answered with a 4xx: throttled,
rejected, not allowed; nothing was sent, so sending again is safe), or is `Unknown` (a
timeout, a lost connection after the request left, a 5xx, any other error once the call
began, an answer without a message id: SES may have sent it). The client
makes one attempt per call (`aws.sesv2`), so botocore never resends a message on its own.
"""

from __future__ import annotations

from cashew import aws


class Refused(Exception):
    """SES did not send the message; a later attempt may succeed."""


class Unknown(Exception):
    """Whether SES sent the message cannot be told."""


def send(sender: str, to: str, raw: bytes) -> str:
    """SES's message id of the sent message."""
    from botocore.exceptions import (  # noqa: PLC0415 - paid only by a send
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
    )

    # Errors raised before any byte of the request left: nothing was sent.
    unsent = (
        ConnectTimeoutError, EndpointConnectionError, NoCredentialsError, NoRegionError,
        ParamValidationError, PartialCredentialsError,
    )  # fmt: skip
    try:
        client = aws.sesv2()
    except Exception as error:  # a client that cannot be made sent nothing
        raise Refused(f"no SES client: {type(error).__name__}") from error
    try:
        response = client.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [to]},
            Content={"Raw": {"Data": raw}},
        )
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
        code = error.response.get("Error", {}).get("Code", "")
        if status < 500:
            raise Refused(f"{code} ({status})") from error
        raise Unknown(f"{code} ({status})") from error
    except BotoCoreError as error:
        if isinstance(error, unsent):  # never connected, or refused before sending
            raise Refused(type(error).__name__) from error
        raise Unknown(type(error).__name__) from error
    except Exception as error:  # anything else once the call began: it may have gone
        raise Unknown(type(error).__name__) from error
    message_id = response.get("MessageId")
    if not message_id:  # SES answered 2xx: it took the message, whatever it said
        raise Unknown("SES's answer has no MessageId")
    return str(message_id)
