"""The figures: which ones a study gets, that each is a readable PNG, and the per-method styling."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from decaylab.report.data import load_results
from decaylab.report.plots import COLORS, MARKERS, draw_all
from decaylab.sandbox.methods import METHODS

ALWAYS = {
    "performance_vs_strength.png",
    "learning_curves.png",
    "generalization_gap.png",
    "weight_norm.png",
    "layer_norms.png",
    "sparsity.png",
}


def drawn(study: Path, out: Path) -> dict[str, Path]:
    return {path.name: path for path, _ in draw_all(load_results(study), out)}


def assert_png(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200
    assert image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not blank


def test_every_method_has_its_own_colour_and_marker() -> None:
    assert set(COLORS) == set(METHODS)
    assert len(set(COLORS.values())) == len(COLORS)
    assert set(MARKERS) == set(METHODS) - {"none"}
    assert len(set(MARKERS.values())) == len(MARKERS)


def test_an_lr_by_strength_study_gets_heatmaps(lr_study: Path, tmp_path: Path) -> None:
    figures = drawn(lr_study, tmp_path)
    assert set(figures) == ALWAYS | {"lr_strength_heatmaps.png", "timescale.png"}
    for path in figures.values():
        assert_png(path)


def test_the_sparse_task_gets_a_feature_recovery_figure(sparse_study: Path, tmp_path: Path) -> None:
    figures = drawn(sparse_study, tmp_path)
    assert "features.png" in figures
    assert "lr_strength_heatmaps.png" not in figures
    assert_png(figures["features.png"])


def test_diverged_configurations_still_draw(diverging_study: Path, tmp_path: Path) -> None:
    figures = drawn(diverging_study, tmp_path)
    assert set(figures) >= ALWAYS
    for path in figures.values():
        assert_png(path)


@pytest.mark.parametrize("method", ["none", "l1"])
def test_a_single_run_study_draws_what_applies(tmp_path: Path, method: str) -> None:
    from decaylab.sandbox.runner import run_study
    from decaylab.sandbox.study import Study

    study = Study.from_dict(
        {
            "task": {"dataset": "wine", "model": "linear", "epochs": 2},
            "grid": {"methods": [method], "strengths": [0.01], "seeds": [0], "lrs": [0.05]},
        }
    )
    run_study(study, tmp_path / "study")
    figures = drawn(tmp_path / "study", tmp_path / "figures")
    assert "learning_curves.png" in figures
    assert ("performance_vs_strength.png" in figures) == (method != "none")


def test_sparsity_axes_show_every_method_not_just_the_bulk(tmp_path: Path, monkeypatch) -> None:
    """Exact zeros come from proximal L1 only, so among many methods its points look like outliers;
    the panel must show them on scale, not zoom onto the zeros of the others."""
    from decaylab.report import plots
    from decaylab.sandbox.runner import run_study
    from decaylab.sandbox.study import Study

    study = Study.from_dict(
        {
            "task": {"dataset": "wine", "model": "linear", "epochs": 3},
            "grid": {
                "methods": ["none", "coupled_l2", "decoupled_l2", "l1", "proximal_l1"],
                "strengths": [0.03, 0.3],
                "seeds": [0],
                "lrs": [0.05],
            },
        }
    )
    run_study(study, tmp_path / "study")
    captured = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: captured.setdefault(path.name, fig) and path)
    plots.sparsity(load_results(tmp_path / "study"), tmp_path / "sparsity.png")
    (zero_axes,) = [ax for ax in captured["sparsity.png"].axes if ax.get_ylabel() == "parameters exactly 0 (%)"]
    plotted = [
        y for line in zero_axes.get_lines() if line.get_transform() == zero_axes.transData for y in line.get_ydata()
    ]
    assert max(plotted) > 10, "proximal L1 at 0.3 sets weights exactly to zero"
    low, high = zero_axes.get_ylim()
    assert low <= min(plotted)
    assert high >= max(plotted)
