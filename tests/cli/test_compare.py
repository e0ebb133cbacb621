"""`decaylab compare` end to end: the default study's --quick version, configs and flags, resume, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decaylab.cli import app
from decaylab.cli.compare import default_out
from decaylab.sandbox.store import FILENAME, Store
from decaylab.sandbox.study import Study, default_study

TINY = ["--dataset", "moons", "--model", "linear", "--epochs", "2", "--seeds", "0,1"]


def invoke(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


def test_quick_default_study_runs_and_prints_the_report(tmp_path: Path) -> None:
    """The same study as `decaylab compare`, seconds long: digits, SimpleCNN, six methods."""
    result = invoke("--quick", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'report' / 'report.html'}" in result.output
    for method in ("none", "coupled_l2", "decoupled_l2", "l1", "proximal_l1", "penalty_l2"):
        assert method in result.output
    assert "22 finished" in result.output
    assert Study.from_toml(tmp_path / "study.toml") == default_study().quick()


def test_default_out_is_named_after_the_study() -> None:
    study = default_study()
    assert default_out(study, quick=False) == Path("runs") / f"digits-cnn-{study.fingerprint[:8]}"
    assert default_out(study.quick(), quick=True).name.startswith("digits-cnn-quick-")


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text(
        '[task]\ndataset = "wine"\nmodel = "linear"\nepochs = 5\n\n'
        '[grid]\nmethods = ["none", "l1"]\nstrengths = [0.001]\nseeds = [0]\n'
    )
    out = tmp_path / "out"
    result = invoke(
        "--config", str(config), "--epochs", "2", "--strengths", "0.01,0.1", "--out", str(out), "--no-report"
    )
    assert result.exit_code == 0, result.output
    with Store.read(out) as store:
        study = store.study()
        runs = store.runs()
    assert study["task"]["dataset"] == "wine"
    assert study["task"]["epochs"] == 2
    assert [(r.method, r.strength) for r in runs] == [("none", 0.0), ("l1", 0.01), ("l1", 0.1)]
    assert not (out / "report").exists()


def test_rerunning_resumes_and_a_different_study_is_refused(tmp_path: Path) -> None:
    args = [*TINY, "--methods", "none,coupled_l2", "--strengths", "0.01", "--out", str(tmp_path), "--no-report"]
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 0
    assert "(4 already done" in again.output
    different = invoke(*[a if a != "0.01" else "0.02" for a in args])
    assert different.exit_code == 1
    assert "holds a different study" in different.output
    assert "grid.strengths: stored [0.01], asked [0.02]" in different.output


def test_an_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    result = invoke(*TINY, "--out", str(target))
    assert result.exit_code == 1
    assert "is a file, not a study directory" in result.output
    assert target.read_text() == "keep me"


def test_lr_by_strength_study_draws_heatmaps(tmp_path: Path) -> None:
    result = invoke(
        *TINY, "--methods", "none,l1", "--strengths", "0.001,0.01", "--lrs", "0.05,0.2", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "lr_strength_heatmaps.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--methods", "none,l3"), "--methods: unknown method 'l3'; choose from none, coupled_l2"),
        (("--strengths", "0.1,abc"), "--strengths: 'abc' is not a valid number"),
        (("--strengths", "-0.1"), "--strengths: expected a finite number > 0"),
        (("--seeds", "1.5"), "--seeds: '1.5' is not a valid integer"),
        (("--lrs", "0"), "--lrs: expected a finite number > 0"),
        (("--epochs", "0"), "--epochs: expected an integer >= 1, got 0"),
        (("--dataset", "cifar"), "--dataset: unknown dataset 'cifar'; choose from digits"),
        (("--model", "vit"), "--model: unknown model 'vit'; choose from cnn, mlp, linear"),
        (("--rank-by", "speed"), "--rank-by: unknown ranking 'speed'; choose from test_loss, test_metric"),
        (("--dataset", "wine"), "--model: 'cnn' needs image inputs"),
        (("--executor", "dask"), "--executor: unknown executor 'dask'; choose from local, batched, ray"),
    ],
)
def test_bad_input_names_the_flag(args: tuple, message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[task]\ndataset = "moons"\nepoch = 3\n')
    result = invoke("--config", str(config))
    assert result.exit_code == 2
    assert f"{config}: epoch: unknown [task] option" in result.output
    missing = invoke("--config", str(tmp_path / "none.toml"))
    assert missing.exit_code == 2
    assert "config: no such file" in missing.output


def test_ctrl_c_keeps_what_finished_and_the_same_command_resumes(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    command = [sys.executable, "-m", "decaylab", "compare", *TINY, "--epochs", "60", "--methods", "none,l1"]
    command += ["--strengths", "0.01", "--out", str(tmp_path), "--no-report"]
    process = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(src)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell may start us with SIGINT ignored
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (tmp_path / FILENAME).exists():
            try:
                with Store.read(tmp_path) as store:
                    if any(r.status == "finished" for r in store.runs()):
                        break
            except Exception:  # the schema is being created
                pass
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted; finished runs and epochs are kept" in output
    resumed = invoke(*command[command.index("compare") + 1 :])
    assert resumed.exit_code == 0, resumed.output
    assert "4 finished" in resumed.output
    assert "(0 already done" not in resumed.output
