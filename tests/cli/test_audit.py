"""``decaylab audit`` end to end: targets, every output format, --out, and bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decaylab.cli._app import app as decaylab_app

SRC = Path(__file__).resolve().parents[2] / "src"


def invoke(*args: str):
    return CliRunner().invoke(decaylab_app, ["audit", *args])


def flat(text: str) -> str:
    """Error text without the box drawing and line wrapping of Typer's rich output."""
    return " ".join(text.replace("│", " ").split())


def test_audit_is_registered_on_the_decaylab_app():
    assert "audit" in {c.name for c in decaylab_app.registered_commands}


def test_table_by_default():
    result = invoke("torch.optim.AdamW", "torch.optim.SGD", "--jobs", "0", "-q")
    assert result.exit_code == 0, result.output
    assert "torch.optim.AdamW" in result.stdout
    assert "decoupled L2 (scaled by lr)" in result.stdout
    assert "coupled L2" in result.stdout


def test_json_csv_markdown_carry_the_same_labels():
    pytest.importorskip("torch_optimizer")
    targets = ["torch.optim.AdamW", "torch_optimizer.SGDW", "--jobs", "0", "-q"]
    as_json = json.loads(invoke(*targets, "--json").stdout)
    labels = {r["name"]: r["label"] for r in as_json["results"]}
    assert labels == {
        "torch.optim.AdamW": "decoupled L2 (scaled by lr)",
        "torch_optimizer.SGDW": "constant shift (scaled by lr)",
    }
    rows = list(csv.DictReader(io.StringIO(invoke(*targets, "--csv").stdout)))
    assert {r["name"]: r["label"] for r in rows} == labels
    markdown = invoke(*targets, "--markdown").stdout
    assert markdown.startswith("# Weight-decay audit")
    assert "| `torch_optimizer.SGDW` | constant shift (scaled by lr) |" in markdown
    assert "**Surprising behaviour (1 optimizers):**" in markdown


def test_module_target_with_worker_processes_and_out_file(tmp_path):
    out = tmp_path / "report.json"
    result = invoke("decaylab", "--json", "--out", str(out), "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "wrote" in result.stderr
    names = [r["name"] for r in json.loads(out.read_text())["results"]]
    assert names == ["decaylab.AdamW", "decaylab.DecayWrapper", "decaylab.SGD", "decaylab.SGDW"]


def test_unknown_target_names_it_and_the_allowed_kinds():
    result = invoke("torch.optim.Nope")
    assert result.exit_code == 2
    assert "target 'torch.optim.Nope': module torch.optim has no attribute 'Nope'" in flat(result.stderr)
    assert "expected a class path" in flat(result.stderr)


def test_module_without_optimizers_says_so():
    result = invoke("json")
    assert result.exit_code == 2
    assert "module json contains no torch.optim.Optimizer subclasses" in flat(result.stderr)


def test_no_target_and_two_formats_are_errors():
    assert "no target given" in flat(invoke().stderr)
    result = invoke("torch.optim.SGD", "--json", "--csv")
    assert result.exit_code == 2
    assert "choose at most one of --json, --csv, --markdown (got --json and --csv)" in flat(result.stderr)


def test_python_dash_m_decaylab_audit_in_a_subprocess():
    """The real entry point, as a user types it."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "decaylab", "audit", "torch.optim.Adam", "--csv", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (row,) = csv.DictReader(io.StringIO(done.stdout))
    assert (row["name"], row["label"]) == ("torch.optim.Adam", "adaptive-coupled")
