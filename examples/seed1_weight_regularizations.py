"""Seed notebook 1, "Different weight regularizations in a sandbox", ported to decaylab.

Only the import lines changed: ``SGD``, ``SGDW`` (the seed's own, here ``mySGDW``),
``WeightRegularization`` and ``SimpleCNN`` come from decaylab; the third-party SGDW is
torch_optimizer's, when installed. Run: ``python examples/seed1_weight_regularizations.py``.
"""

import numpy as np
import torch

from decaylab import SGD, SimpleCNN, WeightRegularization
from decaylab import SGDW as mySGDW

try:
    from torch_optimizer import SGDW
except ImportError:  # the third-party optimizer is optional
    SGDW = None


def reset():
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


loss = torch.nn.CrossEntropyLoss()


def one_step(title, make_optimizer, regularizer_p=None):
    print(f"## {title}")
    model, _imgs, _true = reset()
    out = model(_imgs)
    l = loss(out, _true) * 0
    if regularizer_p is not None:
        regularizer = WeightRegularization(model, weight_decay=0.1, p=regularizer_p)
        l = l + regularizer.penalty()
        print(l)
    l.backward()
    print(model.conv1.weight.grad)
    print(model.fc.weight.grad)
    optimizer = make_optimizer(model.parameters())
    optimizer.step()
    print(model.conv1.weight)
    print(model.fc.weight)
    print()
    return model


if __name__ == "__main__":
    model, _, _ = reset()
    print(model.conv1.weight)
    print(model.fc.weight)
    one_step("L2: weight decay in SGD (coupled)", lambda ps: SGD(ps, lr=0.1, weight_decay=0.1))
    one_step("L2: decoupled weight decay (SGDW)", lambda ps: mySGDW(ps, lr=0.1, weight_decay=0.1))
    one_step("L2: external weight regularization", lambda ps: torch.optim.SGD(ps, lr=0.1), regularizer_p=2)
    if SGDW is not None:
        one_step("L1?: torch_optimizer's SGDW (a constant shift)", lambda ps: SGDW(ps, lr=0.1, weight_decay=0.1))
    one_step(
        "L1: decoupled sign decay (SGDW weight_norm=1)", lambda ps: mySGDW(ps, lr=0.1, weight_decay=0.1, weight_norm=1)
    )
    one_step("L1: external", lambda ps: torch.optim.SGD(ps, lr=0.1), regularizer_p=1)
