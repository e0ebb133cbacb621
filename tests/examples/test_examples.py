"""The ported seed notebooks run and print the seeds' numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout


def test_seed1_prints_every_number() -> None:
    out = run("seed1_weight_regularizations.py")
    for number in (
        "0.9900",
        "-1.4850",
        "0.9000",
        "-1.3500",
        "0.5500",
        "0.2000",
        "-0.3000",
        "0.9800",
        "-1.4700",
        "-1.4000",
        "0.4000",
        "0.1000",
        "-0.1000",
        "-1.4900",
    ):
        assert number in out, number


def test_seed2_prints_the_oracle() -> None:
    out = run("seed2_weight_decay_toy.py")
    assert "[0.9989, 0.9799]" in out and "[0.999, 0.98]" in out
    assert "sgd_wd w1:0.8957799, w2:0.1312731" in out
    assert "sgd    w1:0.9047921, w2:0.1326196" in out
    assert "sgd_wd w1:0.3326696" in out and "sgd    w1:0.3676954" in out
