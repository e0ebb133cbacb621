"""Aggregation over seeds, checked against numbers read straight from SQLite and reduced with numpy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from decaylab.report.data import load_results


def test_cells_hold_mean_and_sample_std_over_seeds(lr_study: Path, query: Callable) -> None:
    results = load_results(lr_study)
    rows = query(lr_study, "SELECT lr, method, strength, seed, test_loss, train_metric, test_metric FROM results")
    assert len(results.cells) == 2 * (1 + 2 + 2)
    for (lr, method, strength), cell in results.cells.items():
        losses = [r[4] for r in rows if r[:3] == (lr, method, strength)]
        gaps = [r[5] - r[6] for r in rows if r[:3] == (lr, method, strength)]
        assert cell.stat("test_loss").mean == pytest.approx(np.mean(losses))
        assert cell.stat("test_loss").std == pytest.approx(np.std(losses, ddof=1))
        assert cell.stat("gap_metric").mean == pytest.approx(np.mean(gaps))
        assert cell.stat("test_loss").n == 2


def test_paired_difference_is_per_seed(lr_study: Path, query: Callable) -> None:
    results = load_results(lr_study)
    cell, base = results.cell(0.2, "coupled_l2", 0.1), results.baseline(0.2)
    by_seed = {
        (m, s): loss
        for m, s, loss in query(
            lr_study, "SELECT method, seed, test_loss FROM results WHERE lr = 0.2 AND strength IN (0, 0.1)"
        )
    }
    diffs = [by_seed[("coupled_l2", s)] - by_seed[("none", s)] for s in (0, 1)]
    stat = cell.paired_difference(base, "test_loss")
    assert stat.mean == pytest.approx(np.mean(diffs))
    assert stat.std == pytest.approx(np.std(diffs, ddof=1))


def test_best_cell_minimizes_the_ranking_metric(lr_study: Path, query: Callable) -> None:
    results = load_results(lr_study)
    rows = query(
        lr_study,
        "SELECT lr, strength, AVG(test_loss) FROM results WHERE method = 'l1' GROUP BY lr, strength ORDER BY 3 LIMIT 1",
    )
    best = results.best("l1")
    assert (best.lr, best.strength) == rows[0][:2]
    assert results.rank_by == "test_loss"
    assert results.lrs == [0.05, 0.2]


def test_diverged_runs_are_counted_not_averaged(diverging_study: Path) -> None:
    results = load_results(diverging_study)
    assert results.counts() == {"finished": 4, "diverged": 4}
    cell = results.cell(5.0, "l1", 0.01)
    assert cell.diverged == 2
    assert cell.stat("test_loss").n == 0
    assert results.best("l1").lr == 0.01
