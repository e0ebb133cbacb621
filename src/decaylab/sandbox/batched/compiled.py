"""A stacked group's forward and backward as one compiled function (``compare --executor batched --compile``).

:meth:`~decaylab.sandbox.batched.stacked.StackedModel.loss_and_grad` runs eagerly: vmap's batching
rules and autograd dispatch one op at a time, and for digits' small models that dispatch costs as
much as the arithmetic (64 stacked 64-wide MLPs: about 2-3 ms a step, of which the batched matrix
products are 1). Here the same computation, ``vmap(grad_and_value(loss of one configuration))``
over the ``[C, P]`` stack, is compiled by ``torch.compile``: Inductor calls the matrix-product
library for the products and fuses everything around them (bias, ReLU, the loss and its gradient,
the copy into the flat ``[C, P]`` gradient) into a few loops. The per-configuration loss is
:func:`~decaylab.sandbox.batched.stacked.stacked_loss` of one row, so the numbers are the eager
path's up to float rounding (tested on a step: losses to 1e-6, gradients to 1e-5 relative; whole
studies to the local executor's 1e-5).

A compile costs seconds: the first in a process 4-10 s on a 2-core CPU (most of it loading
Inductor), later ones about a second with Inductor's on-disk cache warm. So it is an option, for
studies whose steps take much longer than that. It is compiled for one shape, the first it is
called with: the group's ``C`` configurations and a mini-batch of ``B`` examples; another shape
(an epoch's last, shorter mini-batch) runs eagerly rather than compile again. Inductor builds its
loops for the torch thread count at compile time, so compile and run under the same count (the
executor does). A group that loses a diverged run builds a new one for the smaller stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import functional_call, grad_and_value, vmap

from decaylab.optim.fused import INDUCTOR_OPTIONS, own_code
from decaylab.sandbox.batched.stacked import StackedModel, stacked_loss

Gradients = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def stacked_gradients_function(stacked: StackedModel, task: str) -> Gradients:
    """``f(flat, x, y) -> (losses [C], gradients [C, P])`` for ``stacked``'s architecture (not compiled):
    ``flat`` is ``[C, P]``, ``x`` and ``y`` hold one mini-batch per configuration (``C x B x ...``)."""
    template, names, views = stacked.template, stacked.names, stacked.views

    def loss_of_one(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        output = functional_call(template, params, (x,))
        return stacked_loss(task, output.unsqueeze(0), y.unsqueeze(0))[0]

    per_configuration = vmap(grad_and_value(loss_of_one))

    def stacked_gradients(flat: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        grads, losses = per_configuration(views(flat), x, y)
        return losses, torch.cat([grads[name].reshape(flat.shape[0], -1) for name in names], dim=1)

    return stacked_gradients


class CompiledGradients:
    """:meth:`StackedModel.loss_and_grad` for one ``stacked`` model, compiled for the first shape it is given.

    Call :meth:`accepts` first: for any other shape, or once ``stacked`` has dropped rows (its
    :attr:`~StackedModel.flat` is a new tensor), use the eager path. ``compile_seconds``: the first
    call's wall time (the compile, plus one step), ``None`` before it.
    """

    def __init__(self, stacked: StackedModel, task: str) -> None:
        self._stacked = stacked
        self._flat: Tensor | None = None  # the stack and the (x, y) shapes it was compiled for
        self._shapes: tuple[torch.Size, torch.Size] | None = None
        function = own_code(stacked_gradients_function(stacked, task))  # its own dynamo cache entry
        self._compiled = torch.compile(function, fullgraph=True, dynamic=False, options=INDUCTOR_OPTIONS)
        self.compile_seconds: float | None = None

    def accepts(self, x: Tensor, y: Tensor) -> bool:
        """Whether a call with these mini-batches runs compiled without compiling again."""
        if self._flat is None:
            return True
        return self._flat is self._stacked.flat and (x.shape, y.shape) == self._shapes

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(losses [C], gradients [C, P])``, as :meth:`StackedModel.loss_and_grad` (a new gradient tensor each call)."""
        if not self.accepts(x, y):
            raise ValueError(
                f"compiled for mini-batches of shape {tuple(self._shapes[0]) if self._shapes else None} "
                f"on this stack; got {tuple(x.shape)} (use the eager StackedModel.loss_and_grad)"
            )
        flat = self._stacked.flat
        if self._flat is not None:
            return self._compiled(flat, x, y)
        start = time.perf_counter()
        try:
            result = self._compiled(flat, x, y)
        except torch._dynamo.exc.TorchDynamoException as error:  # tracing or Inductor (e.g. no C++ compiler)
            raise RuntimeError(
                f"compile=True: torch.compile could not build the stacked forward and backward "
                f"({type(error).__name__}: {error}); run without --compile (compile=False)"
            ) from error
        self.compile_seconds = time.perf_counter() - start
        self._flat, self._shapes = flat, (x.shape, y.shape)
        return result
