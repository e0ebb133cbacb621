"""Every number of seed notebook 1, through decaylab's public names (DESIGN.md's table)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decaylab import SGD, SGDW, SimpleCNN, WeightRegularization


def reset() -> tuple[SimpleCNN, torch.Tensor, torch.Tensor]:
    """The seed's reset(), verbatim apart from formatting."""
    _imgs = torch.ones(size=(1, 1, 1, 1))
    _true = torch.ones(_imgs.shape[0], dtype=torch.long)
    model = SimpleCNN(
        img_size=_imgs.shape[-2:],
        in_channels=_imgs.shape[1],
        num_classes=2,
        num_layers=1,
        num_channels=1,
        kernel_size=1,
    )
    model.fc.bias = torch.nn.Parameter(torch.zeros(1))
    model.fc.weight = torch.nn.Parameter(
        torch.full(size=model.fc.weight.shape, fill_value=-3 / np.prod(model.fc.weight.shape), requires_grad=True)
    )
    model.conv1.bias = torch.nn.Parameter(torch.zeros(model.num_channels))
    model.conv1.weight = torch.nn.Parameter(
        torch.full(
            size=model.conv1.weight.shape, fill_value=1.0 / np.prod(model.conv1.weight.shape), requires_grad=True
        )
    )
    return model, _imgs, _true


def one_step(make_optimizer, p: float | None = None):
    model, imgs, true = reset()
    loss = torch.nn.CrossEntropyLoss()(model(imgs), true) * 0
    penalty = None
    if p is not None:
        penalty = WeightRegularization(model, weight_decay=0.1, p=p).penalty()
        loss = loss + penalty
    loss.backward()
    grads = (model.conv1.weight.grad.clone(), model.fc.weight.grad.clone())
    make_optimizer(model.parameters()).step()
    return model, grads, penalty


def weights(model: SimpleCNN) -> tuple[float, list[float]]:
    return model.conv1.weight.item(), model.fc.weight.detach().flatten().tolist()


def test_initial_weights() -> None:
    model, _, _ = reset()
    assert weights(model) == (1.0, [-1.5, -1.5])


def test_coupled_l2_sgd() -> None:
    model, grads, _ = one_step(lambda ps: SGD(ps, lr=0.1, weight_decay=0.1))
    assert grads[0].item() == 0 and grads[1].abs().sum() == 0
    conv, fc = weights(model)
    assert conv == pytest.approx(0.99) and fc == pytest.approx([-1.485, -1.485])


def test_decoupled_l2_sgdw() -> None:
    conv, fc = weights(one_step(lambda ps: SGDW(ps, lr=0.1, weight_decay=0.1))[0])
    assert conv == pytest.approx(0.9) and fc == pytest.approx([-1.35, -1.35])


def test_decoupled_l1_sgdw_weight_norm_1() -> None:
    conv, fc = weights(one_step(lambda ps: SGDW(ps, lr=0.1, weight_decay=0.1, weight_norm=1))[0])
    assert conv == pytest.approx(0.9) and fc == pytest.approx([-1.4, -1.4])


@pytest.mark.parametrize(
    ("p", "penalty", "grads", "after"),
    [(2, 0.55, (0.2, -0.3), (0.98, -1.47)), (1, 0.4, (0.1, -0.1), (0.99, -1.49))],
)
def test_external_penalty(p: float, penalty: float, grads: tuple, after: tuple) -> None:
    model, (g_conv, g_fc), value = one_step(lambda ps: torch.optim.SGD(ps, lr=0.1), p=p)
    assert value.item() == pytest.approx(penalty)
    assert g_conv.item() == pytest.approx(grads[0]) and g_fc.flatten().tolist() == pytest.approx([grads[1]] * 2)
    conv, fc = weights(model)
    assert conv == pytest.approx(after[0]) and fc == pytest.approx([after[1]] * 2)


def test_torch_optimizer_sgdw_is_a_constant_shift() -> None:
    """torch_optimizer 0.3.0's SGDW subtracts lr*lam from every weight: 0.99 / -1.51, zero bias -> -0.01."""
    torch_optimizer = pytest.importorskip("torch_optimizer")
    model, _, _ = one_step(lambda ps: torch_optimizer.SGDW(ps, lr=0.1, weight_decay=0.1))
    conv, fc = weights(model)
    assert conv == pytest.approx(0.99) and fc == pytest.approx([-1.51, -1.51])
    assert model.fc.bias.item() == pytest.approx(-0.01) and model.conv1.bias.item() == pytest.approx(-0.01)


def test_pytorch_optimizer_sgdw_is_decoupled_scaled_by_lr() -> None:
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    model, _, _ = one_step(lambda ps: pytorch_optimizer.SGDW(ps, lr=0.1, weight_decay=0.1))
    conv, fc = weights(model)
    assert conv == pytest.approx(0.99) and fc == pytest.approx([-1.485, -1.485])
    assert model.fc.bias.item() == 0.0
