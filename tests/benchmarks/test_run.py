"""The runner end to end on the digits size (few candidates, quick settings; no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import run
from benchmarks.cases import (
    ADAMW_OPTIONS,
    FAMILIES,
    RULE_PASS_IMPLS,
    SGD_OPTIONS,
    Workspace,
    base_steps,
    equivalents,
)
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


@pytest.mark.parametrize(
    ("family", "optimizer", "torch_optimizer"), [("sgd", "SGDW", "SGD"), ("adamw", "AdamW", "AdamW")]
)
@pytest.mark.parametrize("rule", ["l1", "proximal_l1", "elastic_net", "toward_reference"])
@pytest.mark.parametrize("impl", list(RULE_PASS_IMPLS))
def test_torch_with_rule_passes_computes_decaylabs_update(
    family: str, optimizer: str, torch_optimizer: str, rule: str, impl: str
) -> None:
    """The equivalent a decaylab row is judged against must compute the same weights, and the rule
    must show in them: the weights are moved 1.0 away from the references taken at construction."""
    torch_ws, decaylab_ws, plain_ws = (Workspace(digits_shapes()) for _ in range(3))
    equivalent = next(
        c for c in FAMILIES[family](torch_ws) if c.key == f"torch.optim:{torch_optimizer}+passes:{rule}:{impl}"
    )
    ours = next(c for c in FAMILIES[family](decaylab_ws) if c.key == f"decaylab:{optimizer}:{rule}:loop")
    options = SGD_OPTIONS if family == "sgd" else ADAMW_OPTIONS
    no_rule = getattr(torch.optim, torch_optimizer)(plain_ws.params, **{**options, "weight_decay": 0.0})
    runners = [c.build() for c in (equivalent, ours)]
    for runner in runners:
        runner.prepare()
    steps = [r.step for r in runners] + [no_rule.step]
    with torch.no_grad():
        for ws in (torch_ws, decaylab_ws, plain_ws):
            for p in ws.params:
                p.add_(1.0)
    for step in steps:
        for _ in range(3):
            step()
    rtol, atol = 1e-6, 1e-7
    for a, b in zip(torch_ws.params, decaylab_ws.params, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    rule_effect = max((a - b).abs().max().item() for a, b in zip(decaylab_ws.params, plain_ws.params, strict=True))
    assert rule_effect > 10 * (2 * rtol + atol), f"the rule barely moved the weights ({rule_effect:.2e})"


def test_a_rule_is_compared_with_torch_rows_that_compute_it_and_with_the_plain_step() -> None:
    ws = Workspace(digits_shapes())
    sgd = FAMILIES["sgd"](ws)
    by_key = {c.key: c for c in sgd}
    proximal = by_key["decaylab:SGDW:proximal_l1:fused"]
    assert {c.key for c in equivalents(proximal, sgd, "torch.optim")} == {
        f"torch.optim:SGD+passes:proximal_l1:{impl}" for impl in RULE_PASS_IMPLS
    }
    plain = {f"torch.optim:SGD:coupled_l2:{impl}" for impl in ("loop", "foreach", "fused")}
    assert {c.key for c in base_steps(proximal, sgd)} == plain
    l2 = by_key["decaylab:SGDW:l2:fused"]
    assert {c.key for c in equivalents(l2, sgd, "torch.optim")} == plain  # coupled: the same traffic
    assert {c.key for c in equivalents(l2, sgd, "pytorch_optimizer")} == {
        "pytorch_optimizer:SGDW:l2:loop",
        "pytorch_optimizer:SGDW:l2:foreach",
    }


def test_quick_run_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    only = ",".join(
        [
            "decaylab:SGDW:l2:loop",
            "decaylab:SGDW:toward_reference:foreach",
            "torch.optim:SGD:coupled_l2:loop",
            "torch.optim:SGD+passes:toward_reference:fused+loop",
            "torch_optimizer:SGDW:constant_shift",
            "decaylab:add_to_grad:p=2:loop",
            "autograd:penalty().backward():p=2",
        ]
    )
    argv = ["--size", "digits", "--quick", "--families", "sgd,penalty", "--only", only, "--device", "cpu"]
    report = run.main([*argv, "--json", str(out)])
    assert report["machine"]["device"] == "cpu" and report["sizes"]["digits"]["device"] == "cpu"
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    rows = {r["key"]: r for r in report["sizes"]["digits"]["rows"]}
    assert set(rows) == {
        "decaylab:SGDW:l2:loop",
        "decaylab:SGDW:toward_reference:foreach",
        "torch.optim:SGD:coupled_l2:loop",
        "torch.optim:SGD+passes:toward_reference:fused+loop",
        "torch_optimizer:SGDW:constant_shift:loop",
        "decaylab:add_to_grad:p=2:loop",
        "autograd:penalty().backward():p=2:loop",
    }
    sgdw = rows["decaylab:SGDW:l2:loop"]
    assert sgdw["x_torch"] == pytest.approx(sgdw["step_ms"] / rows["torch.optim:SGD:coupled_l2:loop"]["step_ms"])
    assert sgdw["torch_best"] == "torch.optim.SGD loop"
    assert sgdw["x_base"] == sgdw["x_torch"]  # for L2 the plain step is the equivalent
    toward = rows["decaylab:SGDW:toward_reference:foreach"]
    passes = rows["torch.optim:SGD+passes:toward_reference:fused+loop"]
    assert toward["x_torch"] == pytest.approx(toward["step_ms"] / passes["step_ms"])
    assert toward["x_base"] == pytest.approx(toward["step_ms"] / rows["torch.optim:SGD:coupled_l2:loop"]["step_ms"])
    assert "x_torch_optimizer" in sgdw
    assert sgdw["bytes_moved"] == 5 * 12_730 * 4
    assert rows["decaylab:SGDW:toward_reference:foreach"]["bytes_moved"] == 6 * 12_730 * 4  # reads w_ref too
    assert all(r["step_ms"] > 0 and r["floor_ms"] > 0 and r["x_floor"] > 0 for r in rows.values())
    assert rows["decaylab:add_to_grad:p=2:loop"]["peak_bytes"] == 0  # in place: no temporaries
    penalty = rows["decaylab:add_to_grad:p=2:loop"]
    assert penalty["same_streams_kernel"] == "add"
    assert 0 < penalty["x_same_streams"] <= penalty["x_floor"]  # the floor's kernel is the fastest, round by round
    assert "x_same_streams" not in sgdw  # no bandwidth kernel moves SGD's five streams
    printed = capsys.readouterr().out
    assert "x floor" in printed and "load average before" in printed


def test_an_unavailable_device_stops_the_run_before_any_work(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        run.main(["--size", "digits", "--device", "tpu"])
    assert stopped.value.code == 2
    assert "--device: expected one of cpu, cuda" in capsys.readouterr().err


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
            "same_streams_kernel": "add",
            "x_same_streams": 1.05,
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
    judged = run.targets({"rows": rows})
    assert {t["row"]: t["met"] for t in judged} == {"a": True, "b": False, "d": True}
    penalty = next(t for t in judged if t["row"] == "d")
    assert (penalty["same_streams_kernel"], penalty["x_same_streams"]) == ("add", 1.05)  # carried to the summary
    machine = {"cpu": "x", "logical_cpus": 2, "torch": "2", "torch_threads": 1}
    machine |= {"load_average_before": (0, 0, 0), "load_average_after": (0, 0, 0)}
    line = run.summary({"machine": machine, "sizes": {"resnet50": {"targets": judged}}})
    assert "d: x floor 1.15 (x the add kernel, same streams: 1.05) -> met" in line
