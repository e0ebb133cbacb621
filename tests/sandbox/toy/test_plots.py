"""The toy's figures are written, are real PNGs of a sensible size, and say what they show."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from decaylab.sandbox.toy.plots import display_paths, plot_paths, write_plots
from decaylab.sandbox.toy.run import ToyConfig, parse_methods, run_toy


def image(path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)


def test_two_coordinates_give_paths_loss_and_weights(tmp_path) -> None:
    config = ToyConfig(methods=parse_methods("none,coupled_l2,l1:0.1,penalty_l1", 0.01), steps=30, lr=0.05)
    written = write_plots(run_toy(config), tmp_path)
    assert [p.name for p in written] == ["toy_paths.png", "toy_loss.png", "toy_weights.png"]
    for path in written:
        pixels = image(path)
        assert pixels.shape[0] > 400
        assert pixels.shape[1] > 800
        assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_one_coordinate_has_no_contour_plot(tmp_path) -> None:
    config = ToyConfig(curvatures=(1.0,), init=(2.0,), steps=10)
    written = write_plots(run_toy(config), tmp_path)
    assert [p.name for p in written] == ["toy_loss.png", "toy_weights.png"]
    with pytest.raises(ValueError, match="at least 2 coordinates"):
        plot_paths(run_toy(config), tmp_path / "x.png")


def test_many_coordinates_and_adam_without_closed_form(tmp_path) -> None:
    config = ToyConfig(curvatures=(0.1, 0.5, 1, 2, 4), init=(1, 1, 1, 1, 1), steps=10, base="adam")
    written = write_plots(run_toy(config), tmp_path)
    assert len(written) == 3


def test_a_run_that_reaches_zero_loss_still_plots(tmp_path) -> None:
    config = ToyConfig(methods=parse_methods("proximal_l1:0.5", 0.0), lr=0.1, steps=30)  # both weights hit 0
    result = run_toy(config)
    assert result.paths[0].loss[-1] == 0.0
    assert len(write_plots(result, tmp_path)) == 3


def test_a_diverging_run_is_cut_and_labelled(tmp_path) -> None:
    config = ToyConfig(curvatures=(300.0, 1.0), init=(1.0, 1.0), lr=0.01, steps=2000)  # |1 - lr*c| = 2
    result = run_toy(config)
    (none, label), _ = display_paths(result)
    assert label.startswith("none (diverges; cut at step ")
    cut = int(label.rsplit(" ", 1)[1].rstrip(")"))
    assert np.isfinite(none.weights[:cut]).all()
    assert np.isnan(none.weights[cut:]).all()
    assert len(write_plots(result, tmp_path)) == 3
