"""C models of one architecture as one stacked model: parameters in a ``[C, P]`` buffer, run with vmap.

Layout: every configuration's parameters, flattened and concatenated in ``named_parameters`` order,
are one row of ``flat`` (``C x P``). Each named parameter is a ``C x *shape`` view into it, so

- the forward pass is ``vmap(functional_call(template, params_c, x_c))`` over those views (the
  template is a parameter-less copy of the model on the ``meta`` device), and
- an optimizer update is a handful of elementwise kernels over the ``[C, P]`` buffer (or a range of
  its rows) with per-configuration coefficients of shape ``[C, 1]``
  (:mod:`decaylab.sandbox.batched.update`), not one kernel per parameter tensor per configuration.

Losses are computed on the stacked ``[C, B, K]`` outputs directly (:func:`stacked_loss`): the same
mean cross-entropy / squared error as :func:`decaylab.sandbox.train.data_loss`, without
``log_softmax`` over a 10-wide last dimension, which is the slowest kernel of a stacked step on CPU
(about 200 ns per row here: 1.2 ms for 64 x 64 rows, against 0.3 ms for this form, forward and backward).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from decaylab.sandbox.train import score

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
EVAL_CHUNK_ELEMENTS = 1 << 23
"""Evaluation runs this many activation elements at a time at most (32 MiB of float32 per tensor)."""


class StackedModel:
    """``C`` models with one architecture, stacked (see the module docstring).

    Built from the models themselves (their current weights become the rows of :attr:`flat`);
    :meth:`write_back` copies the rows back into such models.

    ``evaluates_stacked``: whether whole splits are best evaluated stacked (:meth:`evaluate`) or one
    model at a time. Stacked convolutions become grouped convolutions under vmap, which on CPU are
    slower than one ordinary convolution per model over a whole split (63 SimpleCNNs on digits' 450
    test images: 310 ms stacked, 147 ms one by one); for linear layers stacking wins.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        if not models:
            raise ValueError("models: expected at least one model to stack")
        first = list(models[0].named_parameters())
        self.names = [name for name, _ in first]
        self.shapes = [tuple(p.shape) for _, p in first]
        self.sizes = [p.numel() for _, p in first]
        for model in models[1:]:
            shapes = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
            if shapes != list(zip(self.names, self.shapes, strict=True)):
                raise ValueError("models: every stacked model must have the same parameter names and shapes")
        if any(True for _ in models[0].buffers()):
            raise ValueError("models: stacking models with buffers (e.g. batch norm statistics) is not supported")
        self.template = copy.deepcopy(models[0]).to("meta")
        with torch.no_grad():
            self.flat = torch.stack([self.row(model) for model in models])
        self._views()
        self._widest: int | None = None
        self.evaluates_stacked = not any(isinstance(m, CONVOLUTIONS) for m in self.template.modules())

    def _views(self) -> None:
        """Per-parameter ``C x *shape`` views of :attr:`flat`: autograd leaves sharing its memory, whose
        ``.grad`` are the same views of :attr:`grad` (backward accumulates straight into it)."""
        self.grad = torch.zeros_like(self.flat)
        grads = self.views(self.grad)
        self.params: dict[str, Tensor] = {}
        for name, view in self.views(self.flat).items():
            leaf = view.detach().requires_grad_()
            leaf.grad = grads[name]
            self.params[name] = leaf

    def views(self, rows: Tensor) -> dict[str, Tensor]:
        """``rows`` (``C x P``, laid out as :attr:`flat`) as per-parameter ``C x *shape`` views, by name."""
        count, offset, out = rows.shape[0], 0, {}
        for name, shape, size in zip(self.names, self.shapes, self.sizes, strict=True):
            out[name] = rows[:, offset : offset + size].view(count, *shape)
            offset += size
        return out

    def row(self, model: nn.Module) -> Tensor:
        """``model``'s parameters as one flat vector, in :attr:`names` order."""
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def flatten(self, tensors: Sequence[Tensor]) -> Tensor:
        """Per-parameter tensors of one configuration (e.g. optimizer state) as one flat vector."""
        return torch.cat([t.detach().reshape(-1) for t in tensors])

    def unflatten(self, row: Tensor) -> list[Tensor]:
        """A flat vector as per-parameter tensors (copies, so they own their memory)."""
        out, offset = [], 0
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            out.append(row[offset : offset + size].view(shape).clone())
            offset += size
        return out

    def __len__(self) -> int:
        return len(self.flat)

    @property
    def numel(self) -> int:
        """Parameters per configuration (``P``)."""
        return self.flat.shape[1]

    def keep(self, rows: Tensor) -> None:
        """Keep only configurations ``rows`` (an index tensor), in that order."""
        self.flat = self.flat.index_select(0, rows)
        self._views()

    def forward(self, x: Tensor, *, shared_input: bool = False, chunk_size: int | None = None) -> Tensor:
        """Every configuration's output: ``x`` is ``C x B x ...`` (one mini-batch per configuration) or,
        with ``shared_input``, ``B x ...`` given to all of them. Returns ``C x B x K``."""

        def one(params: dict[str, Tensor], inputs: Tensor) -> Tensor:
            return functional_call(self.template, params, (inputs,))

        return vmap(one, in_dims=(0, None if shared_input else 0), chunk_size=chunk_size)(self.params, x)

    def loss_and_grad(self, task: str, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(losses [C], gradients [C, P])`` of every configuration on its own mini-batch ``x[c]``, ``y[c]``.

        The gradients are :attr:`grad`, overwritten by the next call (the caller may modify them).
        Configurations do not mix: a NaN in one row leaves every other row's loss and gradient alone.
        """
        self.grad.zero_()
        losses = stacked_loss(task, self.forward(x), y)
        with warnings.catch_warnings():  # the views' strides are those of the views: nothing to fix
            warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
            losses.sum().backward(inputs=list(self.params.values()))
        return losses.detach(), self.grad

    @torch.no_grad()
    def evaluate(self, task: str, x: Tensor, y: Tensor) -> list[tuple[float, float]]:
        """``(mean data loss, accuracy or R^2)`` of every configuration on the whole split ``x``, ``y``."""
        chunk = max(1, EVAL_CHUNK_ELEMENTS // (len(x) * self.widest_activation(x[:1])))
        outputs = self.forward(x, shared_input=True, chunk_size=min(chunk, len(self.flat)))
        return stacked_scores(task, outputs, y)

    def widest_activation(self, example: Tensor) -> int:
        """The most elements per example of any module's output (measured once, on ``example``)."""
        if self._widest is None:
            sizes = [example[0].numel()]
            hooks = [
                module.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel()))
                for module in self.template.modules()
            ]
            try:
                with torch.no_grad():
                    functional_call(self.template, {k: v[0] for k, v in self.params.items()}, (example,))
            finally:
                for hook in hooks:
                    hook.remove()
            self._widest = max(sizes)
        return self._widest

    @torch.no_grad()
    def write_back(self, models: Sequence[nn.Module]) -> None:
        """Copy row ``c`` into ``models[c]``'s parameters."""
        for row, model in zip(self.flat, models, strict=True):
            offset = 0
            for p, size in zip(model.parameters(), self.sizes, strict=True):
                p.copy_(row[offset : offset + size].view_as(p))
                offset += size


