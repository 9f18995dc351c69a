"""The audit job's sweep state (cashew.jobs.service._Sweep): what it saves at a checkpoint is
what it goes on from, and an item two users' reads share is named once, across checkpoints;
what each page found is its own part, so a checkpoint never repeats what came before."""

from __future__ import annotations

from cashew import reports
from cashew.jobs.service import _audit_of, _Found, _Sweep


def _audited(*discrepancies: reports.Discrepancy) -> reports.UsersAudit:
    return reports.UsersAudit(chains=1, entries=2, discrepancies=list(discrepancies))


UNREADABLE = reports.Discrepancy(kind="record", payment_id="pay_1", problem="unreadable")
DRIFT = reports.Discrepancy(kind="balance", user_id="usr_1", currency="USD", balance=5)


def test_an_unreadable_record_both_parties_read_is_named_once_even_after_a_checkpoint():
    sweep, first, second = _Sweep(), _Found(), _Found()
    sweep.add(_audited(UNREADABLE, DRIFT), first)
    saved = sweep.model_dump_json()
    resumed = _Sweep.model_validate_json(saved)  # the next invocation
    resumed.add(_audited(UNREADABLE), second)
    assert second.discrepancies == []
    audit = _audit_of(resumed, [first, second])
    assert audit.discrepancies == [UNREADABLE, DRIFT]
    assert (audit.chains, audit.entries) == (2, 4)
    assert not audit.balances_match and audit.chains_valid


def test_a_checkpoint_holds_counts_not_findings():
    sweep, found = _Sweep(), _Found()
    for _ in range(100):
        sweep.add(_audited(DRIFT), found)
    assert len(found.discrepancies) == 100 and "balance" not in sweep.model_dump_json()


def test_a_clean_sweep_is_a_clean_audit():
    sweep, found = _Sweep(), _Found()
    sweep.add(_audited(), found)
    audit = _audit_of(sweep, [found])
    assert audit.chains_valid and audit.balances_match and audit.card_money_explained
