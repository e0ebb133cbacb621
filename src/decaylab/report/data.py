"""What a report reads: a study's store, loaded once and aggregated over seeds.

Only the store is read (never the training code's live objects), so a report can be rebuilt at any
time from ``results.sqlite`` alone. Spread over seeds is the sample standard deviation (ddof=1); a
difference to the no-decay baseline is *paired* by seed (same initialization and data order).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decaylab.sandbox.store import Store

FINAL_METRICS: tuple[str, ...] = (
    "test_metric",
    "test_loss",
    "train_metric",
    "train_loss",
    "gap_metric",
    "gap_loss",
    "weight_norm",
    "zero_frac",
    "small_frac",
    "timescale_epochs",
    "recovered",
    "spurious",
)
BASELINE = "none"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (``nan`` for fewer than two values) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        values = [v for v in values if v is not None and math.isfinite(v)]
        if not values:
            return cls(math.nan, math.nan, 0)
        array = np.asarray(values, dtype=float)
        return cls(float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan, len(array))


@dataclass
class Cell:
    """The runs of one (lr, method, strength) over seeds: counts by status and final-metric stats."""

    lr: float
    method: str
    strength: float
    finished: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> final metrics
    diverged: int = 0
    failed: int = 0
    unfinished: int = 0

    def stat(self, metric: str) -> Stat:
        return Stat.of([m.get(metric) for m in self.finished.values()])

    def paired_difference(self, other: Cell, metric: str) -> Stat:
        """``self - other`` over the seeds both finished (same seed = same init and data order)."""
        common = sorted(set(self.finished) & set(other.finished))
        return Stat.of([self.finished[s][metric] - other.finished[s][metric] for s in common])


@dataclass
class StudyResults:
    """A study's store in memory: its definition, runs, epochs and per-(lr, method, strength) cells."""

    directory: Path
    study: dict[str, Any]
    meta: dict[str, str]
    runs: list[dict[str, Any]]
    epochs: dict[str, list[dict[str, Any]]]
    layers: dict[str, list[dict[str, Any]]]
    cells: dict[tuple[float, str, float], Cell]

    @property
    def task(self) -> dict[str, Any]:
        return self.study["task"]

    @property
    def grid(self) -> dict[str, Any]:
        return self.study["grid"]

    @property
    def rank_by(self) -> str:
        return self.study.get("report", {}).get("rank_by", "test_loss")

    @property
    def regression(self) -> bool:
        return self.task.get("dataset") == "sparse_regression"

    @property
    def metric_name(self) -> str:
        return "R²" if self.regression else "accuracy"

    @property
    def loss_name(self) -> str:
        return "MSE, standardized target" if self.regression else "cross-entropy"

    @property
    def lrs(self) -> list[float]:
        return sorted({lr for lr, _, _ in self.cells})

    @property
    def methods(self) -> list[str]:
        order = list(self.grid["methods"])
        return [m for m in order if any(method == m for _, method, _ in self.cells)]

    def strengths(self, method: str, lr: float) -> list[float]:
        return sorted(s for (rate, m, s) in self.cells if m == method and rate == lr)

    def cell(self, lr: float, method: str, strength: float) -> Cell:
        return self.cells[(lr, method, strength)]

    def baseline(self, lr: float) -> Cell | None:
        return self.cells.get((lr, BASELINE, 0.0))

    def higher_is_better(self, metric: str) -> bool:
        return metric in ("test_metric", "train_metric", "recovered")

    def best(self, method: str, lr: float | None = None) -> Cell | None:
        """The cell of ``method`` with the best mean ``rank_by`` (over lrs too unless ``lr`` is given)."""
        candidates = [
            c
            for (rate, m, _), c in self.cells.items()
            if m == method and (lr is None or rate == lr) and c.stat(self.rank_by).n > 0
        ]
        if not candidates:
            return None
        sign = -1.0 if self.higher_is_better(self.rank_by) else 1.0
        return min(candidates, key=lambda c: sign * c.stat(self.rank_by).mean)

    def series(self, run_id: str, metric: str) -> np.ndarray:
        return np.asarray([row[metric] for row in self.epochs.get(run_id, [])], dtype=float)

    def run_ids(self, lr: float, method: str, strength: float, status: str = "finished") -> list[str]:
        return [
            r["run_id"]
            for r in self.runs
            if r["lr"] == lr and r["method"] == method and r["strength"] == strength and r["status"] == status
        ]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.runs:
            out[r["status"]] += 1
        return dict(out)


def final_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The final-epoch numbers of a ``results`` row, plus the generalization gaps.

    ``gap_metric`` = train - test accuracy (or R^2); ``gap_loss`` = test - train loss; both grow
    with overfitting.
    """
    metrics = {k: row.get(k) for k in FINAL_METRICS if k in row}
    metrics["gap_metric"] = row["train_metric"] - row["test_metric"]
    metrics["gap_loss"] = row["test_loss"] - row["train_loss"]
    return {k: (math.nan if v is None else float(v)) for k, v in metrics.items()}


def load_results(directory: Path) -> StudyResults:
    """Read ``directory``'s store (raises :class:`~decaylab.sandbox.store.StoreError` if unusable)."""
    directory = Path(directory)
    with Store.read(directory) as store:
        study, meta = store.study(), store.meta()
        runs = store.results()
        epochs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in store.epochs():
            epochs[row["run_id"]].append(row)
        layers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in store.layers():
            layers[row["run_id"]].append(row)
    cells: dict[tuple[float, str, float], Cell] = {}
    for row in runs:
        key = (row["lr"], row["method"], row["strength"])
        cell = cells.setdefault(key, Cell(*key))
        if row["status"] == "finished":
            cell.finished[row["seed"]] = final_metrics(row)
        elif row["status"] == "diverged":
            cell.diverged += 1
        elif row["status"] == "failed":
            cell.failed += 1
        else:
            cell.unfinished += 1
    return StudyResults(directory, study, meta, runs, dict(epochs), dict(layers), cells)