def stacked_loss(task: str, outputs: Tensor, targets: Tensor) -> Tensor:
    r"""Every configuration's mean data loss: ``outputs`` is ``C x B x K``, ``targets`` ``C x B``; returns ``[C]``.

    Classification: :math:`\frac1B \sum_b (\log\sum_k e^{o_{bk}} - o_{b y_b})` (cross-entropy);
    regression: :math:`\frac1B \sum_b (o_b - y_b)^2`. Equal to
    :func:`~decaylab.sandbox.train.data_loss` on each configuration's slice (tested).
    """
    if task == "classification":
        picked = outputs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (torch.logsumexp(outputs, dim=-1) - picked).mean(dim=-1)
    return (outputs.squeeze(-1) - targets).square().mean(dim=-1)


def stacked_scores(task: str, outputs: Tensor, target: Tensor) -> list[tuple[float, float]]:
    """``(loss, metric)`` per configuration from ``C x N x K`` outputs on one split (shared ``target``)."""
    if task != "classification":  # R^2 comes from scikit-learn, one configuration at a time
        return [score(task, output, target) for output in outputs]
    losses = stacked_loss(task, outputs, target.expand(len(outputs), -1))
    accuracy = (outputs.argmax(dim=-1) == target).double().mean(dim=-1)
    return list(zip(losses.tolist(), accuracy.tolist(), strict=True))
