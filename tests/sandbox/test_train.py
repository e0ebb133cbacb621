"""One training run: config validation, determinism, exact resume, the recorded statistics and the
decay timescale, each against an independent computation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from sklearn.metrics import accuracy_score, r2_score

from decaylab.optim import SGD, SGDW
from decaylab.sandbox.train import (
    FIELDS,
    DivergedError,
    Run,
    RunConfig,
    decay_timescale,
    train,
)

TINY = RunConfig(dataset="moons", model="mlp", hidden=(8,), epochs=3, batch_size=32, lr=0.1)


def metrics(records: list) -> list[dict]:
    return [{k: v for k, v in r.metrics().items() if k != "wall_s"} | {"layers": r.layers} for r in records]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs: expected an integer >= 1, got 0"),
        ({"lr": 0.0}, "lr: expected a finite number > 0"),
        ({"lr": math.inf}, "lr: expected a finite number > 0"),
        ({"momentum": 1.0}, "momentum: expected a finite number >= 0 and < 1"),
        ({"strength": -1e-3}, "strength: expected a finite number >= 0"),
        ({"batch_size": 2.5}, "batch_size: expected an integer >= 1"),
        ({"method": "l2"}, "method: unknown method 'l2'; choose from none, coupled_l2, decoupled_l2"),
        ({"model": "resnet"}, "model: unknown model 'resnet'; choose from cnn, mlp, linear"),
        ({"schedule": "linear"}, "schedule: unknown lr schedule 'linear'; choose from constant, cosine, step"),
        ({"base": "rmsprop"}, "base: unknown base optimizer 'rmsprop'; choose from sgd, adam"),
        ({"scale": "epoch"}, "scale: unknown scale convention 'epoch'; choose from lr, schedule, none"),
        ({"hidden": (8, 0)}, "hidden: expected layer widths >= 1"),
        ({"hidden": 8}, "hidden: expected a list of layer widths"),
        ({"model": "cnn"}, "model: 'cnn' needs image inputs"),
        ({"step_every": 0}, "step_every: expected an integer >= 1"),
    ],
)
def test_invalid_config_names_the_field(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        dataclasses.replace(TINY, **change)


def test_from_dict_rejects_unknown_options_and_round_trips() -> None:
    assert RunConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="epoch: unknown run option; valid options: dataset"):
        RunConfig.from_dict({"epoch": 3})


def test_run_id_is_stable_and_changes_with_every_field() -> None:
    assert TINY.run_id == dataclasses.replace(TINY).run_id
    assert len(TINY.run_id) == 16
    changed = {
        "dataset": "wine", "test_fraction": 0.3, "data_seed": 1, "train_size": 50, "samples": 100,
        "features": None, "informative": None, "noise": 0.1, "model": "linear", "hidden": (4,),
        "conv_layers": 3, "channels": 4, "method": "l1", "strength": 0.1, "base": "adam", "momentum": 0.5,
        "scale": "none", "lr": 0.2, "schedule": "cosine", "step_every": 2, "gamma": 0.5, "epochs": 4,
        "batch_size": 16, "seed": 1,
    }  # fmt: skip
    for name in FIELDS:
        if changed[name] is None:
            continue
        other = dataclasses.replace(TINY, **{name: changed[name]}, **({"samples": None} if name == "dataset" else {}))
        assert other.run_id != TINY.run_id, name


def test_same_config_gives_identical_numbers() -> None:
    config = dataclasses.replace(TINY, method="decoupled_l2", strength=0.01, schedule="cosine")
    first = [r for r, _ in train(config)]
    second = [r for r, _ in train(config)]
    assert metrics(first) == metrics(second)
    other_seed = [r for r, _ in train(dataclasses.replace(config, seed=1))]
    assert metrics(first) != metrics(other_seed)


@pytest.mark.parametrize("method", ["coupled_l2", "proximal_l1", "penalty_l2", "toward_reference"])
def test_resuming_from_a_checkpoint_continues_exactly(method: str) -> None:
    config = dataclasses.replace(TINY, method=method, strength=0.01, epochs=4, schedule="step", step_every=1)
    straight = [r for r, _ in train(config)]
    first_half = []
    for record, run in train(config):
        first_half.append(record)
        if record.epoch == 2:
            checkpoint = run.state_bytes()
            break
    resumed = first_half + [r for r, _ in train(config, checkpoint)]
    assert metrics(resumed) == metrics(straight)


def test_checkpoint_of_another_run_is_refused() -> None:
    run = Run(TINY)
    with pytest.raises(ValueError, match="checkpoint: belongs to run"):
        Run(dataclasses.replace(TINY, seed=3)).load_state_bytes(run.state_bytes())


def test_training_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for _ in train(TINY):
        pass
    assert torch.equal(torch.rand(3), expected)


def test_metrics_match_sklearn_on_the_models_predictions() -> None:
    run = Run(dataclasses.replace(TINY, epochs=1))
    record = run.train_epoch()
    with torch.no_grad():
        predicted = run.model(run.data.x_test).argmax(1)
        loss = torch.nn.functional.cross_entropy(run.model(run.data.x_test), run.data.y_test)
    assert record.test_metric == pytest.approx(accuracy_score(run.data.y_test, predicted))
    assert record.test_loss == pytest.approx(float(loss))
    regression = Run(RunConfig(dataset="sparse_regression", model="linear", epochs=1, lr=0.01))
    record = regression.train_epoch()
    with torch.no_grad():
        prediction = regression.model(regression.data.x_test).squeeze(-1)
    assert record.test_metric == pytest.approx(r2_score(regression.data.y_test, prediction), rel=1e-6)
    assert record.recovered is not None
    assert 0 <= record.recovered <= 5


def test_schedules_follow_their_closed_forms() -> None:
    cosine = dataclasses.replace(TINY, schedule="cosine", epochs=4, lr=0.2)
    lrs = [r.lr for r, _ in train(cosine)]
    assert lrs == pytest.approx([0.2 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
    step = dataclasses.replace(TINY, schedule="step", epochs=5, lr=0.2, step_every=2, gamma=0.5)
    assert [r.lr for r, _ in train(step)] == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05])
    constant = dataclasses.replace(TINY, epochs=3)
    assert [r.lr for r, _ in train(constant)] == pytest.approx([0.1] * 3)


@pytest.mark.parametrize(
    ("change", "per_step"),
    [
        ({"method": "decoupled_l2", "scale": "lr"}, 0.1 * 0.01),
        ({"method": "decoupled_l2", "scale": "none"}, 0.01),
        ({"method": "toward_reference", "scale": "lr"}, 0.1 * 0.01),
        ({"method": "elastic_net", "scale": "lr"}, 0.1 * 0.01),
        ({"method": "decoupled_l2", "base": "adam"}, 0.1 * 0.01),
        ({"method": "coupled_l2", "momentum": 0.0}, 0.1 * 0.01),
        ({"method": "coupled_l2", "momentum": 0.9}, 0.1 * 0.01 / 0.1),
        ({"method": "penalty_l2", "momentum": 0.0}, 2 * 0.1 * 0.01),
        ({"method": "l1"}, None),
        ({"method": "proximal_l1"}, None),
        ({"method": "penalty_l1"}, None),
        ({"method": "coupled_l2", "base": "adam"}, None),
        ({"method": "none", "strength": 0.0}, None),
    ],
)
def test_decay_timescale_per_method(change: dict, per_step: float | None) -> None:
    config = dataclasses.replace(TINY, **({"lr": 0.1, "strength": 0.01} | change))
    got = decay_timescale(config, lr=0.1, steps_per_epoch=10)
    assert got == (None if per_step is None else pytest.approx(1 / (per_step * 10)))


def test_schedule_scale_timescale_uses_the_lr_ratio() -> None:
    config = dataclasses.replace(TINY, method="decoupled_l2", strength=0.01, scale="schedule", lr=0.1)
    assert decay_timescale(config, lr=0.05, steps_per_epoch=10) == pytest.approx(1 / (0.5 * 0.01 * 10))


@pytest.mark.parametrize(("momentum", "coupled"), [(0.0, False), (0.0, True), (0.9, True)])
def test_timescale_is_the_e_folding_time_of_a_weight_with_no_gradient(momentum: float, coupled: bool) -> None:
    """After 1/c steps with zero data gradient a weight has shrunk by about 1/e (the EMA timescale)."""
    lr, lam, steps_per_epoch = 0.01, 0.02, 50
    method = "coupled_l2" if coupled else "decoupled_l2"
    config = dataclasses.replace(TINY, method=method, strength=lam, lr=lr, momentum=momentum)
    epochs = decay_timescale(config, lr=lr, steps_per_epoch=steps_per_epoch)
    steps = round(epochs * steps_per_epoch)
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    if coupled:
        optimizer = SGD([w], lr=lr, momentum=momentum, weight_decay=lam)
    else:
        optimizer = SGDW([w], lr=lr, momentum=momentum, weight_decay=lam, scale="lr")
    for _ in range(steps):
        w.grad = torch.zeros_like(w)
        optimizer.step()
    assert float(w.detach()) == pytest.approx(math.exp(-1), rel=0.03)


def test_a_nan_loss_raises_diverged_with_the_epoch() -> None:
    config = RunConfig(dataset="sparse_regression", model="linear", lr=5.0, epochs=20)
    with pytest.raises(DivergedError, match="diverged in epoch") as caught:
        for _ in train(config):
            pass
    assert 1 <= caught.value.epoch <= 20
