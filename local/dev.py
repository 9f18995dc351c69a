"""`python -m local.dev`: the whole stack on this machine, until Ctrl-C or SIGTERM.

Starts the embedded AWS endpoint, provisions template.yaml on it, creates the first admin
when CASHEW_ADMIN_EMAIL and CASHEW_ADMIN_PASSWORD are set, starts the SQS consumers, the
scheduled functions (`local.schedules`) and the API.

Environment: PORT (the API, default 3000), CASHEW_AWS_PORT (the AWS endpoint, default 4566),
CASHEW_LOCAL_PARAMETERS (template parameter overrides over `Stage=local Gateway=sandbox`;
parameters that break the template's Rules stop it before it starts, naming the rule),
CASHEW_LOCAL_VISIBILITY_TIMEOUT (see `local.provision`), CASHEW_RECONCILE_INTERVAL (see
`local.schedules`), and any CASHEW_* variable, which
every function gets over the template's value.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from local import aws, client, mail
from local.admin import create_from_env
from local.api import DEFAULT_PORT, Gateway, LocalRoute, make_server
from local.cfn import ParameterError, Resources, load_template, local_parameters
from local.challenges import PREFIX as CHALLENGES
from local.challenges import WEBHOOK_DELAY_SECONDS as CHALLENGE_DELAY
from local.challenges import Challenges
from local.consumers import Consumers
from local.provision import ClientFactory, provision
from local.runtime import Runtime
from local.sandbox import TOKENS_PATH, WebhookScheduler, tokens_endpoint
from local.schedules import Schedules, check_intervals
from local.specs import FunctionSpec, function_env, functions, stack_env

_log = logging.getLogger("local.dev")


def _checked_envs(
    specs: dict[str, FunctionSpec], resources: Resources, aws_url: str
) -> dict[str, dict[str, str]]:
    """Each function's environment, checked as its cold start would check it: a malformed
    CASHEW_* value (say a fraud threshold) stops the stack at start, naming the function, the
    variable and why (exit status 2, what has started stopped), rather than failing that
    function's every request."""
    from pydantic import ValidationError  # noqa: PLC0415 # the layer is on the path only now

    from cashew.config import Settings  # noqa: PLC0415

    envs = {fid: function_env(spec, resources, aws_url) for fid, spec in specs.items()}
    for function_id, env in sorted(envs.items()):
        try:
            Settings.model_validate(env)
        except ValidationError as error:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
            print(f"cannot start: {function_id}: {problems}", file=sys.stderr, flush=True)
            raise SystemExit(2) from error
    return envs


def _banner(
    api_url: str, aws_url: str, gateway: Gateway, consumers: Consumers, schedules: Schedules
) -> str:
    routes = [
        f"  {r.event.method:6} {r.event.path:32} -> {r.event.function_id}"
        + ("" if r.event.authorizer else "  (no auth)")
        for r in gateway.routes
    ]
    pollers = (
        [f"  SQS    {p.event.queue_id:32} -> {p.event.function_id}" for p in consumers.pollers]
        + [
            f"  Stream {p.event.table_id:32} -> {p.event.function_id}"
            for p in consumers.stream_pollers
        ]
        + [
            f"  Every  {f'{s.every:g} s ({s.event.expression})':32} -> {s.event.function_id}"
            for s in schedules.schedules
        ]
    )
    return "\n".join(
        [
            "Cashew local stack",
            *routes,
            *pollers,
            f"API           {api_url}",
            f"Web client    {api_url}/",
            f"Docs          {api_url}/docs  ({api_url}/v1/openapi.json)",
            f"Inbox         {api_url}{mail.PAGE_PATH}  ({mail.JSON_PATH}?to=<address>)",
            f"AWS endpoint  {aws_url}  (AWS_ENDPOINT_URL={aws_url} AWS_ACCESS_KEY_ID=testing "
            "AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1)",
            "Press Ctrl-C to stop.",
        ]
    )


