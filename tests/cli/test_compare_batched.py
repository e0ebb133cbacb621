"""`decaylab compare --executor batched`: says which plan it picked for each group, and keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decaylab.cli import app
from decaylab.sandbox.batched import plan as plan_module
from decaylab.sandbox.store import Store

TINY = ["--dataset", "moons", "--model", "linear", "--epochs", "2", "--seeds", "0,1", "--methods", "none,l1,coupled_l2"]


def test_compare_batched_prints_and_records_the_plan(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["compare", *TINY, "--strengths", "0.01", "--executor", "batched", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "plan: moons/linear (6 configurations): " in result.output
    assert "per stacked step vs 6 x " in result.output  # the measured numbers behind the choice
    assert "6 finished" in result.output
    assert "executor batched" in result.output
    (plan,) = [json.loads(line) for line in (tmp_path / "plans.jsonl").read_text().splitlines()]
    assert plan["configurations"] == 6
    assert plan["plan"] in ("stacked", "sequential")
    assert plan["stacked_step_s"] > 0
    with Store.read(tmp_path) as store:
        assert sorted(plan["run_ids"]) == sorted(r.run_id for r in store.runs())
    again = CliRunner().invoke(
        app, ["compare", *TINY, "--strengths", "0.01", "--executor", "batched", "--out", str(tmp_path)]
    )
    assert again.exit_code == 0, again.output
    assert "6 already done" in again.output
    assert "plan:" not in again.output  # nothing left to plan


def test_compare_batched_compile_compiles_the_stacked_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "choose_plan", lambda size, timing: (True, "stacking, for this test"))
    result = CliRunner().invoke(
        app, ["compare", *TINY, "--strengths", "0.01", "--executor", "batched", "--compile", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "6 finished" in result.output
    assert "plan: moons/linear (6 configurations): stacked, compiled (stacking, for this test)" in result.output
    (plan,) = [json.loads(line) for line in (tmp_path / "plans.jsonl").read_text().splitlines()]
    assert (plan["plan"], plan["compiled"]) == ("stacked", True)


def test_compile_is_only_for_the_batched_executor(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", *TINY, "--compile", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--compile: only used with --executor batched or ray (got --executor local)" in result.output
