"""Figures of a toy run: the paths over the loss contours, the loss per step, each weight per step.

Measured paths are solid lines; the closed form (where one exists) is drawn over them as hollow
circles at evenly spaced steps, so agreement reads as circles sitting on the line. Figures are
built with :class:`matplotlib.figure.Figure` (no pyplot state, no GUI backend needed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from decaylab.sandbox.toy.run import ToyPath, ToyResult, quadratic_loss

MARKERS = 16  # hollow closed-form markers per path


DIVERGED = 1e6  # a path is cut where |w| exceeds this many times the start's scale


def display_paths(result: ToyResult) -> list[tuple[ToyPath, str]]:
    """Each path as drawn, with its legend label: a diverging path is cut (NaN) from the step where a
    weight leaves ``DIVERGED`` times the start's scale or stops being finite, and its label says so."""
    bound = DIVERGED * max(1.0, *(abs(w) for w in result.config.init))
    shown = []
    for p in result.paths:
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(p.weights) <= bound).all(axis=1)
        if not bad.any():
            shown.append((p, p.method.label))
            continue
        cut = int(np.flatnonzero(bad)[0])
        weights, loss = p.weights.copy(), p.loss.copy()
        weights[cut:], loss[cut:] = np.nan, np.nan
        closed = None
        if p.closed_form is not None:
            closed = p.closed_form.copy()
            closed[cut:] = np.nan
        cut_path = replace(p, weights=weights, loss=loss, closed_form=closed)
        shown.append((cut_path, f"{p.method.label} (diverges; cut at step {cut})"))
    return shown


def _last_finite(weights: np.ndarray) -> np.ndarray:
    return weights[np.isfinite(weights).all(axis=1)][-1]


def _colors(n: int) -> list[str]:
    return [f"C{i % 10}" for i in range(n)]


def _marker_steps(steps: int, count: int = MARKERS) -> np.ndarray:
    return np.unique(np.linspace(0, steps, min(count, steps + 1)).round().astype(int))


def _closed_form_handles(result: ToyResult) -> list[Line2D]:
    """The legend entry for the hollow closed-form markers, if any path has a closed form."""
    if all(p.closed_form is None for p in result.paths):
        return []
    return [Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="0.3", label="closed form")]


def _settings_text(result: ToyResult) -> str:
    c = result.config
    curv = ", ".join(f"{v:g}" for v in c.curvatures)
    return f"curvatures ({curv}), lr {c.lr:g}, momentum {c.momentum:g}, base {c.base}, scale {c.scale}, {c.dtype}"


def _legend_outside(ax, handles: list) -> None:
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=9)


