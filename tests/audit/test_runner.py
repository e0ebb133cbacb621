"""The runner: worker processes with a time limit; a hanging, raising or crashing optimizer gets a
row saying why and the audit goes on, results in the order given."""

from __future__ import annotations

import pytest
import torch

from decaylab.audit.builder import Target
from decaylab.audit.result import COUPLED_L2, NOT_PROBED, full_label
from decaylab.audit.runner import run_audit

from .synthetic import HangsInConstructor, HangsInStep, KillsTheProcess, RaisesInConstructor, RaisesInStep


def test_hangs_raises_and_crashes_become_rows_and_the_audit_goes_on():
    targets = [Target.of(c) for c in (HangsInConstructor, torch.optim.SGD, RaisesInStep, HangsInStep)]
    targets += [Target.of(c) for c in (KillsTheProcess, RaisesInConstructor, torch.optim.AdamW)]
    seen = []
    results = run_audit(targets, jobs=2, timeout=2.0, progress=False, on_result=seen.append)
    assert [r.name for r in results] == [t.name for t in targets]
    by_name = {r.name.rsplit(".", 1)[-1]: r for r in results}
    for name in ("HangsInConstructor", "HangsInStep"):
        assert (by_name[name].status, by_name[name].kind) == ("timeout", NOT_PROBED)
        assert "time limit of 2 s" in by_name[name].why
    assert by_name["KillsTheProcess"].status == "crashed"
    assert "exit code 3" in by_name["KillsTheProcess"].why
    assert "step exploded" in by_name["RaisesInStep"].why
    assert "refuses to be built" in by_name["RaisesInConstructor"].why
    assert by_name["SGD"].label == COUPLED_L2
    assert by_name["AdamW"].label == full_label("decoupled L2", "lr")
    assert len(seen) == len(targets)


def test_in_process_mode_gives_the_same_rows():
    targets = [Target.of(torch.optim.SGD), Target.of(RaisesInStep)]
    pooled = run_audit(targets, jobs=1, progress=False)
    local = run_audit(targets, jobs=0, progress=False)
    assert [(r.name, r.label, r.why) for r in pooled] == [(r.name, r.label, r.why) for r in local]


def test_bad_runner_arguments_are_named():
    with pytest.raises(ValueError, match="jobs: expected an integer >= 0"):
        run_audit([], jobs=-1)
    with pytest.raises(ValueError, match="timeout: expected a number of seconds > 0"):
        run_audit([], timeout=0)


def test_progress_bar_only_when_asked(capsys):
    run_audit([Target.of(torch.optim.SGD)], jobs=0, progress=True)
    assert "audit" in capsys.readouterr().err
    run_audit([Target.of(torch.optim.SGD)], jobs=0, progress=None)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
