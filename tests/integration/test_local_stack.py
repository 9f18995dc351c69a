"""The local stack itself: template loading, provisioning, the serialising AWS endpoint, the
API Gateway front, the SQS mapping's deletion rule and the Lambda-like runtime."""

from __future__ import annotations

import copy
import http.client
import json
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import aws
from local.api import MAX_BODY_BYTES, Gateway, HttpRequest, make_server
from local.cfn import Resources, load_template
from local.consumers import succeeded
from local.provision import provision
from local.runtime import Invocation, Runtime
from local.specs import FunctionSpec, apis, function_env, functions

TEMPLATE = load_template()


def _declared(resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == resource_type
    }


def _api_events() -> list[tuple[str, dict[str, Any]]]:
    return [
        (function_id, event["Properties"])
        for function_id, props in _declared("AWS::Serverless::Function").items()
        for event in props.get("Events", {}).values()
        if event["Type"] == "Api"
    ]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server, url = aws.start(0)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def resources(endpoint: str) -> Resources:
    return provision(TEMPLATE, aws.clients(endpoint))


def _client(endpoint: str, service: str) -> Any:
    return aws.clients(endpoint, max_pool_connections=32)(service)


# ------------------------------------------------------------------------------- template
def test_short_tags_load_as_their_long_form(tmp_path: Path) -> None:
    # Given a template written with short tags
    path = tmp_path / "t.yaml"
    path.write_text(
        "A: !Ref Thing\nB: !GetAtt Queue.Arn\nC: !Sub 'x-${AWS::Region}'\n"
        "D: !Join [',', [a, !Ref Thing]]\nE: 2012-10-17\n"
    )
    # When it is loaded
    loaded = load_template(path)
    # Then every tag is the long form, and dates stay strings
    assert loaded == {
        "A": {"Ref": "Thing"},
        "B": {"Fn::GetAtt": ["Queue", "Arn"]},
        "C": {"Fn::Sub": "x-${AWS::Region}"},
        "D": {"Fn::Join": [",", ["a", {"Ref": "Thing"}]]},
        "E": "2012-10-17",
    }


def test_every_function_and_route_of_the_template_is_described() -> None:
    # Given the functions and Api events the template declares
    declared = _declared("AWS::Serverless::Function")
    # When the template is read as the Serverless transform would
    specs = functions(TEMPLATE)
    # Then there is one spec per function, each with its own handler and all its Api events
    assert set(specs) == set(declared)
    for function_id, props in declared.items():
        module, attr = props["Handler"].rsplit(".", 1)
        assert (specs[function_id].handler_module, specs[function_id].handler_attr) == (
            module,
            attr,
        )
    described = {(e.function_id, e.method, e.path) for s in specs.values() for e in s.api_events}
    expected = {(fid, props["Method"].upper(), props["Path"]) for fid, props in _api_events()}
    assert described == expected
    assert all(spec.layer_dirs for spec in specs.values()), "Globals' layer reaches every function"


def test_every_route_reaches_its_function_through_the_gateway() -> None:
    # Given a gateway whose authorizer allows everything and whose functions echo their name
    def invoke(function_id: str, event: Any) -> Invocation:
        if event.get("type") == "TOKEN":
            policy = {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "execute-api:Invoke",
                        "Resource": event["methodArn"],
                    }
                ]
            }
            return Invocation("r", {"principalId": "u", "policyDocument": policy})
        return Invocation("r", {"statusCode": 200, "body": function_id})

    gateway = Gateway.from_template(TEMPLATE, invoke)
    for function_id, props in _api_events():
        # When the route's method and path are requested
        headers = [("Authorization", "Bearer t")]
        request = HttpRequest(props["Method"].upper(), props["Path"], "", headers, b"", "1.2.3.4")
        response = gateway.handle(request)
        # Then the function the template wires to it answers
        assert (response.status, response.body.decode()) == (200, function_id)


