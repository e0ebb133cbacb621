"""Small finished studies shared by the report tests (built once per session)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from decaylab.sandbox.runner import run_study
from decaylab.sandbox.store import FILENAME
from decaylab.sandbox.study import Study

# moons: 2 lrs x (none, coupled_l2 x 2, l1 x 2) x 2 seeds.
LR_GRID = Study.from_dict(
    {
        "task": {"dataset": "moons", "model": "mlp", "hidden": [8], "epochs": 3, "batch_size": 50},
        "grid": {
            "methods": ["none", "coupled_l2", "l1"],
            "strengths": [1e-3, 1e-1],
            "seeds": [0, 1],
            "lrs": [0.05, 0.2],
        },
    }
)
SPARSE = Study.from_dict(
    {
        "task": {"dataset": "sparse_regression", "model": "linear", "epochs": 6, "batch_size": 16},
        "grid": {
            "methods": ["none", "proximal_l1", "decoupled_l2"],
            "strengths": [0.1, 1.0],
            "seeds": [0, 1],
            "lrs": [0.01],
        },
    }
)


@pytest.fixture(scope="session")
def lr_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lr_study")
    run_study(LR_GRID, directory)
    return directory


@pytest.fixture(scope="session")
def sparse_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sparse_study")
    run_study(SPARSE, directory)
    return directory


# Half of its runs diverge (lr 5): every seed of every lr-5 configuration, the baseline included.
DIVERGING = Study.from_dict(
    {
        "task": {"dataset": "sparse_regression", "model": "linear", "epochs": 6},
        "grid": {"methods": ["none", "l1"], "strengths": [0.01], "seeds": [0, 1], "lrs": [0.01, 5.0]},
    }
)


@pytest.fixture(scope="session")
def diverging_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("diverging_study")
    run_study(DIVERGING, directory)
    return directory


def _query(directory: Path, sql: str) -> list[tuple]:
    """Rows straight from a study's SQLite file (an independent path to the numbers)."""
    db = sqlite3.connect(directory / FILENAME)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture
def query() -> Callable[[Path, str], list[tuple]]:
    return _query
