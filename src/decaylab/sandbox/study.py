"""A study: one task, and a grid of methods x strengths x seeds (x learning rates) to run on it.

A study is written as TOML (read with :mod:`tomllib`)::

    [task]                    # any RunConfig option except the grid axes method/strength/lr/seed
    dataset = "digits"
    model = "cnn"
    epochs = 30

    [grid]
    methods = ["none", "coupled_l2", "l1"]
    strengths = [1e-3, 1e-2]  # for every method without its own list below ("none" runs once, at 0)
    seeds = [0, 1, 2]
    lrs = [0.05]

    [grid.strengths_by_method]
    l1 = [1e-4, 1e-3]

    [report]
    rank_by = "test_loss"     # or "test_metric" (accuracy / R^2): how the best strength is picked

:meth:`Study.configurations` expands it into :class:`~decaylab.sandbox.train.RunConfig` objects in
a fixed order (lr, method, strength, seed). :attr:`Study.fingerprint` identifies a study: a study
directory only ever holds the study it was created for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decaylab.sandbox.datasets import check_int, check_real
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.train import FIELDS, RunConfig

GRID_AXES: tuple[str, ...] = ("method", "strength", "lr", "seed")
TASK_FIELDS: tuple[str, ...] = tuple(name for name in FIELDS if name not in GRID_AXES)
GRID_KEYS: tuple[str, ...] = ("methods", "strengths", "strengths_by_method", "seeds", "lrs")
RANK_BY: dict[str, str] = {
    "test_loss": "lowest final test loss (cross-entropy / MSE)",
    "test_metric": "highest final test accuracy (classification) or R^2 (regression)",
}
SECTIONS: tuple[str, ...] = ("task", "grid", "report")


def _unique(name: str, values: Sequence[Any]) -> None:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{name}: {seen[0]!r} appears more than once")


def _list(name: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"{name}: expected a list, got {value!r}")
    if not value:
        raise ValueError(f"{name}: expected at least one value, got an empty list")
    return list(value)


def _strengths(name: str, values: Any) -> tuple[float, ...]:
    values = tuple(check_real(name, v, strict=True) for v in _list(name, values))
    _unique(name, values)
    return values


def _check_method(name: str, method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"{name}: unknown method {method!r}; choose from {', '.join(METHODS)}")
    return method


@dataclass(frozen=True)
class Study:
    """A task (every :class:`RunConfig` option but the grid axes) and the grid to run on it.

    ``strengths`` applies to every method that has no list in ``strengths_by_method``; the method
    ``none`` runs once per (lr, seed), at strength 0. Every strength in the grid is > 0.
    """

    task: RunConfig
    methods: tuple[str, ...]
    strengths: tuple[float, ...]
    seeds: tuple[int, ...]
    lrs: tuple[float, ...]
    strengths_by_method: tuple[tuple[str, tuple[float, ...]], ...] = ()
    rank_by: str = "test_loss"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        methods = tuple(_check_method("methods", m) for m in _list("methods", self.methods))
        _unique("methods", methods)
        set_(self, "methods", methods)
        set_(self, "strengths", _strengths("strengths", self.strengths))
        seeds = tuple(check_int("seeds", s, 0) for s in _list("seeds", self.seeds))
        _unique("seeds", seeds)
        set_(self, "seeds", seeds)
        lrs = tuple(check_real("lrs", v, strict=True) for v in _list("lrs", self.lrs))
        _unique("lrs", lrs)
        set_(self, "lrs", lrs)
        by_method = dict(self.strengths_by_method)
        for method, values in by_method.items():
            _check_method("strengths_by_method", method)
            if method == "none":
                raise ValueError("strengths_by_method: 'none' has no strength (it runs once, at 0)")
            by_method[method] = _strengths(f"strengths_by_method.{method}", values)
        set_(self, "strengths_by_method", tuple(sorted(by_method.items())))
        if self.rank_by not in RANK_BY:
            raise ValueError(f"rank_by: unknown ranking {self.rank_by!r}; choose from {', '.join(RANK_BY)}")
        # Every configuration must be valid: build them all now, so nothing is half-run later.
        self.configurations()

    def strengths_for(self, method: str) -> tuple[float, ...]:
        if method == "none":
            return (0.0,)
        return dict(self.strengths_by_method).get(method, self.strengths)

    def configurations(self) -> list[RunConfig]:
        """Every run of the study, ordered by lr, method, strength, seed."""
        return [
            dataclasses.replace(self.task, lr=lr, method=method, strength=strength, seed=seed)
            for lr in self.lrs
            for method in self.methods
            for strength in self.strengths_for(method)
            for seed in self.seeds
        ]

    # --- serialization -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"task": {...}, "grid": {...}, "report": {...}}``; ``None`` task options are left out."""
        task = {k: v for k, v in self.task.to_dict().items() if k in TASK_FIELDS and v is not None}
        grid: dict[str, Any] = {
            "methods": list(self.methods),
            "strengths": list(self.strengths),
            "seeds": list(self.seeds),
            "lrs": list(self.lrs),
        }
        if self.strengths_by_method:
            grid["strengths_by_method"] = {m: list(v) for m, v in self.strengths_by_method}
        return {"task": task, "grid": grid, "report": {"rank_by": self.rank_by}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Study:
        """Build from the TOML layout; unknown sections or keys are errors that list the valid ones."""
        for section in data:
            if section not in SECTIONS:
                raise ValueError(f"{section}: unknown section; valid sections: {', '.join(SECTIONS)}")
        task = dict(data.get("task", {}))
        grid = dict(data.get("grid", {}))
        report = dict(data.get("report", {}))
        for key in task:
            if key in GRID_AXES:
                plural = "lrs" if key == "lr" else f"{key}s"
                raise ValueError(f"{key}: a grid axis; set it as [grid] {plural} = [...]")
            if key not in TASK_FIELDS:
                raise ValueError(f"{key}: unknown [task] option; valid options: {', '.join(TASK_FIELDS)}")
        for key in grid:
            if key not in GRID_KEYS:
                raise ValueError(f"{key}: unknown [grid] option; valid options: {', '.join(GRID_KEYS)}")
        for key in report:
            if key != "rank_by":
                raise ValueError(f"{key}: unknown [report] option; valid options: rank_by")
        defaults = DEFAULT_GRID
        by_method = grid.get("strengths_by_method", {})
        if not isinstance(by_method, Mapping):
            raise ValueError(f"strengths_by_method: expected a table method = [strengths], got {by_method!r}")
        return cls(  # lists are checked (and made tuples) by __post_init__
            task=RunConfig(**task),
            methods=grid.get("methods", defaults["methods"]),
            strengths=grid.get("strengths", defaults["strengths"]),
            seeds=grid.get("seeds", defaults["seeds"]),
            lrs=grid.get("lrs", [RunConfig.lr]),
            strengths_by_method=tuple(by_method.items()),
            rank_by=report.get("rank_by", "test_loss"),
        )

    @classmethod
    def from_toml(cls, path: Path) -> Study:
        try:
            with Path(path).open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ValueError(f"config: no such file {str(path)!r}") from None
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"config: {path} is not valid TOML: {error}") from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_toml(self) -> str:
        return to_toml(self.to_dict())

    @property
    def fingerprint(self) -> str:
        """The first 16 hex digits of the SHA-256 of the canonical JSON study."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    # --- variants --------------------------------------------------------------------------------

    def override(self, task: Mapping[str, Any] | None = None, grid: Mapping[str, Any] | None = None) -> Study:
        """A copy with some task options and grid entries replaced (as command-line flags do)."""
        data = self.to_dict()
        data["task"].update(task or {})
        data["grid"].update(grid or {})
        return Study.from_dict(data)

    def quick(self) -> Study:
        """A seconds-long version of this study: at most 3 epochs and 2 seeds, and only the smallest
        and largest strength of each method (every method and lr is kept)."""

        def ends(values: tuple[float, ...]) -> list[float]:
            return sorted({min(values), max(values)})

        grid: dict[str, Any] = {"seeds": list(self.seeds[:2]), "strengths": ends(self.strengths)}
        if self.strengths_by_method:
            grid["strengths_by_method"] = {m: ends(v) for m, v in self.strengths_by_method}
        return self.override(task={"epochs": min(self.task.epochs, 3)}, grid=grid)

    def label(self) -> str:
        """A short human name, e.g. ``digits-cnn``."""
        return f"{self.task.dataset}-{self.task.model}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):  # a TOML basic string: escape quotes, backslashes and control characters
        escaped = "".join(
            f"\\{ch}" if ch in '"\\' else f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch
            for ch in value
        )
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """Write nested tables of scalars and lists as TOML (the subset a study uses; read back by tomllib)."""
    scalars = [f"{key} = {_toml_value(value)}" for key, value in data.items() if not isinstance(value, Mapping)]
    lines = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines.append(("\n" if lines else "") + to_toml(value, f"{prefix}.{key}" if prefix else key).rstrip("\n"))
    return "\n".join(lines) + "\n"


# --- the default study ------------------------------------------------------------------------------

DEFAULT_GRID: dict[str, Any] = {
    "methods": ["none", "coupled_l2", "decoupled_l2", "l1", "proximal_l1", "penalty_l2"],
    "strengths": [1e-3, 1e-2],
    "seeds": [0, 1, 2],
}


def default_study() -> Study:
    """What ``decaylab compare`` runs with no arguments (see the README for what it finds)."""
    return Study.from_dict(DEFAULT_STUDY)


DEFAULT_STUDY: dict[str, Any] = {
    "task": {
        "dataset": "digits",
        "model": "cnn",
        "train_size": 300,
        "epochs": 30,
        "batch_size": 32,
        "schedule": "cosine",
        "base": "sgd",
        "momentum": 0.9,
        "scale": "lr",
    },
    "grid": {
        "methods": DEFAULT_GRID["methods"],
        "strengths": [1e-3, 3e-3, 1e-2, 3e-2],
        "strengths_by_method": {
            "decoupled_l2": [1e-2, 3e-2, 1e-1, 3e-1],
            "l1": [3e-3, 1e-2, 3e-2, 1e-1],
            "proximal_l1": [3e-3, 1e-2, 3e-2, 1e-1],
            "penalty_l2": [1e-3, 3e-3, 1e-2, 3e-2],
        },
        "seeds": [0, 1, 2],
        "lrs": [0.05],
    },
    "report": {"rank_by": "test_loss"},
}
