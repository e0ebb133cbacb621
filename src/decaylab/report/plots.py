"""The report's figures, drawn from :class:`~decaylab.report.data.StudyResults` with matplotlib (Agg).

Every figure is a function ``(results, path) -> Path | None`` (None when the study has nothing to
show for it). Conventions: one colour per method everywhere; strength axes are logarithmic; the
no-decay baseline is a dashed black line with a grey band of ±1 std over seeds; error bars are
±1 sample std over seeds; configurations whose every seed diverged are marked with a red ``x`` on
the x-axis; legends sit outside the axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from decaylab.report.data import BASELINE, StudyResults

matplotlib.use("Agg")
# One colour and marker per method in every figure (grey and black are kept for the no-decay baseline).
COLORS: dict[str, str] = {
    "none": "black",
    "coupled_l2": "tab:blue",
    "decoupled_l2": "tab:orange",
    "l1": "tab:green",
    "proximal_l1": "tab:red",
    "elastic_net": "tab:purple",
    "toward_reference": "tab:brown",
    "penalty_l2": "tab:cyan",
    "penalty_l1": "tab:olive",
}
MARKERS: dict[str, str] = {
    "coupled_l2": "o",
    "decoupled_l2": "s",
    "l1": "^",
    "proximal_l1": "v",
    "elastic_net": "D",
    "toward_reference": "P",
    "penalty_l2": "X",
    "penalty_l1": "*",
}
DODGE = 0.02  # methods' points are nudged by 10**(DODGE*k) along log axes so equal values do not hide each other
DPI = 110


@dataclass(frozen=True)
class Panel:
    """One y quantity: the final-metric key, its axis label, and a scale (100 for percentages)."""

    metric: str
    label: str
    scale: float = 1.0
    log: bool = False
    ylim: tuple[float | None, float | None] | None = None  # None inside: that end is automatic
    # zoom onto the bulk and draw far-off points as arrows (see _focus); off for bounded shares,
    # where the few far-off points (the sparse methods) are the point of the panel
    focus: bool = True


def _figure(rows: int, cols: int, width: float = 5.2, height: float = 3.6) -> Figure:
    return Figure(figsize=(width * cols + 2.2, height * rows + 0.6), layout="constrained", dpi=DPI)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _seeds(results: StudyResults) -> int:
    return len(results.grid.get("seeds", [])) or 1


def _metric_label(results: StudyResults) -> tuple[str, float]:
    return ("test R²", 1.0) if results.regression else ("test accuracy (%)", 100.0)


def _strength_axis(ax: object) -> None:
    ax.set_xscale("log")  # type: ignore[attr-defined]
    ax.set_xlabel("decay strength λ (log scale)")  # type: ignore[attr-defined]
    ax.grid(True, which="major", alpha=0.3)  # type: ignore[attr-defined]


Point = tuple[float, float, float, str]  # x, mean, std, method


def _baseline(ax: object, results: StudyResults, lr: float, panel: Panel) -> tuple[float, float] | None:
    """Draw the no-decay mean (dashed) and its ±1 std band; returns the band ``(low, high)`` or None."""
    base = results.baseline(lr)
    if base is None or not base.finished:
        return None
    stat = base.stat(panel.metric)
    if stat.n == 0:
        return None
    mean = stat.mean * panel.scale
    std = (stat.std if stat.n > 1 else 0.0) * panel.scale
    ax.axhline(mean, color="black", linestyle="--", linewidth=1.2, label=f"{BASELINE} (no decay)")  # type: ignore[attr-defined]
    if std > 0:
        ax.axhspan(mean - std, mean + std, color="0.5", alpha=0.18, linewidth=0)  # type: ignore[attr-defined]
    return mean - std, mean + std


def _errorbars(ax: object, method: str, xs: list[float], means: list[float], stds: list[float]) -> list[Point]:
    """One method's means with ±1 std error bars, in its colour and marker; returns the points."""
    ax.errorbar(  # type: ignore[attr-defined]
        xs,
        means,
        yerr=stds,
        marker=MARKERS.get(method, "o"),
        markersize=5,
        capsize=3,
        color=COLORS.get(method),
        label=method,
    )
    return [(x, m, e, method) for x, m, e in zip(xs, means, stds, strict=True)]