def _webhook_secret(clients: ClientFactory, secret_id: str) -> Callable[[], str]:
    """The sandbox's webhook secret, read from the stack's GatewaySecret at each delivery
    (so a rotated secret signs the next webhook)."""

    def read() -> str:
        value = clients("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        return str(json.loads(value)["webhook_secret"])

    return read


def _local_routes(
    secret: Callable[[], str], webhooks: WebhookScheduler
) -> dict[tuple[str, str], LocalRoute]:
    """The local-only endpoints: the sandbox's tokens and challenge pages, the inbox."""
    challenges = Challenges(secret, lambda event: webhooks.schedule(CHALLENGE_DELAY, event))
    # A client on another origin (CASHEW_CORS_ORIGINS) tokenises cards and reads the inbox as
    # it calls the API: the same CORS answers, preflight included.
    browser_facing = {("POST", TOKENS_PATH): tokens_endpoint(secret), **mail.ROUTES}
    return {
        **{key: _with_cors(route) for key, route in browser_facing.items()},
        **{("OPTIONS", path): _preflight for _, path in browser_facing},
        **challenges.routes(),
        **client.ROUTES,
    }


def _with_cors(route: LocalRoute) -> LocalRoute:
    from cashew import cors  # noqa: PLC0415 # the layer is on the path only now

    def answer(event: dict[str, Any]) -> dict[str, Any]:
        response = route(event)
        response["headers"] = {**(response.get("headers") or {}), **cors.headers(event)}
        return response

    return answer


def _preflight(event: dict[str, Any]) -> dict[str, Any]:
    from cashew import cors  # noqa: PLC0415

    return {"statusCode": 204, "headers": cors.headers(event, preflight=True), "body": ""}


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM (a second one does not wait for a clean stop)."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        signal.signal(signum, signal.SIG_DFL)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    return stopping


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stopping = _stop_on_signals()
    template = load_template()
    try:
        parameters = local_parameters(template)
        specs = functions(template)
        check_intervals(specs)  # before anything starts
    except (ParameterError, ValueError) as error:
        print(f"cannot start: {error}", file=sys.stderr, flush=True)
        return 2
    try:
        with contextlib.ExitStack() as stack:
            endpoint, aws_url = aws.start(int(os.environ.get("CASHEW_AWS_PORT", aws.DEFAULT_PORT)))
            stack.callback(endpoint.stop)
            clients = aws.clients(aws_url)
            resources = provision(template, clients, parameters)
            layers = list(dict.fromkeys(p for spec in specs.values() for p in spec.layer_dirs))
            sys.path[:0] = [str(p) for p in layers if str(p) not in sys.path]
            api_port = int(os.environ.get("PORT", DEFAULT_PORT))
            shared_env = stack_env(template, resources, aws_url)
            webhooks = WebhookScheduler(
                f"http://127.0.0.1:{api_port}",
                _webhook_secret(clients, shared_env["CASHEW_GATEWAY_SECRET_ID"]),
            )
            webhooks.start()
            stack.callback(webhooks.stop)
            os.environ["CASHEW_SANDBOX_WEBHOOK_URL"] = webhooks.url  # reaches every function
            os.environ["CASHEW_SANDBOX_CHALLENGE_URL"] = f"http://127.0.0.1:{api_port}{CHALLENGES}"
            # Webhook endpoints on loopback (a receiver on this machine): the local stack only,
            # never template.yaml, so no deployed stage can call loopback.
            os.environ["CASHEW_WEBHOOK_ALLOW_LOOPBACK"] = "true"
            runtime = Runtime(specs, _checked_envs(specs, resources, aws_url))
            stack.callback(runtime.shutdown)
            admin = create_from_env(shared_env, layers)
            if admin:
                print(f"admin user {admin} is ready (CASHEW_ADMIN_EMAIL)", flush=True)
            consumers = Consumers(specs, resources, runtime.invoke, clients)
            consumers.start()
            stack.callback(consumers.stop)
            schedules = Schedules(specs, runtime.invoke).start()
            stack.callback(schedules.stop)
            secret = _webhook_secret(clients, shared_env["CASHEW_GATEWAY_SECRET_ID"])
            local_routes = _local_routes(secret, webhooks)
            gateway = Gateway.from_template(template, runtime.invoke, local_routes)
            server = make_server(gateway, port=api_port)
            stack.callback(server.server_close)
            threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
            stack.callback(server.shutdown)
            print(_banner(server.url, aws_url, gateway, consumers, schedules), flush=True)
            # A timed wait, not stopping.wait(): the kernel may deliver SIGTERM to any thread
            # (a poller in a long poll, say), and CPython runs the handler only in the main
            # thread, which an untimed wait never wakes to do (the stack then never stopped).
            while not stopping.wait(timeout=0.5):
                pass
            print("Stopping...", flush=True)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"cannot start: {exc} (set PORT / CASHEW_AWS_PORT to use other ports)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
