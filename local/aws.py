"""The embedded AWS endpoint: moto's server, serving one request at a time.

moto's backends are not linearizable under concurrent requests (eight threads doing
conditional decrements of a balance of 100 got 102 successes), so every request runs under
one lock, from reading its body to producing the last byte of its response. Only writing the
response to the socket happens outside the lock.

moto rolls a failed TransactWriteItems back by swapping each table it touched for a copy taken
before it, stream included; a DynamoDB Streams iterator made before the swap would go on
reading the discarded stream, changes of the failed transaction included (a payment that
never happened, published). Iterators here read the stream of the table as it is now.

A long poll (SQS ReceiveMessage with WaitTimeSeconds > 0) would hold that lock for its whole
wait; it is served instead as short polls, each under the lock, until a message arrives or
the wait is over. (This covers the JSON protocol that current SDKs use, and the
WaitTimeSeconds of the request; a queue's ReceiveMessageWaitTimeSeconds is not applied.)
"""

from __future__ import annotations

import copy
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.config import Config

from local.cfn import REGION
from local.provision import ClientFactory

DEFAULT_PORT = 4566
# Between the short polls of one long poll. Each SQS event source mapping long-polls without
# pause, as Lambda's pollers do, so this sets an idle stack's load: at 0.05 s the seven
# mappings made ~140 requests a second, 0.39 of a core measured (391 ticks in 10 s), which an
# idle e2e stack took from the integration tests running beside it.
_SHORT_POLL_INTERVAL = 0.25

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class SerialApp:
    """A WSGI app that runs the wrapped one strictly one request at a time."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") == "AmazonSQS.ReceiveMessage":
            return self._receive_message(environ, start_response)
        return self._serve(environ, start_response)

    def _serve(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                if close := getattr(result, "close", None):
                    close()

    def _receive_message(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        request = json.loads(
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}"
        )
        deadline = time.monotonic() + float(request.get("WaitTimeSeconds", 0))
        body = json.dumps({**request, "WaitTimeSeconds": 0}).encode()
        while True:
            attempt = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            status, headers, chunks = self._serve_captured(attempt)
            if not status.startswith("200") or time.monotonic() >= deadline:
                break
            if json.loads(chunks[0] or b"{}").get("Messages"):
                break
            time.sleep(_SHORT_POLL_INTERVAL)
        start_response(status, headers)
        return chunks

    def _serve_captured(self, environ: Environ) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return lambda data: None

        chunks = self._serve(environ, capture)
        return captured[0], captured[1], chunks


def _read_streams_of_the_live_table() -> None:
    from moto.dynamodbstreams.models import ShardIterator  # noqa: PLC0415 - slow to import

    if getattr(ShardIterator.get, "reads_live_table", False):
        return
    original = ShardIterator.get

    def get(self: Any, limit: int = 1000) -> dict[str, Any]:
        live = self.streams_backend.dynamodb.tables.get(self.stream_shard.table.name)
        if live is not None and live.stream_shard is not None:
            self.stream_shard = live.stream_shard
        result: dict[str, Any] = original(self, limit)
        return result

    get.reads_live_table = True  # type: ignore[attr-defined]
    ShardIterator.get = get  # type: ignore[method-assign]


def _upload_part_of_a_finished_upload_is_no_such_upload() -> None:
    """S3 answers an UploadPart of an upload that was completed or aborted with 404
    NoSuchUpload; moto 5.2.5 looks the upload up unguarded and answers 500 (a KeyError).
    Here it raises S3's own error, as a job's worker relies on (cashew.jobs.service)."""
    from moto.s3.exceptions import NoSuchUpload  # noqa: PLC0415 - slow to import
    from moto.s3.models import S3Backend  # noqa: PLC0415

    if getattr(S3Backend.upload_part, "no_such_upload", False):
        return
    original = S3Backend.upload_part

    def upload_part(
        self: Any, bucket_name: str, multipart_id: str, part_id: int, value: bytes
    ) -> Any:
        if multipart_id not in self.get_bucket(bucket_name).multiparts:
            raise NoSuchUpload(upload_id=multipart_id)
        return original(self, bucket_name, multipart_id, part_id, value)

    upload_part.no_such_upload = True  # type: ignore[attr-defined]
    S3Backend.upload_part = upload_part  # type: ignore[method-assign]


def _undo_failed_transactions_item_by_item() -> None:
    """moto makes TransactWriteItems all-or-nothing by deep-copying every table it names
    before the first write and swapping the copies back on failure: each transaction costs
    time and memory in proportion to everything stored (a log append took 30 ms on an empty
    table and 430 ms with 2,000 more items). Here the tables are not copied; instead the
    items the transaction names are saved before it runs and, if it fails, put back (and
    the stream records its writes produced are dropped), which is the same all-or-nothing
    at the cost of the transaction's own items."""
    import moto.dynamodb.models as dynamodb_models  # noqa: PLC0415 - slow to import
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    backend = dynamodb_models.DynamoDBBackend
    if getattr(backend.transact_write_items, "undoes_item_by_item", False):
        return
    original = backend.transact_write_items

    class NoTableCopies:
        """`copy` as moto's transaction sees it: a table "copy" is the table itself (so its
        swap-back is a no-op); everything else is copied as usual."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    dynamodb_models.copy = NoTableCopies()  # type: ignore[assignment,attr-defined]

    def saved_items(self: Any, transact_items: list[dict[str, Any]]) -> list[Any]:
        saved = []
        for entry in transact_items:
            kind, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            attrs = op.get("Item", {}) if kind == "Put" else op.get("Key", {})
            hash_value = attrs.get(table.hash_key_attr)
            range_value = attrs.get(table.range_key_attr) if table.range_key_attr else None
            if hash_value is None or (table.range_key_attr and range_value is None):
                continue  # an invalid key: moto refuses it before writing anything
            keys = (DynamoType(hash_value), DynamoType(range_value) if range_value else None)
            current = table.get_item(*keys)
            shard = table.stream_shard
            saved.append(
                (table, keys, copy.deepcopy(current), shard, len(shard.items) if shard else 0)
            )
        return saved

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = saved_items(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            for table, keys, item, shard, length in reversed(saved):
                if item is None:
                    table.delete_item(*keys)
                else:
                    table.put_item(item.to_json()["Attributes"])
                if shard is not None:
                    del shard.items[length:]
            raise

    transact_write_items.undoes_item_by_item = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


class EmbeddedAws:
    """moto's server on host:port in a background thread; `stop` shuts it down."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - moto is slow to import
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        _read_streams_of_the_live_table()
        _undo_failed_transactions_item_by_item()
        _upload_part_of_a_finished_upload_is_no_such_upload()
        app = SerialApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            host, port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> tuple[EmbeddedAws, str]:
    """Start the endpoint (port 0: any free port); returns it and its URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per AWS call
    server = EmbeddedAws(host, port)
    server.start()
    return server, server.url


def clients(endpoint_url: str, max_pool_connections: int = 10) -> ClientFactory:
    """A factory of boto3 clients for `endpoint_url`, with the local region and credentials."""
    config = Config(max_pool_connections=max_pool_connections, retries={"mode": "standard"})
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,  # nosec B106 # moto's
    )
    lock = threading.Lock()  # a Session is not thread-safe; its clients are

    def client(service: str) -> Any:
        with lock:
            return session.client(service, endpoint_url=endpoint_url, config=config)

    return client


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
