"""The README walkthrough, run verbatim against the local stack."""

from __future__ import annotations

import re
import subprocess

from tests.e2e.conftest import PASSWORD, REPO, wait_for_entries


def _walkthrough_script() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Walkthrough", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "README has no bash block under Walkthrough"
    return match.group(1)


def test_readme_walkthrough_works_verbatim(stack):
    # Given the README's commands, pointed at this stack
    script = _walkthrough_script().replace("http://127.0.0.1:3000", stack.url, 1)
    # When they run in bash
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    # Then Alice paid Bob 25.00 out of her 100.00 top-up
    tokens = {}
    for name in ("alice", "bob"):
        login = stack.request(
            "POST", "/v1/auth/login", json={"email": f"{name}@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        tokens[name] = login.json()["access_token"]
    assert '"available":7500' in run.stdout.replace(" ", "")
    # ... her chain verified, and her dispute of the payment is open
    assert '"valid":true' in run.stdout.replace(" ", "")
    assert '"status":"open","reason":"product_not_received"' in run.stdout.replace(" ", "")
    bob_balances = stack.request("GET", "/v1/users/me/balances", tokens["bob"]).json()
    assert bob_balances == {"data": [{"currency": "USD", "available": 2500}]}
    # And both see the payment in their history, once the consumer has appended it
    [alice_entry] = wait_for_entries(stack, tokens["alice"], type="payment")
    [bob_entry] = wait_for_entries(stack, tokens["bob"], type="payment")
    assert alice_entry["payment_id"] == bob_entry["payment_id"]
    assert (alice_entry["direction"], alice_entry["amount"], alice_entry["status"]) == (
        "debit",
        2500,
        "succeeded",
    )
    assert (bob_entry["direction"], bob_entry["amount"], bob_entry["status"]) == (
        "credit",
        2500,
        "succeeded",
    )
