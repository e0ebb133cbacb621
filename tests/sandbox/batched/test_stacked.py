"""The stacked model: forward, losses, gradients and scores equal each model's own; rows stay apart."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from decaylab.sandbox.batched import stacked as stacked_module
from decaylab.sandbox.batched.stacked import StackedModel, stacked_loss, stacked_scores
from decaylab.sandbox.train import Run, RunConfig, data_loss, score

TASKS = {
    "mlp": RunConfig(dataset="digits", model="mlp", hidden=(16, 8), train_size=100),
    "linear": RunConfig(dataset="sparse_regression", model="linear"),
    "cnn": RunConfig(dataset="digits", model="cnn", conv_layers=2, channels=3, train_size=100),
}


def runs(task: RunConfig, count: int = 3) -> list[Run]:
    return [Run(dataclasses.replace(task, seed=s)) for s in range(count)]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_forward_loss_and_gradients_equal_each_models_own(name: str) -> None:
    group = runs(TASKS[name])
    stacked = StackedModel([r.model for r in group])
    data = group[0].data
    generator = torch.Generator().manual_seed(0)
    index = torch.stack([torch.randperm(len(data.x_train), generator=generator)[:10] for _ in group])
    x, y = data.x_train[index], data.y_train[index]
    losses, grads = stacked.loss_and_grad(data.task, x, y)
    assert stacked.evaluates_stacked == (name != "cnn")  # convolutional models evaluate one by one
    for i, run in enumerate(group):
        run.model.zero_grad()
        loss = data_loss(data.task, run.model(x[i]), y[i])
        loss.backward()
        torch.testing.assert_close(losses[i], loss.detach(), rtol=1e-6, atol=1e-6)
        expected = torch.cat([p.grad.reshape(-1) for p in run.model.parameters()])
        torch.testing.assert_close(grads[i], expected, rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            torch.testing.assert_close(stacked.forward(data.x_test, shared_input=True)[i], run.model(data.x_test))


@pytest.mark.parametrize("name", ["mlp", "linear"])
def test_scores_equal_train_py_on_each_model(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    group = runs(TASKS[name])
    stacked = StackedModel([r.model for r in group])
    data = group[0].data
    whole = stacked.evaluate(data.task, data.x_test, data.y_test)
    monkeypatch.setattr(stacked_module, "EVAL_CHUNK_ELEMENTS", 1)  # one configuration at a time
    chunked = stacked.evaluate(data.task, data.x_test, data.y_test)
    for i, run in enumerate(group):
        loss, metric = run.evaluate(data.x_test, data.y_test)
        for got in (whole[i], chunked[i]):
            assert got[0] == pytest.approx(loss, rel=1e-6)
            assert got[1] == pytest.approx(metric, rel=1e-6, abs=1e-6)  # R^2 near 0: float32 rounding


def test_stacked_loss_equals_data_loss_per_row() -> None:
    generator = torch.Generator().manual_seed(1)
    outputs = torch.randn(4, 7, 5, generator=generator) * 3
    labels = torch.randint(0, 5, (4, 7), generator=generator)
    targets = torch.randn(4, 7, generator=generator)
    for task, target, out in (("classification", labels, outputs), ("regression", targets, outputs[..., :1])):
        got = stacked_loss(task, out, target)
        torch.testing.assert_close(got, torch.stack([data_loss(task, o, t) for o, t in zip(out, target, strict=True)]))
    scores = stacked_scores("classification", outputs, labels[0])
    expected = [score("classification", o, labels[0]) for o in outputs]
    assert [v for pair in scores for v in pair] == pytest.approx([v for pair in expected for v in pair], rel=1e-6)


def test_a_nan_row_leaves_the_other_rows_losses_and_gradients_alone() -> None:
    group = runs(TASKS["mlp"])
    data = group[0].data
    x, y = data.x_train[:8].expand(3, -1, -1, -1, -1), data.y_train[:8].expand(3, -1)
    clean = StackedModel([r.model for r in group])
    poisoned = StackedModel([r.model for r in group])
    with torch.no_grad():
        poisoned.flat[1, :5] = float("nan")
    losses, grads = clean.loss_and_grad(data.task, x, y)
    bad_losses, bad_grads = poisoned.loss_and_grad(data.task, x, y)
    assert bad_losses[1].isnan()
    for i in (0, 2):
        assert torch.equal(bad_losses[i], losses[i])
        assert torch.equal(bad_grads[i], grads[i])


def test_write_back_keep_and_views_share_one_buffer() -> None:
    group = runs(TASKS["mlp"])
    stacked = StackedModel([r.model for r in group])
    assert stacked.numel == sum(p.numel() for p in group[0].model.parameters())
    with torch.no_grad():
        stacked.flat.mul_(2)  # the per-parameter views see it
    assert torch.equal(stacked.params["fc1.weight"][2], group[2].model.fc1.weight.detach() * 2)
    stacked.keep(torch.tensor([2, 0]))
    targets = [Run(TASKS["mlp"]).model for _ in range(2)]
    stacked.write_back(targets)
    assert torch.equal(targets[0].out.bias, group[2].model.out.bias.detach() * 2)
    assert torch.equal(targets[1].fc2.weight, group[0].model.fc2.weight.detach() * 2)
    assert torch.equal(stacked.unflatten(stacked.flat[1])[0], group[0].model.fc1.weight.detach() * 2)


def test_models_that_cannot_be_stacked_are_refused() -> None:
    with pytest.raises(ValueError, match="same parameter names and shapes"):
        StackedModel([nn.Linear(2, 3), nn.Linear(3, 3)])
    with pytest.raises(ValueError, match="buffers"):
        StackedModel([nn.BatchNorm1d(3)])
    with pytest.raises(ValueError, match="at least one"):
        StackedModel([])