def _dodge(results: StudyResults, method: str) -> float:
    methods = [m for m in results.methods if m != BASELINE]
    k = methods.index(method) if method in methods else 0
    return 10 ** (DODGE * (k - (len(methods) - 1) / 2))


def _method_curve(ax: object, results: StudyResults, lr: float, method: str, panel: Panel) -> list[Point]:
    """Draw one method's mean ± std against strength; returns the points drawn."""
    xs, means, stds, lost = [], [], [], []
    nudge = _dodge(results, method)
    for strength in results.strengths(method, lr):
        cell = results.cell(lr, method, strength)
        stat = cell.stat(panel.metric)
        if stat.n == 0:
            if cell.diverged:
                lost.append(strength)
            continue
        xs.append(strength * nudge)
        means.append(stat.mean * panel.scale)
        stds.append((stat.std if stat.n > 1 else 0.0) * panel.scale)
    points = _errorbars(ax, method, xs, means, stds) if xs else []
    if lost:
        ax.plot(  # type: ignore[attr-defined]
            lost,
            [0.0] * len(lost),
            linestyle="none",
            marker="x",
            markersize=9,
            color="red",
            transform=ax.get_xaxis_transform(),  # type: ignore[attr-defined]
            clip_on=False,
            label="all seeds diverged",
        )
    return points


def _focus(ax: object, points: list[Point], band: tuple[float, float] | None) -> None:
    """Zoom the y-axis onto the bulk of the points when a few lie far outside it (a model that
    collapsed to chance among well-trained ones would otherwise flatten every other curve).

    Points beyond 4 interquartile ranges from the quartiles are marked by an arrow at the axis edge
    labelled with their value; their lines leave the axes toward the true value.
    """
    if len(points) < 5:
        return
    means = np.array([p[1] for p in points])
    q1, median, q3 = np.percentile(means, [25, 50, 75])
    spread = max(q3 - q1, 0.01 * abs(median), 1e-12)
    low, high = q1 - 4 * spread, q3 + 4 * spread
    inliers = [p for p in points if low <= p[1] <= high]
    outliers = [p for p in points if not low <= p[1] <= high]
    if not outliers:
        return
    bottom = min(p[1] - p[2] for p in inliers)
    top = max(p[1] + p[2] for p in inliers)
    if band is not None:
        bottom, top = min(bottom, band[0]), max(top, band[1])
    pad = 0.08 * (top - bottom) or 0.05 * abs(top) or 1.0
    ax.set_ylim(bottom - pad, top + pad)  # type: ignore[attr-defined]
    edge = ax.get_xaxis_transform()  # type: ignore[attr-defined]
    stacked: dict[tuple[bool, float], int] = {}  # labels of outliers at the same strength stack up
    for x, mean, _, method in sorted(outliers):
        above = mean > top
        key = (above, round(math.log10(x), 1))
        k = stacked[key] = stacked.get(key, -1) + 1
        y = 0.98 if above else 0.02
        color = COLORS.get(method)
        ax.plot([x], [y], marker="^" if above else "v", markersize=8, color=color, transform=edge, clip_on=False)  # type: ignore[attr-defined]
        label_y = y - 0.08 - 0.06 * k if above else y + 0.05 + 0.06 * k
        ax.text(x, label_y, f"{mean:.3g}", transform=edge, ha="center", fontsize=7, color=color)  # type: ignore[attr-defined]


def _outside_legend(fig: Figure, axes: Sequence[object]) -> None:
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):  # type: ignore[attr-defined]
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if labels:
        fig.legend([handles[k] for k in labels], labels, loc="outside right upper", frameon=False)


