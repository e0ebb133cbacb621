"""Lightning + decaylab under the ddp strategy on 2 CPU processes: trains, and a resumed run equals
an uninterrupted one (the optimizer's momentum and the scheduler come back from the checkpoint)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "lightning_ddp_digits.py"


def run(out: Path, *args: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def final(out: Path, rank: int) -> dict:
    return torch.load(out / f"final_rank{rank}.pt", weights_only=False)


def test_ddp_trains_and_resumes_identically(tmp_path: Path) -> None:
    straight, half, resumed = tmp_path / "straight", tmp_path / "half", tmp_path / "resumed"
    run(straight, "--epochs", "4")
    run(half, "--epochs", "2", "--schedule-epochs", "4")
    run(resumed, "--epochs", "4", "--resume", str(half / "last.ckpt"))

    a0, a1, b0 = final(straight, 0), final(straight, 1), final(resumed, 0)
    assert a0["world_size"] == 2
    assert a0["val_acc"] > 0.9, "the digits CNN should learn"
    for name, weight in a0["weights"].items():
        assert torch.equal(weight, a1["weights"][name]), f"ranks disagree on {name}"
        torch.testing.assert_close(b0["weights"][name], weight, rtol=1e-6, atol=1e-7)
    # the optimizer state really came back: momentum buffers exist and match
    states_a, states_b = a0["optimizer"]["state"], b0["optimizer"]["state"]
    assert states_a.keys() == states_b.keys()
    for index, state in states_a.items():
        torch.testing.assert_close(states_b[index]["momentum_buffer"], state["momentum_buffer"], rtol=1e-6, atol=1e-7)
    assert final(half, 0)["optimizer"]["param_groups"][0]["lr"] != a0["optimizer"]["param_groups"][0]["lr"]
