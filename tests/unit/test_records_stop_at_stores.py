"""Stored records are typed; `dict[str, Any]` stops at the stores (issue 11, point 5).

Outside the files named below, no annotation in the layer's `cashew` package may be an
untyped mapping (`dict[str, Any]`, `Mapping[str, Any]`, `dict[str, object]`,
`Mapping[str, object]`, or `dynamo.Item`): logic, faces and other modules see records.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CASHEW = Path(__file__).resolve().parents[2] / "layers" / "shared" / "python" / "cashew"

# Where a raw item or a wire document is the thing itself, and why.
ALLOWED = {
    "dynamo.py": "the DynamoDB plumbing: items in and out",
    "aws.py": "botocore configuration and Secrets Manager JSON",
    "http.py": "the HTTP edge: API Gateway events and responses",
    "cors.py": "the HTTP edge: the Origin header of API Gateway events",
    "cursor.py": "a page's last evaluated key, encoded into a cursor",
    "auth/sessions.py": "the session store",
    "auth/mfa_store.py": "the MFA store (factors and challenges, in the sessions table)",
    "auth/tokens.py": "JWT claims, a wire format",
    "auth/keys.py": "the JWKS document, a wire format",
    "payments/idempotency.py": "the idempotency table's store beside the protocol, and the "
    "request JSON it hashes",
    "ledger/totals.py": "the store of the summary's running totals (items of the reports table)",
    "ledger/chain.py": "hashes the stored fields as they are: an edited item need not be an entry",
    "outcomes.py": "DynamoDB stream records as Lambda delivers them, and EventBridge details",
    "republish.py": "the failure queue's messages, as Lambda's on-failure destination writes them",
    "webhooks/dispatch.py": "EventBridge events as the bus delivers them, and the contract "
    "objects they carry (sent on as they are)",
    "notifications/recipients.py": "EventBridge details (the contract's objects), as the bus "
    "delivers them",
}
ALLOWED_DIRS = {"gateways": "the gateways' own wire formats (Stripe and the sandbox)"}
UNTYPED = {
    "dict[str, Any]",
    "Mapping[str, Any]",
    "dict[str, object]",
    "Mapping[str, object]",
    "dynamo.Item",
}


def _allowed(path: Path) -> bool:
    relative = path.relative_to(CASHEW)
    return (
        path.name == "store.py"
        or relative.as_posix() in ALLOWED
        or relative.parts[0] in ALLOWED_DIRS
    )


def _annotations(tree: ast.AST) -> list[ast.expr]:
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a]
            found += [a.annotation for a in every if a.annotation]
            if node.returns:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
            if node.value is not None and isinstance(node.target, ast.Name):
                found.append(node.value)  # a type alias: X: TypeAlias = dict[str, Any]
        elif isinstance(node, ast.Assign | ast.TypeAlias):
            found.append(node.value)  # X = dict[str, Any] is an alias too
    return found


def _untyped_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    hits = []
    for annotation in _annotations(tree):
        text = ast.unparse(annotation)
        if any(u in text for u in UNTYPED):
            hits.append(f"{path.relative_to(CASHEW)}:{annotation.lineno}: {text}")
    return hits


def test_the_check_sees_an_untyped_mapping(tmp_path: Path) -> None:
    sample = CASHEW / "payments" / "create.py"
    assert not _untyped_in(sample)
    tree = ast.parse("def f(item: dict[str, Any]) -> Mapping[str, object]: ...\nX = dynamo.Item\n")
    texts = [ast.unparse(a) for a in _annotations(tree)]
    assert texts == ["dict[str, Any]", "Mapping[str, object]", "dynamo.Item"]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CASHEW.rglob("*.py") if not _allowed(p)),
    ids=lambda p: str(p.relative_to(CASHEW)),
)
def test_no_untyped_item_outside_the_stores(path: Path) -> None:
    assert _untyped_in(path) == []
