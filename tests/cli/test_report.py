"""`decaylab report RUN_DIR` end to end."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from decaylab.cli import app
from decaylab.sandbox.runner import run_study
from decaylab.sandbox.store import FILENAME
from decaylab.sandbox.study import Study

STUDY = Study.from_dict(
    {
        "task": {"dataset": "moons", "model": "linear", "epochs": 2},
        "grid": {"methods": ["none", "decoupled_l2"], "strengths": [0.01, 0.1], "seeds": [0, 1], "lrs": [0.1]},
    }
)


def test_rebuilds_the_report_and_prints_the_summary(tmp_path: Path) -> None:
    run_study(STUDY, tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "elsewhere")])
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'elsewhere' / 'report.html'}" in result.output
    assert "decoupled_l2" in result.output
    assert "each method at its best strength" in result.output
    assert (tmp_path / "elsewhere" / "summary.md").exists()
    assert (tmp_path / "elsewhere" / "runs.csv").exists()
    by_file = CliRunner().invoke(app, ["report", str(tmp_path / FILENAME)])
    assert by_file.exit_code == 0, by_file.output
    assert (tmp_path / "report" / "report.html").exists()


def test_missing_and_foreign_directories_are_reported(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    empty = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert empty.exit_code == 1
    assert "no results database here" in empty.output
    (tmp_path / FILENAME).write_bytes(b"\x00" * 100)
    foreign = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert foreign.exit_code == 1
    assert "not a SQLite database" in foreign.output
    assert (tmp_path / FILENAME).read_bytes() == b"\x00" * 100
