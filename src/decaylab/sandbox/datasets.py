"""The sandbox's tasks: scikit-learn's bundled data sets and two generated ones, split and scaled.

=====================  ==============  ============================================================
name                   task            source
=====================  ==============  ============================================================
``digits``             10 classes      ``sklearn.datasets.load_digits`` (1797 8x8 images, 0..16)
``breast_cancer``      2 classes       ``sklearn.datasets.load_breast_cancer`` (569 x 30)
``wine``               3 classes       ``sklearn.datasets.load_wine`` (178 x 13)
``sparse_regression``  regression      ``sklearn.datasets.make_regression``: ``features`` inputs, only
                                       ``informative`` of them have a non-zero true coefficient
``moons``              2 classes       ``sklearn.datasets.make_moons`` (two interleaved half circles)
=====================  ==============  ============================================================

Every data set is split once by ``data_seed`` (stratified for classification), so runs that differ
only in their training seed see the same train and test sets. Tabular inputs are standardized with
statistics of the training split only; digits pixels are divided by 16 and kept as ``1 x 8 x 8``
images. Regression targets are standardized the same way, so losses are in units of the target's
variance and R^2 is unchanged by the scaling. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn import datasets as skdata
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import Tensor

DATASETS: tuple[str, ...] = ("digits", "breast_cancer", "wine", "sparse_regression", "moons")
GENERATED: tuple[str, ...] = ("sparse_regression", "moons")
# Defaults of the generated tasks' knobs (``None`` in a config means "this default").
GENERATED_DEFAULTS: dict[str, dict[str, float]] = {
    "sparse_regression": {"samples": 200, "features": 50, "informative": 5, "noise": 10.0},
    "moons": {"samples": 400, "noise": 0.25},
}


@dataclass(frozen=True)
class DataSpec:
    """Which data and how it is split. ``samples``/``features``/``informative``/``noise`` shape the
    generated tasks (``None``: the task's default) and must be left ``None`` for bundled data.
    ``train_size`` keeps only that many training examples (``None``: the whole training split)."""

    name: str = "digits"
    test_fraction: float = 0.25
    data_seed: int = 0
    train_size: int | None = None
    samples: int | None = None
    features: int | None = None
    informative: int | None = None
    noise: float | None = None


@dataclass(frozen=True, eq=False)
class Data:
    """A split task. ``x_*`` are float32 (images ``N x 1 x 8 x 8``, tabular ``N x d``); ``y_*`` are
    int64 class labels or float32 targets. ``true_features`` lists the informative inputs of the
    sparse task (``None`` elsewhere)."""

    name: str
    task: str  # "classification" or "regression"
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int  # 0 for regression
    true_features: tuple[int, ...] | None = None

    @property
    def is_image(self) -> bool:
        return self.x_train.dim() == 4

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def in_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def out_features(self) -> int:
        return self.num_classes if self.task == "classification" else 1


def check_int(name: str, value: Any, minimum: int) -> int:
    """An integer (not a bool) >= ``minimum``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def check_real(name: str, value: Any, *, minimum: float = 0.0, strict: bool = False, below: float = math.inf) -> float:
    """A finite number >= ``minimum`` (> with ``strict``) and < ``below``, returned as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    number = float(value)
    low_ok = number > minimum if strict else number >= minimum
    if not (math.isfinite(number) and low_ok and number < below):
        bounds = f"{'>' if strict else '>='} {minimum:g}" + (f" and < {below:g}" if below < math.inf else "")
        raise ValueError(f"{name}: expected a finite number {bounds}, got {value!r}")
    return number


def check_choice(name: str, value: Any, choices: Any, what: str) -> str:
    """``value`` must be one of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: unknown {what} {value!r}; choose from {', '.join(choices)}")
    return value


def check_dataset(name: str) -> str:
    return check_choice("dataset", name, DATASETS, "dataset")


def generated_option(spec: DataSpec, key: str) -> float:
    """``spec.<key>`` or, when unset, the generated task's default."""
    value = getattr(spec, key)
    return GENERATED_DEFAULTS[spec.name][key] if value is None else value


def check_spec(spec: DataSpec) -> DataSpec:
    """Raise ValueError naming the field when ``spec`` cannot describe a task."""
    check_dataset(spec.name)
    check_real("test_fraction", spec.test_fraction, strict=True, below=1.0)
    check_int("data_seed", spec.data_seed, 0)
    if spec.train_size is not None:
        check_int("train_size", spec.train_size, 2)
    allowed = GENERATED_DEFAULTS.get(spec.name, {})
    for key in ("samples", "features", "informative", "noise"):
        value = getattr(spec, key)
        if value is None:
            continue
        if key not in allowed:
            where = f"the {spec.name} task" if spec.name in GENERATED else f"bundled data set {spec.name!r}"
            options = f" (its options: {', '.join(allowed)})" if allowed else " (only generated tasks do)"
            raise ValueError(f"{key}: {where} has no {key!r} option{options}")
        if key == "noise":
            check_real("noise", value)
        else:
            check_int(key, value, {"samples": 10, "features": 1, "informative": 1}[key])
    if spec.name == "sparse_regression":
        features, informative = generated_option(spec, "features"), generated_option(spec, "informative")
        if informative > features:
            raise ValueError(
                f"informative: expected at most features={features} informative features, got {informative}"
            )
    return spec


def _raw(spec: DataSpec) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    if spec.name == "digits":
        x, y = skdata.load_digits(return_X_y=True)
        return x / 16.0, y, None
    if spec.name == "breast_cancer":
        return (*skdata.load_breast_cancer(return_X_y=True), None)
    if spec.name == "wine":
        return (*skdata.load_wine(return_X_y=True), None)
    if spec.name == "moons":
        x, y = skdata.make_moons(
            n_samples=int(generated_option(spec, "samples")),
            noise=float(generated_option(spec, "noise")),
            random_state=spec.data_seed,
        )
        return x, y, None
    x, y, coef = skdata.make_regression(
        n_samples=int(generated_option(spec, "samples")),
        n_features=int(generated_option(spec, "features")),
        n_informative=int(generated_option(spec, "informative")),
        noise=float(generated_option(spec, "noise")),
        coef=True,
        random_state=spec.data_seed,
    )
    return x, y, tuple(int(i) for i in np.flatnonzero(coef))


@functools.lru_cache(maxsize=8)
def load(spec: DataSpec) -> Data:
    """Load, split and scale the task ``spec`` describes (cached: a study loads it once per process)."""
    check_spec(spec)
    x, y, true_features = _raw(spec)
    classification = spec.name != "sparse_regression"
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=spec.test_fraction, random_state=spec.data_seed, stratify=y if classification else None
    )
    if spec.train_size is not None and spec.train_size < len(x_train):
        x_train, _, y_train, _ = train_test_split(
            x_train,
            y_train,
            train_size=spec.train_size,
            random_state=spec.data_seed,
            stratify=y_train if classification else None,
        )
    if spec.name == "digits":
        x_train, x_test = (a.reshape(-1, 1, 8, 8) for a in (x_train, x_test))
    else:
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if classification:
        targets = (torch.as_tensor(y_train, dtype=torch.int64), torch.as_tensor(y_test, dtype=torch.int64))
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    else:
        target_scaler = StandardScaler().fit(y_train.reshape(-1, 1))
        targets = tuple(
            torch.as_tensor(target_scaler.transform(t.reshape(-1, 1)).ravel(), dtype=torch.float32)
            for t in (y_train, y_test)
        )
        num_classes = 0
    return Data(
        name=spec.name,
        task="classification" if classification else "regression",
        x_train=torch.as_tensor(x_train, dtype=torch.float32),
        y_train=targets[0],
        x_test=torch.as_tensor(x_test, dtype=torch.float32),
        y_test=targets[1],
        num_classes=num_classes,
        true_features=true_features,
    )