def test_function_env_resolves_references_and_lets_cashew_variables_override(
    resources: Resources, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a user override of a CASHEW_ setting, and no other
    for name in [name for name in os.environ if name.startswith("CASHEW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "50")
    spec = functions(TEMPLATE)["LoginFunction"]
    # When the function's environment is built
    env = function_env(spec, resources, endpoint)
    # Then references are resolved to what was provisioned, and the override wins
    assert env["CASHEW_ACCOUNTS_TABLE"] == resources["AccountsTable"]["Ref"]
    assert env["CASHEW_OUTCOMES_QUEUE_URL"] == resources["OutcomesQueue"]["QueueUrl"]
    assert env["CASHEW_LOGIN_MAX_FAILURES"] == "50"
    assert env["AWS_ENDPOINT_URL"] == endpoint
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(spec.memory)


# --------------------------------------------------------------------------- provisioning
def test_every_table_queue_key_and_secret_is_provisioned(
    resources: Resources, endpoint: str
) -> None:
    # Given the template provisioned on a fresh endpoint (the fixture)
    # Then every declared table exists with its key schema, and TTL where declared
    dynamodb = _client(endpoint, "dynamodb")
    for logical_id, props in _declared("AWS::DynamoDB::Table").items():
        table = dynamodb.describe_table(TableName=resources[logical_id]["Ref"])["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        ttl = dynamodb.describe_time_to_live(TableName=resources[logical_id]["Ref"])
        expected = "ENABLED" if "TimeToLiveSpecification" in props else "DISABLED"
        assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == expected
    # And every queue, with its visibility timeout and retention
    sqs = _client(endpoint, "sqs")
    for logical_id, props in _declared("AWS::SQS::Queue").items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=resources[logical_id]["Ref"], AttributeNames=["All"]
        )["Attributes"]
        assert attributes["QueueArn"] == resources[logical_id]["Arn"]
        assert attributes["MessageRetentionPeriod"] == str(props["MessageRetentionPeriod"])
        assert attributes["VisibilityTimeout"] == str(props.get("VisibilityTimeout", 30))
    # And every key
    kms = _client(endpoint, "kms")
    for logical_id in _declared("AWS::KMS::Key"):
        metadata = kms.describe_key(KeyId=resources[logical_id]["Ref"])["KeyMetadata"]
        assert metadata["Arn"] == resources[logical_id]["Arn"]
    # And every secret, generated as GenerateSecretString says
    secretsmanager = _client(endpoint, "secretsmanager")
    for logical_id, props in _declared("AWS::SecretsManager::Secret").items():
        value = secretsmanager.get_secret_value(SecretId=resources[logical_id]["Ref"])
        spec = props["GenerateSecretString"]
        document = json.loads(value["SecretString"])
        generated = document.pop(spec["GenerateStringKey"])
        assert document == json.loads(spec["SecretStringTemplate"])
        assert len(generated) == spec["PasswordLength"] and generated.isalnum()


def test_queues_redrive_to_their_dead_letter_queue(resources: Resources, endpoint: str) -> None:
    # Given the queues the template gives a RedrivePolicy
    sqs = _client(endpoint, "sqs")
    for logical_id, props in _declared("AWS::SQS::Queue").items():
        if "RedrivePolicy" not in props:
            continue
        # When its attributes are read back
        attributes = sqs.get_queue_attributes(
            QueueUrl=resources[logical_id]["Ref"], AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        # Then the policy names the dead-letter queue's ARN and the template's receive count
        policy = json.loads(attributes["RedrivePolicy"])
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert policy["deadLetterTargetArn"] == resources[dlq]["Arn"]
        assert int(policy["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]


def test_provisioning_again_finds_what_exists(resources: Resources, endpoint: str) -> None:
    # When the template is provisioned a second time on the same endpoint
    again = provision(TEMPLATE, aws.clients(endpoint))
    # Then every resource resolves to the same physical resource as before
    assert again == resources


# ------------------------------------------------------------------- serialising endpoint
def _table_with_item(endpoint: str, **item: dict[str, str]) -> tuple[Any, str]:
    dynamodb = _client(endpoint, "dynamodb")
    name = f"test-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "k"}, **item})
    return dynamodb, name


def _run_threads(count: int, work: Callable[[], None]) -> None:
    """`work` on `count` threads, switching between threads often enough that, without the
    endpoint's lock, moto's lost updates show up on every run (measured: 113-128 successes)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


def test_concurrent_conditional_decrements_never_overdraw(endpoint: str) -> None:
    # Given a balance of 100
    dynamodb, table = _table_with_item(endpoint, balance={"N": "100"})
    successes: list[int] = []

    def spend() -> None:
        for _ in range(20):
            try:
                dynamodb.update_item(
                    TableName=table,
                    Key={"pk": {"S": "k"}},
                    UpdateExpression="SET balance = balance - :one",
                    ConditionExpression="balance >= :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                successes.append(1)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"

    # When 16 threads try 20 conditional decrements of 1 each
    _run_threads(16, spend)
    # Then exactly 100 succeed and the balance ends at 0
    assert len(successes) == 100
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ConsistentRead=True)
    assert item["Item"]["balance"] == {"N": "0"}


def test_concurrent_adds_are_all_counted(endpoint: str) -> None:
    # Given a counter at 0
    dynamodb, table = _table_with_item(endpoint, n={"N": "0"})

    def add() -> None:
        for _ in range(50):
            dynamodb.update_item(
                TableName=table,
                Key={"pk": {"S": "k"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    # When 8 threads ADD 1, 50 times each
    _run_threads(8, add)
    # Then the counter is 400
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "k"}}, ConsistentRead=True)
    assert item["Item"]["n"] == {"N": "400"}


def test_a_stream_never_shows_a_transaction_that_failed(endpoint: str) -> None:
    # Given a table with a stream, an item, and a stream iterator made before anything else
    dynamodb, streams = _client(endpoint, "dynamodb"), _client(endpoint, "dynamodbstreams")
    table = f"streamed-{uuid.uuid4().hex[:8]}"
    created = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    arn = created["LatestStreamArn"]
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "taken"}})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    # When a transaction writes a new item, then fails on its second item's condition
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "phantom"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "taken"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )  # fmt: skip
    # Then the iterator made before it reads only what was committed
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["taken"]


@pytest.mark.parametrize(
    ("checked", "error"),
    [("z", "TransactionCanceled"), ("a", "multiple operations on one item")],
    ids=["a-condition-fails", "the-request-is-invalid"],
)
def test_a_failed_transaction_puts_back_what_it_wrote_without_copying_tables(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, checked: str, error: str
) -> None:
    # Given a table (with a range key and a stream) holding an item to update and one to
    # delete, and a count of the tables the endpoint deep-copies
    from moto.dynamodb.models.table import Table

    copied: list[str] = []
    real_deepcopy = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copied.append(value.name)
        return real_deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    dynamodb, streams = _client(endpoint, "dynamodb"), _client(endpoint, "dynamodbstreams")
    table = f"undo-{uuid.uuid4().hex[:8]}"
    created = dynamodb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]  # fmt: skip
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "2"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "z"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    before = dynamodb.scan(TableName=table)["Items"]
    # When a transaction updates one, deletes the other, adds a new one, then fails (on a
    # condition, or on a check of the same item again, which moto finds after the writes)
    with pytest.raises(ClientError, match=error):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "SET n = n + :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {"ConditionCheck": {"TableName": table,
                                    "Key": {"pk": {"S": checked}, "sk": {"S": "1"}},
                                    "ConditionExpression": "n = :zero",
                                    "ExpressionAttributeValues": {":zero": {"N": "0"}}}},
            ]
        )  # fmt: skip
    # Then the table is as it was, its stream shows only the three committed puts
    assert dynamodb.scan(TableName=table)["Items"] == before
    shard = streams.describe_stream(StreamArn=created["LatestStreamArn"])["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=created["LatestStreamArn"], ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert [r["eventName"] for r in streams.get_records(ShardIterator=iterator)["Records"]] == [
        "INSERT", "INSERT", "INSERT",
    ]  # fmt: skip
    # ... and no table was copied to get there; a committed transaction still commits
    assert copied == []
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}}]
    )
    assert len(dynamodb.scan(TableName=table)["Items"]) == 4


def test_a_long_poll_neither_blocks_other_calls_nor_misses_a_message(endpoint: str) -> None:
    # Given a client long-polling an empty queue for 3 seconds
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=f"test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    received: list[Any] = []
    poller, other = _client(endpoint, "sqs"), _client(endpoint, "sts")
    thread = threading.Thread(
        target=lambda: received.append(poller.receive_message(QueueUrl=url, WaitTimeSeconds=3))
    )
    thread.start()
    time.sleep(0.3)
    # When another client calls meanwhile, then sends a message
    started = time.monotonic()
    other.get_caller_identity()
    elapsed = time.monotonic() - started
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    thread.join()
    # Then the other call was not held up (held, it would take the poll's 2.7 s left; the
    # margin is for a test worker sharing the cores), and the long poll returned it early
    assert elapsed < 1.5
    assert [m["Body"] for m in received[0]["Messages"]] == ["hello"]


# ---------------------------------------------------------------------------- API gateway
class _Recorder:
    """A stand-in for the runtime: the authorizer answers `authorizer`, functions echo."""

    def __init__(self, authorizer: Invocation) -> None:
        self.authorizer = authorizer
        self.events: list[tuple[str, Any]] = []

    def __call__(self, function_id: str, event: Any) -> Invocation:
        self.events.append((function_id, event))
        if event.get("type") == "TOKEN":
            return self.authorizer
        return Invocation("r", {"statusCode": 201, "headers": {"X-Echo": "1"}, "body": "ok"})


def _allow(effect: str = "Allow", **context: Any) -> Invocation:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": effect, "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*"}
        ],
    }
    return Invocation("a", {"principalId": "usr_1", "policyDocument": policy, "context": context})


def _guarded_request(*headers: tuple[str, str]) -> HttpRequest:
    event = next(e for s in functions(TEMPLATE).values() for e in s.api_events if e.authorizer)
    return HttpRequest(event.method, event.path, "a=1&a=2", list(headers), b"{}", "10.0.0.1")


def _template_response(kind: str) -> Any:
    (api,) = apis(TEMPLATE).values()
    return api.gateway_responses[kind]


def test_a_request_without_a_token_gets_the_templates_unauthorized_response() -> None:
    # Given a guarded route
    recorder = _Recorder(_allow())
    gateway = Gateway.from_template(TEMPLATE, recorder)
    # When it is requested without the identity header
    response = gateway.handle(_guarded_request())
    # Then the template's UNAUTHORIZED response comes back, its body and header carrying the
    # same request id, and nothing was invoked
    expected = _template_response("UNAUTHORIZED")
    assert response.status == expected.status
    headers = dict(response.headers)
    body = json.loads(response.body)
    assert body["request_id"] == headers["X-Request-Id"]
    assert headers["Content-Type"] == expected.headers["Content-Type"].strip("'")
    assert recorder.events == []


@pytest.mark.parametrize(
    ("authorizer", "kind"),
    [
        (
            Invocation("a", error={"errorMessage": "Unauthorized", "errorType": "Exception"}),
            "UNAUTHORIZED",
        ),
        (_allow("Deny"), "ACCESS_DENIED"),
    ],
)
def test_a_refused_token_gets_the_templates_gateway_response(
    authorizer: Invocation, kind: str
) -> None:
    # Given an authorizer that refuses the token
    recorder = _Recorder(authorizer)
    gateway = Gateway.from_template(TEMPLATE, recorder)
    # When the guarded route is requested
    response = gateway.handle(_guarded_request(("authorization", "Bearer t")))
    # Then the template's response for that refusal comes back, and only the authorizer ran
    assert response.status == _template_response(kind).status
    assert [event.get("type") for _, event in recorder.events] == ["TOKEN"]


def test_an_allowed_request_carries_the_authorizer_context_in_a_proxy_event() -> None:
    # Given an authorizer that allows and returns a context
    recorder = _Recorder(_allow(role="admin", mfa=True))
    gateway = Gateway.from_template(TEMPLATE, recorder)
    # When the guarded route is requested
    response = gateway.handle(_guarded_request(("Authorization", "Bearer t")))
    # Then the function's response is passed on, with a request id added
    assert response.status == 201 and response.body == b"ok"
    headers = dict(response.headers)
    assert headers["X-Echo"] == "1"
    # And the function got a REST proxy event with the token, the context (as strings)
    (_, auth_event), (_, event) = recorder.events
    assert auth_event["authorizationToken"] == "Bearer t"
    authorizer = event["requestContext"]["authorizer"]
    assert (authorizer["principalId"], authorizer["role"], authorizer["mfa"]) == (
        "usr_1",
        "admin",
        "true",
    )
    assert event["requestContext"]["requestId"] == headers["X-Request-Id"]
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["headers"]["X-Forwarded-For"] == "10.0.0.1"
    assert (event["body"], event["isBase64Encoded"]) == ("{}", False)


def test_http_front_refuses_bodies_over_10_mib_and_unknown_routes() -> None:
    # Given the HTTP front on a free port
    server = make_server(Gateway.from_template(TEMPLATE, _Recorder(_allow())), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    try:
        # When a body over the limit is announced
        connection = http.client.HTTPConnection(str(host), port, timeout=5)
        connection.putrequest("POST", "/v1/users")
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders()
        too_large = connection.getresponse()
        # Then it is refused with 413 without being read
        assert too_large.status == 413 and too_large.getheader("X-Request-Id")
        connection.close()
        # And an unknown route gets the template's MISSING_AUTHENTICATION_TOKEN response
        connection = http.client.HTTPConnection(str(host), port, timeout=5)
        connection.request("GET", "/v1/nowhere")
        unknown = connection.getresponse()
        assert unknown.status == 404
        assert unknown.getheader("Content-Type") == "application/problem+json"
        body = json.loads(unknown.read())
        assert (body["code"], body["request_id"]) == (
            "not_found",
            unknown.getheader("X-Request-Id"),
        )
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_http_front_takes_sixty_four_clients_connecting_at_once() -> None:
    # Given the HTTP front on a free port, not accepting yet (as when every thread is busy)
    server = make_server(Gateway.from_template(TEMPLATE, _Recorder(_allow())), port=0)
    host, port = server.server_address[:2]
    connections = []
    try:
        # When 64 clients connect at once, each sending its request
        for _ in range(64):
            connection = http.client.HTTPConnection(str(host), port, timeout=3)
            connection.request("GET", "/v1/nowhere")
            connections.append(connection)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        # Then every one is answered (a backlog of 5 had the kernel reset some of them)
        assert [c.getresponse().status for c in connections] == [404] * 64
    finally:
        for connection in connections:
            connection.close()
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------- SQS mapping
_BATCH = [{"MessageId": f"m{i}", "ReceiptHandle": f"h{i}"} for i in range(3)]


@pytest.mark.parametrize(
    ("invocation", "deleted"),
    [
        (Invocation("r", {"batchItemFailures": [{"itemIdentifier": "m1"}]}), ["m0", "m2"]),
        (Invocation("r", {"batchItemFailures": []}), ["m0", "m1", "m2"]),
        (Invocation("r", None), ["m0", "m1", "m2"]),
        (Invocation("r", {"batchItemFailures": [{"itemIdentifier": "other"}]}), []),
        (Invocation("r", error={"errorMessage": "boom"}), []),
    ],
)
def test_only_records_that_succeeded_are_deleted(
    invocation: Invocation, deleted: list[str]
) -> None:
    # When a batch was processed with ReportBatchItemFailures
    done = succeeded(_BATCH, invocation, report_failures=True)
    # Then the records deleted are the ones the function did not report as failed
    assert [message["MessageId"] for message in done] == deleted


# ------------------------------------------------------------------------------- runtime
def test_a_handler_error_comes_back_as_an_error_object_and_the_worker_survives(
    tmp_path: Path,
) -> None:
    # Given a function that fails on demand and counts its invocations
    (tmp_path / "app.py").write_text(
        "import os\nCALLS = 0\n"
        "def handler(event, context):\n"
        "    global CALLS\n    CALLS += 1\n"
        "    if event.get('fail'):\n        raise ValueError('boom')\n"
        "    return {'calls': CALLS, 'name': context.function_name, 'x': os.environ['X']}\n"
    )
    spec = FunctionSpec("Fn", "cashew-Fn", tmp_path, "app", "handler", 5, 128, {}, (), (), ())
    runtime = Runtime({"Fn": spec}, {"Fn": {"X": "y"}}, max_workers=1)
    try:
        # When it fails, then succeeds
        failed = runtime.invoke("Fn", {"fail": True})
        ok = runtime.invoke("Fn", {})
    finally:
        runtime.shutdown()
    # Then the failure is Lambda's error object, and the same warm worker served both
    assert failed.error is not None
    assert (failed.error["errorType"], failed.error["errorMessage"]) == ("ValueError", "boom")
    assert ok.payload == {"calls": 2, "name": "cashew-Fn", "x": "y"}
    # ... and once shut down it starts no worker (one would outlive the stack's stop)
    children = set(multiprocessing.active_children())
    late = runtime.invoke("Fn", {})
    assert late.error is not None and late.error["errorType"] == "Runtime.ExitError"
    assert set(multiprocessing.active_children()) == children


def test_an_event_of_the_bus_reaches_every_target_queue_of_its_rules(
    resources: Resources, endpoint: str
) -> None:
    # Given the template's rules provisioned on the endpoint (the fixture)
    events, sqs = _client(endpoint, "events"), _client(endpoint, "sqs")
    rules = _declared("AWS::Events::Rule")
    assert rules
    for props in rules.values():
        bus = resources[props["EventBusName"]["Ref"]]["Ref"]
        # When an event its pattern matches is put on its bus
        marker = f"evt_{uuid.uuid4().hex}"
        events.put_events(
            Entries=[
                {
                    "Source": props["EventPattern"]["source"][0],
                    "DetailType": "payment.succeeded",
                    "Detail": json.dumps({"id": marker}),
                    "EventBusName": bus,
                }
            ]
        )
        # Then each target queue holds it, as EventBridge would deliver it
        for target in props["Targets"]:
            queue = target["Arn"]["Fn::GetAtt"][0]
            details = [body["detail"] for body in _drain(sqs, resources[queue]["Ref"])]
            assert [d for d in details if d.get("id") == marker] == [{"id": marker}], queue


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of the queue (other tests' events included), deleted as read."""
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return bodies


def test_the_sender_identity_is_verified_and_nothing_else_may_send(
    resources: Resources, endpoint: str
) -> None:
    # Given the template's SES identity provisioned (the fixture)
    sesv2 = _client(endpoint, "sesv2")
    identity = resources["EmailIdentity"]["Ref"]
    # Then mail from an address of it is accepted, and from any other refused
    content = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}}
    to = {"ToAddresses": ["someone@example.com"]}
    sesv2.send_email(FromEmailAddress=f"a@{identity}", Destination=to, Content=content)
    with pytest.raises(ClientError, match="not verified"):
        sesv2.send_email(FromEmailAddress="a@elsewhere.example", Destination=to, Content=content)


def test_a_part_of_a_finished_upload_is_no_such_upload_as_in_s3(endpoint: str) -> None:
    # moto 5.2.5 answers 500 here; local.aws patches it to S3's NoSuchUpload
    import moto

    assert moto.__version__ == "5.2.5", "re-check local.aws's S3 patch against this moto"
    s3 = aws.clients(endpoint)("s3")
    s3.create_bucket(Bucket="finished-uploads")
    upload = s3.create_multipart_upload(Bucket="finished-uploads", Key="k")["UploadId"]
    etag = s3.upload_part(Bucket="finished-uploads", Key="k", UploadId=upload, PartNumber=1,
                          Body=b"last part")["ETag"]  # fmt: skip
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    s3.complete_multipart_upload(Bucket="finished-uploads", Key="k", UploadId=upload,
                                 MultipartUpload=parts)  # fmt: skip
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.upload_part(Bucket="finished-uploads", Key="k", UploadId=upload, PartNumber=1,
                       Body=b"again")  # fmt: skip