def _vs_strength(results: StudyResults, panels: Sequence[Panel], title: str, path: Path) -> Path | None:
    methods = [m for m in results.methods if m != BASELINE]
    if not methods:
        return None
    lrs = results.lrs
    fig = _figure(len(lrs), len(panels))
    axes = fig.subplots(len(lrs), len(panels), squeeze=False)
    for row, lr in enumerate(lrs):
        for col, panel in enumerate(panels):
            ax = axes[row][col]
            band = _baseline(ax, results, lr, panel)
            points = [p for method in methods for p in _method_curve(ax, results, lr, method, panel)]
            if panel.focus and not panel.log:
                _focus(ax, points, band)
            if not points and band is None:
                ax.text(0.5, 0.5, "no finished run", transform=ax.transAxes, ha="center", va="center", color="0.4")
                ax.set_yticks([])
            _strength_axis(ax)
            if panel.ylim is not None:
                ax.set_ylim(*panel.ylim)
            if panel.log:
                ax.set_yscale("log")
            ax.set_ylabel(panel.label)
            if len(lrs) > 1:
                ax.set_title(f"lr = {lr:g}", fontsize=10)
    _outside_legend(fig, axes.ravel())
    fig.suptitle(f"{title} (mean ± std over {_seeds(results)} seeds)")
    return _save(fig, path)


def _spans_decades(results: StudyResults, metric: str) -> bool:
    values = [v for cell in results.cells.values() for m in cell.finished.values() if (v := m.get(metric)) and v > 0]
    return bool(values) and max(values) / min(values) > 20


def performance_vs_strength(results: StudyResults, path: Path) -> Path | None:
    """Final test metric and test loss against strength, per method."""
    label, scale = _metric_label(results)
    panels = [
        Panel("test_metric", label, scale),
        Panel("test_loss", f"test loss ({results.loss_name})", log=_spans_decades(results, "test_loss")),
    ]
    return _vs_strength(results, panels, "Test performance vs decay strength", path)


def generalization_gap(results: StudyResults, path: Path) -> Path | None:
    """Train minus test metric, and test minus train loss, against strength."""
    metric, scale = ("R²", 1.0) if results.regression else ("accuracy (pp)", 100.0)
    panels = [
        Panel("gap_metric", f"train - test {metric}", scale),
        Panel("gap_loss", "test loss - train loss"),
    ]
    return _vs_strength(results, panels, "Generalization gap vs decay strength", path)


def sparsity(results: StudyResults, path: Path) -> Path | None:
    """Fractions of parameters with ``|w| < 1e-3`` and ``w == 0`` after training, against strength."""
    panels = [
        Panel("small_frac", "parameters with |w| < 1e-3 (%)", 100.0, ylim=(0.0, 102.0), focus=False),
        Panel("zero_frac", "parameters exactly 0 (%)", 100.0, ylim=(0.0, 102.0), focus=False),
    ]
    return _vs_strength(results, panels, "Sparsity vs decay strength", path)


def features(results: StudyResults, path: Path) -> Path | None:
    """Sparse task only: true features recovered, and irrelevant features kept, against strength."""
    if not results.regression:
        return None
    k = _true_feature_count(results)
    panels = [
        Panel("recovered", f"true features among the top {k} inputs", ylim=(-0.2, k + 0.2)),
        Panel("spurious", "irrelevant features with weight ≥ 1e-3"),
    ]
    return _vs_strength(results, panels, "Feature recovery on the sparse task", path)


def _true_feature_count(results: StudyResults) -> int:
    from decaylab.sandbox.datasets import GENERATED_DEFAULTS

    return int(results.task.get("informative") or GENERATED_DEFAULTS["sparse_regression"]["informative"])


