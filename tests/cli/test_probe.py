"""``decaylab probe`` end to end: the seed's table, JSON, CSV, files, third-party rows, bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from decaylab.cli import app

runner = CliRunner()


def invoke(*args: str, columns: int = 120):
    return runner.invoke(app, ["probe", *args], env={"COLUMNS": str(columns)})


def flat(output: str) -> str:
    """The output with box borders and line wrapping removed (error panels wrap long messages)."""
    return " ".join(output.replace("│", " ").split())


def parse_tables(output: str) -> dict[tuple[str, str], dict[str, list[str]]]:
    """``{(source, method): {param: [before, grad, after, change]}}`` from the rendered tables."""
    parsed: dict[tuple[str, str], dict[str, list[str]]] = {}
    source, method, new_block = None, None, False
    for line in output.splitlines():
        if line.strip() in ("decaylab", "torch.optim", "third-party"):
            source = line.strip()
        elif line.startswith(("┡", "├")):
            new_block = True
        elif line.startswith("│"):
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if new_block:
                method, new_block = cells[0], False
                parsed[(source, method)] = {}
            if cells[1]:
                parsed[(source, method)][cells[1]] = cells[2:]
    return parsed


SEED_ROWS = [
    # (source, method, param, before, grad, after, change): DESIGN.md's seed-1 table
    ("decaylab", "SGD", "conv1.weight", "1", "0", "0.99", "-0.01"),
    ("decaylab", "SGD", "fc.weight [2]", "-1.5", "0", "-1.485", "0.015"),
    ("torch.optim", "SGD", "conv1.weight", "1", "0", "0.99", "-0.01"),
    ("torch.optim", "SGD", "fc.weight [2]", "-1.5", "0", "-1.485", "0.015"),
    ("decaylab", "SGDW l2 s=none", "conv1.weight", "1", "0", "0.9", "-0.1"),
    ("decaylab", "SGDW l2 s=none", "fc.weight [2]", "-1.5", "0", "-1.35", "0.15"),
    ("decaylab", "SGDW l1 s=none", "conv1.weight", "1", "0", "0.9", "-0.1"),
    ("decaylab", "SGDW l1 s=none", "fc.weight [2]", "-1.5", "0", "-1.4", "0.1"),
    ("decaylab", "penalty L2 + SGD", "conv1.weight", "1", "0.2", "0.98", "-0.02"),
    ("decaylab", "penalty L2 + SGD", "fc.weight [2]", "-1.5", "-0.3", "-1.47", "0.03"),
    ("decaylab", "penalty L1 + SGD", "conv1.weight", "1", "0.1", "0.99", "-0.01"),
    ("decaylab", "penalty L1 + SGD", "fc.weight [2]", "-1.5", "-0.1", "-1.49", "0.01"),
]


def test_no_arguments_prints_the_seed_table() -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    tables = parse_tables(result.output)
    for source, method, param, *numbers in SEED_ROWS:
        assert tables[(source, method)][param] == numbers, (source, method, param)
    assert "penalty 0.55" in result.output
    assert "penalty 0.4" in result.output
    for (_, _), params in tables.items():  # zero biases stay zero (no third-party row by default)
        assert params["conv1.bias"][2] == params["fc.bias"][2] == "0"


def test_the_default_80_column_table_keeps_every_number_whole() -> None:
    result = invoke(columns=80)
    assert result.exit_code == 0
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    tables = parse_tables(result.output)
    assert tables[("decaylab", "SGDW l1 s=none")]["fc.weight [2]"] == ["-1.5", "0", "-1.4", "0.1"]


def test_third_party_sgdw_row_shows_the_constant_shift() -> None:
    pytest.importorskip("torch_optimizer")
    result = invoke("--optimizer", "torch_optimizer.SGDW")
    assert result.exit_code == 0, result.output
    row = parse_tables(result.output)[("third-party", "torch_optimizer.SGDW")]
    assert row["conv1.weight"] == ["1", "0", "0.99", "-0.01"]
    assert row["fc.weight [2]"] == ["-1.5", "0", "-1.51", "-0.01"]
    assert row["conv1.bias"] == row["fc.bias"] == ["0", "0", "-0.01", "-0.01"]


def test_an_optimizer_that_cannot_be_built_gets_a_row_saying_why() -> None:
    result = invoke("--optimizer", "torch.optim.LBFGS", "--optimizer", "torch.optim.SGD")
    assert result.exit_code == 0, result.output
    assert "could not construct: TypeError" in result.output
    assert "weight_decay" in result.output
    assert parse_tables(result.output)[("third-party", "torch.optim.SGD")]["conv1.weight"][2] == "0.99"


@pytest.mark.parametrize(
    ("args", "flag", "words"),
    [
        (["--optimizer", "nosuchpkg.Opt"], "--optimizer", "No module named 'nosuchpkg'"),
        (["--optimizer", "torch_optimizer.Nope"], "--optimizer", "has no attribute 'Nope'"),
        (["--optimizer", "SGDW"], "--optimizer", "expected module.Class"),
        (["--lr", "0"], "--lr", "expected a number > 0"),
        (["--lr", "nan"], "--lr", "finite"),
        (["--wd", "-1"], "--weight-decay", ">= 0"),
        (["--fc-weight", "inf"], "--fc-weight", "finite"),
        (["--lr", "abc"], "--lr", "valid number"),
        (["--scale", "cosine"], "--scale", "cosine"),
        (["--json", "--csv"], "--json", "choose one"),
    ],
)
def test_bad_input_names_the_flag(args: list[str], flag: str, words: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert flag in result.output
    assert words in flat(result.output)


def test_json_output() -> None:
    result = runner.invoke(app, ["probe", "--json", "--lr", "0.2", "--wd", "0.5"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["settings"]["lr"] == 0.2
    sgdw = next(r for r in data["rows"] if r["label"] == "SGDW l2 s=none")
    conv = next(p for p in sgdw["params"] if p["name"] == "conv1.weight")
    assert conv["after"] == [pytest.approx(0.5, rel=1e-6)]  # (1 - lam) with s = 1


def test_csv_output_and_out_dir(tmp_path) -> None:
    out = tmp_path / "probe-out"
    result = runner.invoke(app, ["probe", "--csv", "--out", str(out), "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    sgd = [r for r in rows if r["source"] == "torch.optim" and r["method"] == "SGD" and r["param"] == "fc.weight"]
    assert [float(r["after"]) for r in sgd] == [pytest.approx(-1.485, rel=1e-15)] * 2
    assert (out / "probe.csv").read_text() == result.stdout
    assert json.loads((out / "probe.json").read_text())["settings"]["dtype"] == "float64"
    assert "wrote" in result.stderr


def test_out_must_be_a_directory(tmp_path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    result = invoke("--out", str(target))
    assert result.exit_code == 2
    assert "exists and is not a directory" in flat(result.output)
    assert target.read_text() == "keep me"


def test_help_explains_the_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for words in ("Seed 1 as a table", "--optimizer", "--loss-scale", "--json", "--csv", "--out"):
        assert words in result.output


def test_module_entry_point_runs_the_probe() -> None:
    """``python -m decaylab probe --json`` in a fresh interpreter (the installed entry's code path)."""
    done = subprocess.run(
        [sys.executable, "-m", "decaylab", "probe", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    rows = {(r["source"], r["label"]): r for r in json.loads(done.stdout)["rows"]}
    assert rows[("decaylab", "penalty L2 + SGD")]["penalty"] == pytest.approx(0.55, rel=1e-6)
