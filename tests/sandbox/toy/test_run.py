"""Measured toy paths (real optimizers, float64) against the closed forms, and the run's bookkeeping."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.toy.closed_form import affine_path, recurrence_for
from decaylab.sandbox.toy.run import (
    MethodSpec,
    ToyConfig,
    parse_methods,
    quadratic_loss,
    run_method,
    run_toy,
    summary_rows,
    write_csv,
)

# lr*lam large enough that the L1 rules cross zero on w_2 within the run: push 0.005/step vs 0.9 contraction
FAST = dict(curvatures=(0.1, 2.0), init=(1.0, 0.2), lr=0.05, steps=120)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("method", list(METHODS))
def test_measured_path_matches_the_closed_form(method: str, momentum: float) -> None:
    config = ToyConfig(methods=(MethodSpec(method, 0.1),), momentum=momentum, **FAST)
    path = run_method(config, config.methods[0])
    assert path.closed_form is not None
    covered = np.isfinite(path.closed_form)
    # without momentum w_1 never crosses zero in this run; with momentum 0.9 it overshoots (~step 30),
    # where the L1 rules' closed forms stop
    assert covered[:, 0].sum() == config.steps + 1 if momentum == 0 else covered[:, 0].sum() >= 20
    np.testing.assert_allclose(path.weights[covered], path.closed_form[covered], rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", ["l1", "penalty_l1"])
def test_sign_rules_leave_the_affine_form_after_the_flip(method: str) -> None:
    """The truncation matters: past the first sign flip the measured path is not the affine continuation."""
    config = ToyConfig(methods=(MethodSpec(method, 0.1),), **FAST)
    path = run_method(config, config.methods[0])
    reach = int(np.isfinite(path.closed_form[:, 1]).sum())
    assert reach < config.steps + 1
    rec = recurrence_for(method, curvature=2.0, w0=0.2, lr=config.lr, strength=0.1)
    continuation = affine_path(rec, 0.2, config.steps)
    assert np.max(np.abs(path.weights[reach:, 1] - continuation[reach:])) > 1e-3
    assert np.max(np.abs(path.weights[reach:, 1])) < 0.01  # it rattles around zero instead


def test_proximal_l1_reaches_exact_zero_and_the_closed_form_says_so() -> None:
    config = ToyConfig(methods=(MethodSpec("proximal_l1", 0.1),), **FAST)
    path = run_method(config, config.methods[0])
    assert path.closed_form_rows == config.steps + 1
    zero = path.weights[:, 1] == 0.0
    assert zero[-1]
    assert np.array_equal(zero, path.closed_form[:, 1] == 0.0)


@pytest.mark.parametrize("scale", ["lr", "schedule", "none"])
def test_decoupled_scale_conventions(scale: str) -> None:
    config = ToyConfig(methods=(MethodSpec("decoupled_l2", 0.01),), scale=scale, momentum=0.5, **FAST)
    path = run_method(config, config.methods[0])
    assert path.closed_form_error() < 1e-13
    factor = 0.01 * (config.lr if scale == "lr" else 1.0)
    # one step from w_1 = 1 with momentum's first buffer = the gradient: w = (1 - s*lam) - lr*c
    assert path.weights[1, 0] == pytest.approx(1 - factor - config.lr * 0.1, abs=1e-15)


def test_default_config_is_seed_two() -> None:
    result = run_toy(ToyConfig())
    none, coupled = result.paths
    assert (none.method.name, coupled.method.name) == ("none", "coupled_l2")
    assert coupled.weights[100] == pytest.approx([0.8957799, 0.1312731], abs=5e-8)
    assert none.weights[100] == pytest.approx([0.9047921, 0.1326196], abs=5e-8)
    assert coupled.weights[1000, 0] == pytest.approx(0.3326696, abs=5e-8)
    assert none.weights[1000, 0] == pytest.approx(0.3676954, abs=5e-8)
    for path in result.paths:
        assert path.closed_form_error() < 1e-13
        assert path.closed_form_note == "all steps"


def test_seed_two_with_momentum() -> None:
    config = ToyConfig(methods=parse_methods("coupled_l2,decoupled_l2", 0.01), momentum=0.9, steps=200)
    coupled, decoupled = run_toy(config).paths
    assert coupled.weights[200, 0] == pytest.approx(0.09464, abs=5e-6)
    assert decoupled.weights[200, 0] == pytest.approx(0.11773, abs=5e-6)


def test_float32_runs_agree_to_single_precision() -> None:
    config = ToyConfig(methods=(MethodSpec("coupled_l2", 0.01),), dtype="float32", steps=200)
    path = run_method(config, config.methods[0])
    assert 1e-12 < path.closed_form_error() < 1e-5


def test_adam_base_has_no_closed_form() -> None:
    config = ToyConfig(methods=(MethodSpec("decoupled_l2", 0.01),), base="adam", steps=5)
    path = run_method(config, config.methods[0])
    assert path.closed_form is None
    assert path.closed_form_error() is None
    assert "adam" in path.closed_form_note


def test_penalty_is_recorded_and_loss_is_the_quadratic_alone() -> None:
    config = ToyConfig(methods=(MethodSpec("penalty_l2", 0.1),), steps=3)
    path = run_method(config, config.methods[0])
    np.testing.assert_allclose(path.penalty, 0.1 * (path.weights**2).sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(path.loss, quadratic_loss(config.curvatures, path.weights), rtol=1e-15)
    assert path.loss[0] == pytest.approx(0.05 + 1.0)


def test_divergence_is_reported_not_raised() -> None:
    config = ToyConfig(methods=(MethodSpec("none", 0.0),), curvatures=(300.0,), init=(1.0,), lr=0.01, steps=2000)
    path = run_method(config, config.methods[0])  # |1 - lr*c| = 2: overflows to inf, then nan
    assert path.diverged
    row = summary_rows(run_toy(config))[0]
    assert row["diverged"] is True
    assert row["closed_form_steps"] == config.steps + 1  # the closed form diverges too
    assert row["closed_form_error"] < 1e-6 * np.nanmax(np.abs(path.weights[np.isfinite(path.weights)]))


def test_parse_methods() -> None:
    specs = parse_methods(" none, coupled_l2 ,l1:0.05,", 0.01)
    assert specs == (MethodSpec("none", 0.01), MethodSpec("coupled_l2", 0.01), MethodSpec("l1", 0.05))
    assert parse_methods("l1:0.1,l1:0.2", 0.0)[1].label == "l1 lam=0.2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", r"methods: unknown method 'nope'; choose from none, coupled_l2"),
        ("l1:abc", "strength of 'l1' is not a number"),
        ("l1:-1", "strength of 'l1'.*>= 0"),
        ("l1:nan", "strength of 'l1'.*finite"),
        (" , ", "at least one method"),
        ("l1,l1", "listed twice: l1"),
    ],
)
def test_parse_methods_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_methods(text, 0.01)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(lr=0.0), "lr: expected a number > 0"),
        (dict(lr=math.nan), "lr: expected a finite number"),
        (dict(steps=0), "steps: expected an integer >= 1"),
        (dict(steps=2.5), "steps: expected an integer"),
        (dict(momentum=1.0), r"momentum: expected a number in \[0, 1\)"),
        (dict(curvatures=(0.1, -2.0)), "curvatures: expected numbers >= 0"),
        (dict(curvatures=(0.1, math.inf)), "curvatures: expected finite numbers"),
        (dict(init=(1.0,)), "init: expected one start value per curvature"),
        (dict(base="rmsprop"), "base: expected one of sgd, adam"),
        (dict(base="adam", momentum=0.9), "momentum: only used with base 'sgd'"),
        (dict(scale="linear"), "scale: expected one of lr, schedule, none"),
        (dict(dtype="float16"), "dtype: expected one of float32, float64"),
        (dict(methods=()), "methods: expected at least one method"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ToyConfig(**changes)


def test_csv_has_every_step_and_blank_closed_form_where_none(tmp_path) -> None:
    config = ToyConfig(methods=parse_methods("none,l1:0.1", 0.0), **{**FAST, "steps": 40})
    result = run_toy(config)
    path = write_csv(result, tmp_path / "steps.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * 41
    assert list(rows[0]) == [
        "method", "strength", "step", "w_1", "w_2", "loss", "penalty", "closed_form_w_1", "closed_form_w_2"
    ]  # fmt: skip
    l1 = [r for r in rows if r["method"] == "l1"]
    np.testing.assert_array_equal([float(r["w_2"]) for r in l1], result.paths[1].weights[:, 1])  # lossless
    reach = result.paths[1].closed_form_rows
    assert reach < 41
    assert all(r["closed_form_w_2"] == "" for r in l1[reach:])
    assert all(r["closed_form_w_2"] != "" for r in l1[:reach])
