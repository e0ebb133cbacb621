"""The runner end to end on the digits size (few candidates, quick settings; no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.cases import FAMILIES, Workspace, equivalents
from benchmarks.shapes import digits_shapes


def test_every_rule_and_every_baseline_is_a_candidate() -> None:
    ws = Workspace(digits_shapes())
    sgd = {c.key for c in FAMILIES["sgd"](ws)}
    for rule in ("l2", "l1", "proximal_l1", "elastic_net", "toward_reference"):
        for impl in ("loop", "foreach", "fused"):
            assert f"decaylab:SGDW:{rule}:{impl}" in sgd
    assert {"torch.optim:SGD:coupled_l2:fused", "torch_optimizer:SGDW:constant_shift:loop"} <= sgd
    assert "pytorch_optimizer:SGDW:l2:foreach" in sgd
    adamw = {c.key for c in FAMILIES["adamw"](ws)}
    assert {"decaylab:AdamW:toward_reference:fused", "torch.optim:AdamW:l2:fused"} <= adamw
    penalty = FAMILIES["penalty"](ws)
    p1 = next(c for c in penalty if c.key == "decaylab:add_to_grad:p=1:fused")
    assert [e.key for e in equivalents(p1, penalty, "autograd")] == ["autograd:penalty().backward():p=1:loop"]


def test_quick_run_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    only = ",".join(
        [
            "decaylab:SGDW:l2:loop",
            "decaylab:SGDW:toward_reference:foreach",
            "torch.optim:SGD:coupled_l2:loop",
            "torch_optimizer:SGDW:constant_shift",
            "decaylab:add_to_grad:p=2:loop",
            "autograd:penalty().backward():p=2",
        ]
    )
    report = run.main(["--size", "digits", "--quick", "--families", "sgd,penalty", "--only", only, "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    rows = {r["key"]: r for r in report["sizes"]["digits"]["rows"]}
    assert set(rows) == {
        "decaylab:SGDW:l2:loop",
        "decaylab:SGDW:toward_reference:foreach",
        "torch.optim:SGD:coupled_l2:loop",
        "torch_optimizer:SGDW:constant_shift:loop",
        "decaylab:add_to_grad:p=2:loop",
        "autograd:penalty().backward():p=2:loop",
    }
    sgdw = rows["decaylab:SGDW:l2:loop"]
    assert sgdw["x_torch"] == pytest.approx(sgdw["step_ms"] / rows["torch.optim:SGD:coupled_l2:loop"]["step_ms"])
    assert sgdw["torch_best"] == "torch.optim.SGD loop"
    assert "x_torch_optimizer" in sgdw
    assert sgdw["bytes_moved"] == 5 * 12_730 * 4
    assert rows["decaylab:SGDW:toward_reference:foreach"]["bytes_moved"] == 6 * 12_730 * 4  # reads w_ref too
    assert all(r["step_ms"] > 0 and r["floor_ms"] > 0 and r["x_floor"] > 0 for r in rows.values())
    assert rows["decaylab:add_to_grad:p=2:loop"]["peak_bytes"] == 0  # in place: no temporaries
    printed = capsys.readouterr().out
    assert "x floor" in printed and "load average before" in printed


def test_targets_are_judged_on_fused_rows_and_the_best_penalty_mode() -> None:
    rows = [
        {
            "library": "decaylab",
            "family": "sgd",
            "optimizer": "SGDW",
            "impl": "fused",
            "key": "a",
            "x_floor": 1.1,
            "x_torch": 0.9,
            "rule": "l2",
        },
        {
            "library": "decaylab",
            "family": "adamw",
            "optimizer": "AdamW",
            "impl": "fused",
            "key": "b",
            "x_floor": 1.3,
            "x_torch": 0.9,
            "rule": "l2",
        },
        {
            "library": "decaylab",
            "family": "sgd",
            "optimizer": "SGDW",
            "impl": "loop",
            "key": "c",
            "x_floor": 3.0,
            "rule": "l2",
        },
        {
            "library": "decaylab",
            "family": "penalty",
            "optimizer": "add_to_grad",
            "impl": "loop",
            "key": "d",
            "x_floor": 1.15,
            "rule": "p=2",
        },
        {
            "library": "decaylab",
            "family": "penalty",
            "optimizer": "add_to_grad",
            "impl": "fused",
            "key": "e",
            "x_floor": 1.5,
            "rule": "p=2",
        },
    ]
    verdicts = {t["row"]: t["met"] for t in run.targets({"rows": rows})}
    assert verdicts == {"a": True, "b": False, "d": True}