def _mean_series(results: StudyResults, run_ids: list[str], metric: str) -> tuple[np.ndarray, np.ndarray]:
    series = [results.series(r, metric) for r in run_ids]
    length = min((len(s) for s in series), default=0)
    if length == 0:
        return np.array([]), np.array([])
    stacked = np.stack([s[:length] for s in series])
    std = stacked.std(axis=0, ddof=1) if len(series) > 1 else np.zeros(length)
    return stacked.mean(axis=0), std


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def weight_norm(results: StudyResults, path: Path) -> Path | None:
    """Weight norm over epochs: one panel per method, one line per strength (at the method's best lr)."""
    methods = [m for m in results.methods if m != BASELINE]
    if not methods:
        return None
    rows, cols = _grid(len(methods), 3)
    fig = _figure(rows, cols, width=4.4, height=3.3)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    cmap = matplotlib.colormaps["viridis"]
    strengths_all = sorted({s for (_, m, s) in results.cells if m != BASELINE})
    norm = LogNorm(min(strengths_all), max(strengths_all)) if len(strengths_all) > 1 else None
    log_y = False
    for ax, method in zip(axes, methods, strict=False):
        best = results.best(method)
        lr = best.lr if best else results.lrs[0]
        base_ids = results.run_ids(lr, BASELINE, 0.0)
        if base_ids:
            mean, std = _mean_series(results, base_ids, "weight_norm")
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, color="black", linestyle="--", label=f"{BASELINE} (no decay)")
            ax.fill_between(epochs, mean - std, mean + std, color="0.5", alpha=0.18, linewidth=0)
        for strength in results.strengths(method, lr):
            mean, std = _mean_series(results, results.run_ids(lr, method, strength), "weight_norm")
            if len(mean) == 0:
                continue
            color = cmap(norm(strength)) if norm else cmap(0.5)
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, color=color, label=f"λ = {strength:g}")
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.18, linewidth=0)
            log_y = log_y or (mean.min() > 0 and mean.max() / mean.min() > 20)
        ax.set_title(method + (f" (lr {lr:g})" if len(results.lrs) > 1 else ""), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("‖w‖ (L2 norm, all parameters)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)
    for ax in axes[len(methods) :]:
        ax.set_visible(False)
    if log_y:
        for ax in axes[: len(methods)]:
            ax.set_yscale("log")
    fig.suptitle(f"Weight norm over training (mean ± std over {_seeds(results)} seeds)")
    return _save(fig, path)


def learning_curves(results: StudyResults, path: Path) -> Path | None:
    """Train and test loss and test metric over epochs, each method at its best strength."""
    label, scale = _metric_label(results)
    fig = _figure(1, 2, width=5.2, height=3.6)
    loss_ax, metric_ax = fig.subplots(1, 2)
    drawn = False
    log_y = False
    for method in results.methods:
        best = results.best(method)
        if best is None:
            continue
        ids = results.run_ids(best.lr, method, best.strength)
        color = "black" if method == BASELINE else COLORS.get(method)
        name = method if method == BASELINE else f"{method} λ={best.strength:g}"
        for metric, style, ax, factor in (
            ("test_loss", "-", loss_ax, 1.0),
            ("train_loss", ":", loss_ax, 1.0),
            ("test_metric", "-", metric_ax, scale),
        ):
            mean, _ = _mean_series(results, ids, metric)
            if len(mean) == 0:
                continue
            drawn = True
            epochs = np.arange(1, len(mean) + 1)
            tag = name if (metric == "test_loss") else None
            ax.plot(epochs, mean * factor, color=color, linestyle=style, label=tag)
            if ax is loss_ax and mean.min() > 0 and mean.max() / mean.min() > 20:
                log_y = True
    if not drawn:
        return None
    loss_ax.plot([], [], color="0.3", linestyle="-", label="solid: test")
    loss_ax.plot([], [], color="0.3", linestyle=":", label="dotted: train")
    if log_y:
        loss_ax.set_yscale("log")
    loss_ax.set_ylabel(f"loss ({results.loss_name})" + (" (log scale)" if log_y else ""))
    metric_ax.set_ylabel(label)
    for ax in (loss_ax, metric_ax):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    _outside_legend(fig, [loss_ax])
    fig.suptitle(f"Learning curves, each method at its best strength (mean over {_seeds(results)} seeds)")
    return _save(fig, path)


def timescale(results: StudyResults, path: Path) -> Path | None:
    """Test metric against the decay's EMA timescale (epochs, at the initial lr) for L2-type methods.

    Methods whose strengths mean different things (coupled vs decoupled under momentum, penalty at
    2*lam) line up on this axis if the timescale is what matters.
    """
    label, scale = _metric_label(results)
    epochs_total = results.task.get("epochs")
    fig = _figure(1, 2)
    axes = fig.subplots(1, 2)
    drawn = False
    lr = results.lrs[0]
    for method in results.methods:
        if method == BASELINE:
            continue
        points = []
        for strength in results.strengths(method, lr):
            ids = results.run_ids(lr, method, strength)
            first = [results.epochs[r][0]["timescale_epochs"] for r in ids if results.epochs.get(r)]
            if not first or first[0] is None:
                continue
            cell = results.cell(lr, method, strength)
            points.append((first[0], cell.stat("test_metric"), cell.stat("test_loss")))
        if not points:
            continue
        drawn = True
        xs = [p[0] for p in points]
        for ax, idx, factor in ((axes[0], 1, scale), (axes[1], 2, 1.0)):
            means = [p[idx].mean * factor for p in points]
            stds = [(p[idx].std if p[idx].n > 1 else 0.0) * factor for p in points]
            _errorbars(ax, method, [x * _dodge(results, method) for x in xs], means, stds)
    if not drawn:
        return None
    for ax, panel in zip(
        axes, (Panel("test_metric", label, scale), Panel("test_loss", f"test loss ({results.loss_name})")), strict=True
    ):
        _baseline(ax, results, lr, panel)
        if epochs_total:
            ax.axvline(epochs_total, color="0.4", linestyle=":", label=f"run length ({epochs_total} epochs)")
        ax.set_xscale("log")
        ax.set_xlabel("EMA timescale 1/(c·steps per epoch) at the initial lr, in epochs (log scale)")
        ax.set_ylabel(panel.label)
        ax.grid(True, alpha=0.3)
    _outside_legend(fig, axes)
    suffix = f", lr {lr:g}" if len(results.lrs) > 1 else ""
    fig.suptitle(f"Test performance vs the decay's EMA timescale (L2-type methods{suffix})")
    return _save(fig, path)


def lr_strength_heatmaps(results: StudyResults, path: Path) -> Path | None:
    """For lr x strength studies: per method, mean ranking metric over the grid; the best strength
    at each lr is boxed (Loshchilov & Hutter's question: does the best decay move with the lr?)."""
    lrs = results.lrs
    methods = [m for m in results.methods if m != BASELINE]
    if len(lrs) < 2 or not methods:
        return None
    metric = results.rank_by
    higher = results.higher_is_better(metric)
    label, scale = _metric_label(results) if metric == "test_metric" else (f"test loss ({results.loss_name})", 1.0)
    rows, cols = _grid(len(methods), 3)
    fig = _figure(rows, cols, width=4.6, height=3.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, method in zip(axes, methods, strict=False):
        strengths = sorted({s for (_, m, s) in results.cells if m == method})
        values = np.full((len(lrs), len(strengths)), np.nan)
        for i, lr in enumerate(lrs):
            for j, strength in enumerate(strengths):
                cell = results.cells.get((lr, method, strength))
                if cell is not None:
                    values[i, j] = cell.stat(metric).mean * scale
        image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis" if higher else "viridis_r")
        fig.colorbar(image, ax=ax, label=label, shrink=0.9)
        finite = np.nan_to_num(values, nan=-np.inf if higher else np.inf)
        shade = image.norm
        for i in range(len(lrs)):
            for j in range(len(strengths)):
                if math.isfinite(values[i, j]):
                    light = image.cmap(shade(values[i, j]))[:3] @ np.array([0.299, 0.587, 0.114]) > 0.5
                    color = "black" if light else "white"
                    ax.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=8, color=color)
                else:
                    ax.text(j, i, "div.", ha="center", va="center", fontsize=7, color="red")
            if np.isfinite(values[i]).any():
                j = int(np.argmax(finite[i]) if higher else np.argmin(finite[i]))
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_xticks(range(len(strengths)), [f"{s:g}" for s in strengths], rotation=45, fontsize=8)
        ax.set_yticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], fontsize=8)
        ax.set_xlabel("decay strength λ (log-spaced grid)")
        ax.set_ylabel("learning rate")
        ax.set_title(method, fontsize=10)
    for ax in axes[len(methods) :]:
        ax.set_visible(False)
    fig.suptitle(f"Mean {label} over lr x strength; red box = best strength at each lr")
    return _save(fig, path)


