"""The batched benchmark end to end on tiny settings (structure and bookkeeping; no timing assertions)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from benchmarks import batched
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.study import Study


def test_study_configs_cycle_through_every_method() -> None:
    configs = batched.study_configs(batched.TASKS["mlp"], 20, 32)
    assert [c.method for c in configs[:9]] == list(METHODS)
    assert len({c.run_id for c in configs}) == 20
    assert {c.batch_size for c in configs} == {32}
    assert {c.lr for c in configs} == {0.05, 0.1}


def test_quick_run_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "batched.json"
    report = batched.main(["--tasks", "linear", "--quick", "--threads", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    task = report["tasks"]["linear"]
    assert task["steps"]["stacked_step_s@1"] > 0
    rounds = task["steps"]["per_round_s"]
    ratios = [8 * single / stacked for single, stacked in zip(rounds["single@1"], rounds["stacked@1"], strict=True)]
    assert task["steps"]["speedup@1"] == pytest.approx(statistics.median(ratios))  # the per-round ratios' median
    compiled = [8 * single / step for single, step in zip(rounds["single@1"], rounds["compiled@1"], strict=True)]
    assert task["steps"]["compiled_speedup@1"] == pytest.approx(statistics.median(compiled))
    assert task["compile_s"]["1"] > 0
    assert task["epochs"]["compiled_speedup"] > 0 and task["epochs"]["speedup"] > 0
    assert task["memory"]["params_per_config"] == 650  # 64 inputs x 10 classes + 10 biases
    assert task["memory"]["stacked_state_bytes_per_config"] >= 3 * 650 * 4  # weights, gradients, momentum
    assert task["plan"]["plan"] in ("stacked", "sequential")
    printed = capsys.readouterr().out
    assert "configuration-steps per second, 8 configurations" in printed
    assert "compiled (1 thr)" in printed
    assert "digits/linear (8 configurations):" in printed
    assert "load average before" in printed


def test_unknown_task_is_refused() -> None:
    with pytest.raises(SystemExit):
        batched.main(["--tasks", "resnet"])


def test_drift_compares_two_thread_counts_and_the_stacks_with_the_local_executor() -> None:
    study = Study.from_dict(
        {
            "task": {"dataset": "moons", "model": "mlp", "hidden": [8], "epochs": 3, "batch_size": 50},
            "grid": {"methods": ["none", "l1"], "strengths": [0.01], "seeds": [0, 1], "lrs": [0.1]},
        }
    )
    drift = batched.measure_drift(lambda message: None, study)
    assert drift["epochs"] == [1, 2, 3]
    for name in ("local@2", "stacked@1", "compiled@1"):
        assert set(drift[name]["weight_norm_rel_diff"]) == {1, 2, 3}
        assert drift[name]["weight_norm_rel_diff"][1] < 1e-5  # rounding only, after one epoch
        assert drift[name]["final_test_accuracy_max_abs_diff"] < 1e-5