def plot_paths(result: ToyResult, path: Path) -> Path:
    """The (w_1, w_2) paths over the loss contours (the first two coordinates when there are more)."""
    config = result.config
    if config.dim < 2:
        raise ValueError("plot_paths needs at least 2 coordinates; use plot_weights for one")
    fig = Figure(figsize=(9.5, 6.0), layout="constrained")
    ax = fig.add_subplot()
    shown = display_paths(result)
    finite = np.concatenate([p.weights[:, :2][np.isfinite(p.weights[:, :2]).all(axis=1)] for p, _ in shown])
    points = np.vstack([finite, [[0.0, 0.0]]])
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad, hi + pad
    grid1, grid2 = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    surface = quadratic_loss(config.curvatures[:2], np.stack([grid1, grid2], axis=-1))
    positive = surface[surface > 0]
    if positive.size:
        levels = np.geomspace(max(positive.min(), positive.max() * 1e-6), positive.max(), 14)
        contours = ax.contour(grid1, grid2, surface, levels=levels, colors="0.75", linewidths=0.8)
        ax.clabel(contours, contours.levels[::3], fmt="%.2g", fontsize=7)
    handles = []
    for (p, label), color in zip(shown, _colors(len(shown)), strict=True):
        (line,) = ax.plot(p.weights[:, 0], p.weights[:, 1], color=color, linewidth=1.6, label=label)
        ax.plot(*p.weights[0, :2], marker="*", color="k", markersize=11, linestyle="none")
        ax.plot(*_last_finite(p.weights)[:2], marker="s", color=color, markersize=6, linestyle="none")
        handles.append(line)
        if p.closed_form is not None:
            idx = _marker_steps(len(p.weights) - 1)
            ax.plot(
                p.closed_form[idx, 0], p.closed_form[idx, 1], "o", markerfacecolor="none", color=color, markersize=7
            )
    ax.plot(0, 0, marker="+", color="k", markersize=12, linestyle="none")
    cut = any(label != p.method.label for p, label in shown)
    end_label = f"after {config.steps} steps" + (" (or where cut)" if cut else "")
    handles += [
        *_closed_form_handles(result),
        Line2D([], [], linestyle="none", marker="*", color="k", markersize=10, label="start"),
        Line2D([], [], linestyle="none", marker="s", color="0.3", label=end_label),
        Line2D([], [], linestyle="none", marker="+", color="k", markersize=10, label="loss minimum"),
    ]
    _legend_outside(ax, handles)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    projection = "" if config.dim == 2 else f" (first 2 of {config.dim} coordinates)"
    ax.set_title(f"Paths over the loss contours{projection}\n{_settings_text(result)}", fontsize=10)
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_loss(result: ToyResult, path: Path) -> Path:
    """Data loss ``sum c_i/2 w_i**2`` per step, log scale, with the closed form's loss over it."""
    fig = Figure(figsize=(9.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    handles = []
    steps = np.arange(result.config.steps + 1)
    shown_paths = display_paths(result)
    for (p, label), color in zip(shown_paths, _colors(len(shown_paths)), strict=True):
        shown = np.where(p.loss > 0, p.loss, np.nan)  # log axis: an exact 0 has no place, say so in the legend
        zeros = np.flatnonzero(p.loss == 0)
        if zeros.size and (p.loss[zeros[0] :] == 0).all():
            label += f" (exactly 0 from step {zeros[0]})"
        (line,) = ax.plot(steps, shown, color=color, linewidth=1.6, label=label)
        handles.append(line)
        if p.closed_form is not None:
            idx = _marker_steps(result.config.steps)
            predicted = quadratic_loss(result.config.curvatures, p.closed_form[idx])
            ax.plot(idx, np.where(predicted > 0, predicted, np.nan), "o", markerfacecolor="none", color=color)
    handles += _closed_form_handles(result)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"loss $\sum_i c_i w_i^2 / 2$ (log scale; penalty terms not included)")
    ax.set_title(f"Loss per step\n{_settings_text(result)}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    _legend_outside(ax, handles)
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_weights(result: ToyResult, path: Path, max_coordinates: int = 4) -> Path:
    """Each weight against the step (up to ``max_coordinates`` panels) and, below, how far the
    measured path is from the closed form (log scale)."""
    config = result.config
    dims = min(config.dim, max_coordinates)
    fig = Figure(figsize=(9.5, 2.6 * (dims + 1)), layout="constrained")
    axes = fig.subplots(dims + 1, 1, sharex=True)
    steps = np.arange(config.steps + 1)
    idx = _marker_steps(config.steps)
    shown = display_paths(result)
    colors = _colors(len(shown))
    for i in range(dims):
        ax = axes[i]
        for (p, _), color in zip(shown, colors, strict=True):
            ax.plot(steps, p.weights[:, i], color=color, linewidth=1.4)
            if p.closed_form is not None:
                ax.plot(idx, p.closed_form[idx, i], "o", markerfacecolor="none", color=color, markersize=6)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_ylabel(f"$w_{{{i + 1}}}$ (c = {config.curvatures[i]:g})")
        ax.grid(True, alpha=0.3)
    err_ax = axes[-1]
    floor = 1e-18
    for (p, _), color in zip(shown, colors, strict=True):
        if p.closed_form is None:
            continue
        with np.errstate(invalid="ignore"):  # fmax skips NaN (steps the closed form does not cover), quietly
            error = np.fmax.reduce(np.abs(p.weights - p.closed_form), axis=1)
        err_ax.plot(steps, np.maximum(error, floor), color=color, linewidth=1.0)
    if not any(p.closed_form is not None for p in result.paths):
        err_ax.text(0.5, 0.5, f"no closed form ({config.base} base)", transform=err_ax.transAxes, ha="center")
    err_ax.set_yscale("log")
    err_ax.set_ylabel(f"|measured - closed form|\n(max over coordinates;\n0 drawn at {floor:g})")
    err_ax.set_xlabel("step")
    err_ax.grid(True, which="major", alpha=0.3)
    handles = [
        Line2D([], [], color=color, linewidth=1.6, label=label) for (_, label), color in zip(shown, colors, strict=True)
    ]
    _legend_outside(axes[0], [*handles, *_closed_form_handles(result)])
    shown = "" if dims == config.dim else f" (first {dims} of {config.dim})"
    axes[0].set_title(f"Weights per step{shown}\n{_settings_text(result)}", fontsize=10)
    fig.savefig(path, dpi=110)
    return Path(path)


def write_plots(result: ToyResult, out: Path) -> list[Path]:
    """``toy_paths.png``, ``toy_loss.png`` and ``toy_weights.png`` in ``out``."""
    out = Path(out)
    written = [plot_loss(result, out / "toy_loss.png"), plot_weights(result, out / "toy_weights.png")]
    if result.config.dim >= 2:
        written.insert(0, plot_paths(result, out / "toy_paths.png"))
    return written
