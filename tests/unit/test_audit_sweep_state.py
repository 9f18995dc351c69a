"""The audit job's sweep state (cashew.jobs.service._Sweep): what it saves at a checkpoint is
what it goes on from, and an item two users' reads share is named once, across checkpoints."""

from __future__ import annotations

from cashew import reports
from cashew.jobs.service import _Sweep


def _found(*discrepancies: reports.Discrepancy) -> reports.UsersAudit:
    return reports.UsersAudit(chains=1, entries=2, discrepancies=list(discrepancies))


UNREADABLE = reports.Discrepancy(kind="record", payment_id="pay_1", problem="unreadable")
DRIFT = reports.Discrepancy(kind="balance", user_id="usr_1", currency="USD", balance=5)


def test_an_unreadable_record_both_parties_read_is_named_once_even_after_a_checkpoint():
    sweep = _Sweep()
    sweep.add(_found(UNREADABLE, DRIFT))
    resumed = _Sweep.model_validate_json(sweep.model_dump_json())  # the next invocation
    resumed.add(_found(UNREADABLE))
    audit = resumed.audit()
    assert audit.discrepancies == [UNREADABLE, DRIFT]
    assert (audit.chains, audit.entries) == (2, 4)
    assert not audit.balances_match and audit.chains_valid


def test_a_clean_sweep_is_a_clean_audit():
    sweep = _Sweep()
    sweep.add(_found())
    audit = sweep.audit()
    assert audit.chains_valid and audit.balances_match and audit.card_money_explained
