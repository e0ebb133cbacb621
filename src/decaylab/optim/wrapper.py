"""Add a decoupled decay rule to any existing optimizer instance."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from decaylab.optim._base import _group_params, resolve_foreach
from decaylab.optim._decay import (
    ReferenceSource,
    check_group_decay,
    decay_after_update,
    decay_before_update,
    group_needs_reference,
    references_for,
    resolve_references,
)
from decaylab.optim._validation import check_l1_decay_needs_elastic_net, check_no_sparse_grads, check_optional_bool

PREFIX = "decay_"


class DecayWrapper(Optimizer):
    r"""Wrap ``optimizer`` (torch.optim.Adam, RMSprop, a third-party one...) with a decoupled rule.

    Each ``step`` is, per param group of the wrapped optimizer and for parameters with a gradient:

    .. math::
        w \leftarrow \mathrm{before}(w);\quad \text{optimizer.step()};\quad w \leftarrow \mathrm{after}(w)

    with the rule's ``before``/``after`` parts as in :class:`~decaylab.optim.SGDW` and ``s`` read
    from each group's *current* ``lr`` at every step, so LR schedulers (attached to the wrapper or
    to the wrapped optimizer) change the decay when ``scale`` is ``"lr"`` or ``"schedule"``.

    The options live in the wrapped optimizer's param groups under ``decay_weight_decay``,
    ``decay_rule``, ``decay_l1_decay`` and ``decay_scale``; a group that already has one of those
    keys keeps it, so per-group strengths are set like any other group option::

        inner = torch.optim.Adam([{"params": weights}, {"params": biases, "decay_weight_decay": 0.0}], lr=1e-3)
        opt = DecayWrapper(inner, weight_decay=0.01)

    With a closure, the closure runs first (gradients at ``w``), then ``before``, then the wrapped
    step (which may call the closure again, as LBFGS does), then ``after``. Param groups and state
    are the wrapped optimizer's own objects; ``state_dict`` holds the wrapped optimizer's state and
    the references of ``rule="toward_reference"``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        weight_decay: float = 1e-2,
        *,
        rule: str = "l2",
        l1_decay: float = 0.0,
        scale: str = "lr",
        reference: ReferenceSource = None,
        foreach: bool | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a torch.optim.Optimizer instance, got {type(optimizer).__name__}")
        if isinstance(optimizer, DecayWrapper):
            raise TypeError("optimizer: already a DecayWrapper; wrap the inner optimizer once")
        check_optional_bool("foreach", foreach)
        defaults = {
            f"{PREFIX}weight_decay": weight_decay,
            f"{PREFIX}rule": rule,
            f"{PREFIX}l1_decay": l1_decay,
            f"{PREFIX}scale": scale,
        }
        check_group_decay({**defaults, "lr": optimizer.param_groups[0].get("lr", 1.0)}, PREFIX)
        check_l1_decay_needs_elastic_net(rule, l1_decay, PREFIX)
        for group in optimizer.param_groups:
            self._check_inner_group({**defaults, **group})
        # Optimizer.__init__ is not called: the groups and state are the wrapped optimizer's.
        self.optimizer = optimizer
        self.defaults = defaults
        self.foreach = foreach
        self._references: dict[Tensor, Tensor] = {}
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()
        for group in optimizer.param_groups:
            self._adopt_group(group)
        if reference is not None:
            self.set_reference(reference)
        self._snapshot_missing_references()

    # The wrapped optimizer owns these; sharing them keeps schedulers and checkpoints consistent.
    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property  # type: ignore[override]
    def state(self) -> Any:
        return self.optimizer.state

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patch_step_function()

    def __repr__(self) -> str:
        return f"DecayWrapper({self.optimizer!r}, {self.defaults})"

    @staticmethod
    def _check_inner_group(group: dict[str, Any]) -> None:
        if "lr" not in group:
            raise ValueError("optimizer: its param groups have no 'lr'; DecayWrapper reads the lr of each group")
        check_group_decay(group, PREFIX)

    def _adopt_group(self, group: dict[str, Any]) -> None:
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group.setdefault("initial_lr", group["lr"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the wrapped optimizer (with this wrapper's decay defaults)."""
        _group_params(param_group)
        self._check_inner_group({**self.defaults, **self.optimizer.defaults, **param_group})
        self.optimizer.add_param_group(param_group)
        self._adopt_group(self.optimizer.param_groups[-1])
        self._snapshot_missing_references()

    def set_reference(self, reference: ReferenceSource = None) -> None:
        """Store the weights ``rule="toward_reference"`` decays toward (see :class:`~decaylab.optim.SGDW`)."""
        params = [p for group in self.param_groups for p in group["params"]]
        self._references.update(zip(params, resolve_references(params, reference), strict=True))

    def stored_references(self) -> list[tuple[Tensor, Tensor]]:
        """``(parameter, reference)`` pairs in param-group order, for parameters that have one."""
        return [
            (p, self._references[p]) for group in self.param_groups for p in group["params"] if p in self._references
        ]

    def _snapshot_missing_references(self) -> None:
        params = [
            p
            for group in self.param_groups
            if group_needs_reference(group, PREFIX)
            for p in group["params"]
            if p not in self._references
        ]
        self._references.update(zip(params, resolve_references(params, None), strict=True))

    def _group_references(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor] | None:
        if not group_needs_reference(group, PREFIX):
            return None
        return references_for(params, self._references.get)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def _apply_before(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            foreach = resolve_foreach(self.foreach, params)
            with torch.no_grad():
                decay_before_update(
                    group, params, self._group_references(group, params), prefix=PREFIX, foreach=foreach
                )

    def _apply_after(self, decayed: list[list[Tensor]]) -> None:
        for group, params in zip(self.param_groups, decayed, strict=True):
            with torch.no_grad():
                decay_after_update(group, params, prefix=PREFIX, foreach=resolve_foreach(self.foreach, params))

    def _check_before_step(self) -> None:
        for group in self.param_groups:
            self._check_inner_group(group)
            self._group_references(group, group["params"])
        check_no_sparse_grads(f"DecayWrapper({type(self.optimizer).__name__})", self.param_groups)

    def step(self, closure: Any = None) -> Any:
        """Decay, step the wrapped optimizer, apply the proximal part; returns the closure's loss."""
        self._check_before_step()
        applied = False
        decayed: list[list[Tensor]] = []

        def apply_before_once() -> None:
            nonlocal applied, decayed
            if not applied:
                applied = True
                decayed = [[p for p in g["params"] if p.grad is not None] for g in self.param_groups]
                self._apply_before()

        if closure is None:
            apply_before_once()
            loss = self.optimizer.step()
        else:

            def closure_then_decay() -> Any:
                result = closure()
                apply_before_once()
                return result

            loss = self.optimizer.step(closure_then_decay)
            apply_before_once()  # the wrapped optimizer ignored the closure
        self._apply_after(decayed)
        return loss

    def state_dict(self) -> dict[str, Any]:
        params = [p for group in self.param_groups for p in group["params"]]
        return {
            "optimizer": self.optimizer.state_dict(),
            "references": {i: self._references[p] for i, p in enumerate(params) if p in self._references},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or set(state_dict) != {"optimizer", "references"}:
            raise ValueError("state_dict: expected the dict returned by DecayWrapper.state_dict()")
        params = [p for group in self.param_groups for p in group["params"]]
        saved = state_dict["references"]
        restored = resolve_references([params[i] for i in saved], [saved[i] for i in saved])
        self.optimizer.load_state_dict(state_dict["optimizer"])
        for group in self.param_groups:
            self._check_inner_group(group)
        self._references = dict(zip([params[i] for i in saved], restored, strict=True))
