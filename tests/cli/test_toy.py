"""``decaylab toy`` end to end: seed 2 by default, files with --out, JSON, bad input."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from decaylab.cli import app
from decaylab.sandbox.methods import METHODS

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["toy", *args], env={"COLUMNS": "100"})


def flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def summary(output: str) -> dict[str, list[str]]:
    """``{method: [lam, w_1, ..., loss, cf error, cf steps...]}`` from the summary table's rows."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] in METHODS:
            rows[cells[0]] = cells[1:]
    return rows


def test_no_arguments_is_seed_two() -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    rows = summary(result.output)
    assert list(rows) == ["none", "coupled_l2"]
    lam, w1, w2, loss, error, reach = rows["coupled_l2"]
    assert (lam, reach) == ("0.01", "all")
    assert float(w1) == pytest.approx(0.3326696, abs=5e-6)  # DESIGN.md: w1 after 1000 steps
    assert float(w2) == pytest.approx(0.9799**1000, rel=1e-4)  # per-step factor 0.9799
    assert float(rows["none"][1]) == pytest.approx(0.3676954, abs=5e-6)
    assert float(loss) == pytest.approx(0.05 * 0.3326696**2, rel=1e-3)
    assert float(error) < 1e-13
    assert "1000 steps" in result.output


def test_out_writes_csv_json_and_plots(tmp_path) -> None:
    out = tmp_path / "toy"
    result = invoke("--methods", "none,decoupled_l2,l1:0.1", "--steps", "25", "--lr", "0.05", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "toy_loss.png", "toy_paths.png", "toy_steps.csv", "toy_summary.json", "toy_weights.png"
    ]  # fmt: skip
    rows = list(csv.DictReader((out / "toy_steps.csv").read_text().splitlines()))
    assert len(rows) == 3 * 26
    assert {r["method"] for r in rows} == {"none", "decoupled_l2", "l1"}
    saved = json.loads((out / "toy_summary.json").read_text())
    assert [s["method"] for s in saved] == ["none", "decoupled_l2", "l1"]
    assert saved[2]["strength"] == 0.1
    last_l1 = [r for r in rows if r["method"] == "l1"][-1]
    assert float(last_l1["w_1"]) == pytest.approx(saved[2]["final_weights"][0], rel=1e-15)
    for png in ("toy_paths.png", "toy_loss.png", "toy_weights.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_partial_closed_forms_are_footnoted() -> None:
    result = invoke("--methods", "l1:0.1,proximal_l1:0.1", "--init", "1,0.2", "--lr", "0.05", "--steps", "60")
    assert result.exit_code == 0, result.output
    rows = summary(result.output)
    assert rows["l1"][-1] == "*"  # the sign rule's closed form stops at w_2's sign flip
    assert rows["l1"][-2].startswith("0-")
    assert rows["proximal_l1"][-1] == "all"  # exact zero is absorbing without momentum
    assert "* l1: w_2 to step" in result.output


def test_json_summary_with_momentum() -> None:
    result = runner.invoke(
        app, ["toy", "--json", "--methods", "coupled_l2,decoupled_l2", "--momentum", "0.9", "--steps", "200"]
    )
    assert result.exit_code == 0, result.output
    coupled, decoupled = json.loads(result.stdout)
    assert coupled["final_weights"][0] == pytest.approx(0.09464, abs=5e-6)  # DESIGN.md's momentum oracle
    assert decoupled["final_weights"][0] == pytest.approx(0.11773, abs=5e-6)
    assert coupled["closed_form_error"] < 1e-12


def test_adam_base_and_three_coordinates() -> None:
    result = invoke("--base", "adam", "--curvatures", "1,2,3", "--init=-1,0.5,2", "--steps", "5")
    assert result.exit_code == 0, result.output
    assert summary(result.output)["none"][-1] == "none"  # no closed form column value
    assert "no closed form: the adam base is not affine" in result.output


@pytest.mark.parametrize(
    ("args", "flag", "words"),
    [
        (["--methods", "none,nope"], "--methods", "unknown method 'nope'; choose from none, coupled_l2, decoupled_l2"),
        (["--methods", "l1:x"], "--methods", "strength of 'l1' is not a number"),
        (["--steps", "-5"], "--steps", "greater than or equal to 1"),
        (["--steps", "0"], "--steps", "greater than or equal to 1"),
        (["--lr", "0"], "--lr", "expected a number > 0"),
        (["--lr", "inf"], "--lr", "finite"),
        (["--momentum", "1.5"], "--momentum", "[0, 1)"),
        (["--strength", "-0.1"], "--strength", "greater than or equal to 0"),
        (["--curvatures", "1,x"], "--curvatures", "'x' is not a number"),
        (["--curvatures=-1,2"], "--curvatures", ">= 0"),
        (["--init", "1,2,3"], "--init", "one start value per curvature (2)"),
        (["--base", "sgdm"], "--base", "sgdm"),
        (["--scale", "cosine"], "--scale", "cosine"),
        (["--momentum", "0.5", "--base", "adam"], "--momentum", "only used with base 'sgd'"),
    ],
)
def test_bad_input_names_the_flag(args: list[str], flag: str, words: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert flag in result.output
    assert words in flat(result.output)


def test_help_explains_the_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for words in ("Seed 2 generalized", "--methods", "--curvatures", "--momentum", "--out", "closed form"):
        assert words in result.output