def layer_norms(results: StudyResults, path: Path) -> Path | None:
    """Final L2 norm of each weight tensor, each method at its best strength (mean over seeds)."""
    entries = []
    for method in results.methods:
        best = results.best(method)
        if best is None:
            continue
        ids = results.run_ids(best.lr, method, best.strength)
        norms: dict[str, list[float]] = {}
        for run_id in ids:
            rows = results.layers.get(run_id, [])
            last = max((r["epoch"] for r in rows), default=None)
            for r in rows:
                if r["epoch"] == last and r["name"].endswith("weight"):
                    norms.setdefault(r["name"], []).append(r["norm"])
        if norms:
            entries.append((method, best.strength, {k: float(np.mean(v)) for k, v in norms.items()}))
    if not entries:
        return None
    names = list(entries[0][2])
    fig = _figure(1, 1, width=max(6.0, 1.4 * len(names) * max(1, len(entries)) / 3), height=3.8)
    ax = fig.subplots()
    width = 0.8 / len(entries)
    for k, (method, strength, norms) in enumerate(entries):
        xs = np.arange(len(names)) + (k - (len(entries) - 1) / 2) * width
        label = method if method == BASELINE else f"{method} λ={strength:g}"
        color = "0.25" if method == BASELINE else COLORS.get(method)
        ax.bar(xs, [norms.get(n, np.nan) for n in names], width=width, color=color, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("final ‖w‖ of the tensor (L2 norm)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)
    ax.set_title(
        f"Per-layer weight norm after training\n(each method at its best strength, mean over {_seeds(results)} seeds)"
    )
    return _save(fig, path)


FIGURES: dict[str, tuple[Callable[[StudyResults, Path], Path | None], str]] = {
    "performance_vs_strength.png": (
        performance_vs_strength,
        "Final test metric and test loss against decay strength. Means far off the bulk (a model collapsed by too "
        "much decay) are drawn as arrows at the axis edge, labelled with their value.",
    ),
    "learning_curves.png": (learning_curves, "Loss and test metric over epochs, each method at its best strength."),
    "generalization_gap.png": (generalization_gap, "Train minus test metric, and test minus train loss."),
    "weight_norm.png": (weight_norm, "L2 norm of all parameters over epochs, one line per strength."),
    "layer_norms.png": (layer_norms, "Final per-layer weight norms, each method at its best strength."),
    "sparsity.png": (sparsity, "Share of parameters below 1e-3 and exactly zero after training."),
    "timescale.png": (timescale, "Test performance against the decay's EMA timescale, for L2-type methods."),
    "lr_strength_heatmaps.png": (
        lr_strength_heatmaps,
        "lr x strength grid per method; does the best λ move with the lr?",
    ),
    "features.png": (features, "Sparse task: true features recovered and irrelevant features kept."),
}


def draw_all(results: StudyResults, directory: Path) -> list[tuple[Path, str]]:
    """Draw every figure that applies to ``results`` into ``directory``; returns ``(path, caption)``."""
    directory.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, (draw, caption) in FIGURES.items():
        path = draw(results, directory / name)
        if path is not None:
            drawn.append((path, caption))
    return drawn
