"""`decaylab train` end to end on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decaylab.cli import app
from decaylab.sandbox.store import Store

FAST = ["--dataset", "moons", "--model", "linear", "--epochs", "3"]


def invoke(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def test_prints_a_table_of_every_epoch() -> None:
    result = invoke(*FAST, "--method", "decoupled_l2", "--strength", "0.01")
    assert result.exit_code == 0, result.output
    assert "moons / linear / decoupled_l2 λ=0.01" in result.output
    for header in ("train loss", "test acc %", "‖w‖", "|w|<1e-3 %", "τ (epochs)"):
        assert header in result.output
    lines = [line.split() for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert [line[0] for line in lines] == ["1", "2", "3"]
    assert lines[0][-1] == f"{1 / (0.05 * 0.01 * 5):.3g}"  # 300 training points / batch 64 = 5 steps


def test_json_records_are_deterministic() -> None:
    args = (*FAST, "--method", "l1", "--strength", "0.01", "--seed", "3", "--json")
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0, first.output
    records = [json.loads(line) for line in first.output.splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in records]
    assert strip == [
        {k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in second.output.splitlines()
    ]


def test_sparse_task_reports_recovered_features() -> None:
    result = invoke("--dataset", "sparse_regression", "--model", "linear", "--epochs", "2", "--lr", "0.01", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.splitlines()[-1])
    assert 0 <= record["recovered"] <= 5
    assert record["spurious"] >= 0


def test_out_keeps_the_run_in_a_store_and_resumes(tmp_path: Path) -> None:
    result = invoke(*FAST, "--method", "proximal_l1", "--strength", "0.01", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "epochs.csv").exists()
    with Store.read(tmp_path) as store:
        assert [r.status for r in store.runs()] == ["finished"]
        stored = store.epochs()
    again = invoke(*FAST, "--method", "proximal_l1", "--strength", "0.01", "--out", str(tmp_path))
    assert again.exit_code == 0, again.output
    with Store.read(tmp_path) as store:
        assert store.epochs() == stored
    other = invoke(*FAST, "--method", "l1", "--strength", "0.01", "--out", str(tmp_path))
    assert other.exit_code == 1
    assert "holds a different study" in other.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--epochs", "0"), "--epochs: expected an integer >= 1, got 0"),
        (("--lr", "-1"), "--lr: expected a finite number > 0"),
        (("--momentum", "1.5"), "--momentum: expected a finite number >= 0 and < 1"),
        (("--method", "l2", "--strength", "0.1"), "--method: unknown method 'l2'; choose from none, coupled_l2"),
        (("--dataset", "mnist"), "--dataset: unknown dataset 'mnist'; choose from digits, breast_cancer, wine"),
        (("--model", "resnet"), "--model: unknown model 'resnet'; choose from cnn, mlp, linear"),
        (("--schedule", "warmup"), "--schedule: unknown lr schedule 'warmup'; choose from constant, cosine, step"),
        (("--method", "l1"), "--strength: method 'l1' needs a strength > 0"),
        (("--hidden", "32,x", "--model", "mlp"), "--hidden: 'x' is not a valid integer"),
        (("--dataset", "wine"), "--model: 'cnn' needs image inputs (dataset 'digits')"),
        (("--samples", "50"), "--samples: bundled data set 'digits' has no 'samples' option"),
    ],
)
def test_bad_input_names_the_flag(args: tuple, message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_diverging_run_is_reported() -> None:
    result = invoke("--dataset", "sparse_regression", "--model", "linear", "--lr", "5", "--epochs", "20")
    assert result.exit_code == 1
    assert "the run diverged" in result.output
