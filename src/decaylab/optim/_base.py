"""Shared machinery for decaylab's optimizers.

``ValidatedOptimizer`` checks every hyper-parameter with an error that names it: at construction,
in ``add_param_group`` and again at the start of every ``step`` (groups can be edited in between),
so a bad value never leaves a step half-applied.

``DecoupledOptimizer`` adds per-group decoupled decay options and the reference weights used by
``rule="toward_reference"``, kept in ``state[p]["reference"]`` so they travel with ``state_dict``.

A subclass describes one group's update once (``_group_tensors`` gathers the tensors and state,
``_update`` is the math); ``step`` runs it eagerly (per-tensor or foreach) or, for groups with
``fused=True``, through :class:`~decaylab.optim.fused.FusedStep`, which compiles that same
``_update``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices

from decaylab.optim._decay import (
    ReferenceSource,
    check_group_decay,
    group_needs_reference,
    references_for,
    resolve_references,
)
from decaylab.optim._validation import check_bool, check_no_sparse_grads, check_optional_bool
from decaylab.optim.fused import FusedGroup, FusedStep, check_fusable_params

TensorLists = tuple[list[Tensor] | None, ...]


def _materialize_params(params: Any) -> list[Any]:
    if isinstance(params, Tensor):
        raise TypeError(
            "params: expected an iterable of Tensors or of param-group dicts (e.g. model.parameters()), "
            "got a single Tensor; wrap it in a list"
        )
    try:
        items = list(params)
    except TypeError:
        raise TypeError(
            f"params: expected an iterable of Tensors or of param-group dicts, got {type(params).__name__}"
        ) from None
    if not items:
        raise ValueError("params: got an empty parameter list; pass model.parameters() or a list of param-group dicts")
    return items


def _group_params(param_group: Any) -> list[Tensor]:
    if not isinstance(param_group, dict):
        raise TypeError(f"param group: expected a dict with a 'params' key, got {type(param_group).__name__}")
    if "params" not in param_group:
        raise ValueError("param group: missing the 'params' key")
    raw = param_group["params"]
    params = [raw] if isinstance(raw, Tensor) else list(raw)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"params: expected Tensors, got {type(p).__name__}")
        if not p.is_leaf:
            raise ValueError(
                "params: can't optimize a non-leaf Tensor (one computed from others); pass model parameters"
            )
        if not (p.is_floating_point() or p.is_complex()):
            raise TypeError(f"params: expected floating-point tensors, got dtype {p.dtype}")
    return params


def resolve_foreach(foreach: bool | None, params: Iterable[Tensor]) -> bool:
    """``foreach=None`` picks the multi-tensor path on devices with foreach kernels (CUDA), like torch.optim."""
    if foreach is not None:
        return foreach
    supported = _get_foreach_kernels_supported_devices()
    params = list(params)
    return bool(params) and all(p.device.type in supported for p in params)


def resolve_fused(fused: bool | None) -> bool:
    """``fused=None`` means off: compiling costs seconds to a minute on first use and needs a C++
    compiler on CPU, so, as in torch.optim, the fused path is used only when asked for."""
    return bool(fused)


def check_fused_flags(group: dict[str, Any]) -> None:
    """``fused`` is True/False/None, never together with ``foreach=True``, and only for parameters it supports."""
    fused = group.get("fused")
    check_optional_bool("fused", fused)
    if fused and group.get("foreach"):
        raise ValueError(
            "fused=True and foreach=True are mutually exclusive (the fused step replaces the foreach kernels); "
            "pass only one of them"
        )
    if fused:
        check_fusable_params(group.get("params", []))


class ValidatedOptimizer(Optimizer):
    """A torch.optim.Optimizer whose groups are checked by :meth:`_check_group` before any use.

    Subclasses implement :meth:`_group_tensors` and :meth:`_update` (and :meth:`_fusable` /
    :meth:`_finish` where they keep state outside ``_update``); :meth:`step` does the rest.
    """

    # Numbers in a group that may change every step (LR schedulers): 0-dim tensors on the fused path.
    _dynamic_keys: ClassVar[tuple[str, ...]] = ("lr", "weight_decay")
    # Options that are read by ``_update`` besides ``defaults`` (baked into the fused graph).
    _extra_static_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        super().__init__(_materialize_params(params), defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError/TypeError naming the key if ``group`` holds an invalid value."""
        check_optional_bool("foreach", group.get("foreach"))
        check_fused_flags(group)
        check_bool("maximize", group.get("maximize", False))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        params = _group_params(param_group)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(
                "params: a parameter appears in more than one param group; each parameter may belong to one group only"
            )
        if len({id(p) for p in params}) != len(params):
            raise ValueError("params: a parameter appears twice in the same param group")
        self._check_group({**self.defaults, **param_group, "params": params})
        param_group["params"] = params
        super().add_param_group(param_group)

    def _check_before_step(self) -> None:
        """Re-check every group (they may have been edited) and reject sparse gradients."""
        for group in self.param_groups:
            self._check_group(group)
        check_no_sparse_grads(type(self).__name__, self.param_groups)

    @staticmethod
    def _params_with_grad(group: dict[str, Any]) -> tuple[list[Tensor], list[Tensor]]:
        params = [p for p in group["params"] if p.grad is not None]
        return params, [p.grad for p in params]

    # --- one group's update, shared by the eager and the fused path -------------------------------

    def _group_tensors(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> TensorLists:
        """The tensor lists ``_update`` takes after ``group`` (creating state on first use)."""
        raise NotImplementedError

    @staticmethod
    def _update(group: dict[str, Any], *tensors: list[Tensor] | None, foreach: bool) -> None:
        """One group's update, in place. On the fused path ``group``'s dynamic numbers are 0-dim tensors."""
        raise NotImplementedError

    def _fusable(self, group: dict[str, Any], tensors: TensorLists) -> bool:
        """Whether this step of ``group`` can run compiled (e.g. not the first momentum step)."""
        return True

    def _finish(self, group: dict[str, Any], params: list[Tensor], tensors: TensorLists) -> None:
        """Store state that ``_update`` created (e.g. new momentum buffers)."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update; ``closure`` (re-evaluates the loss, returns it) is optional."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_before_step()
        fused: list[tuple[dict[str, Any], list[Tensor], TensorLists]] = []
        eager: list[tuple[dict[str, Any], list[Tensor], TensorLists]] = []
        for group in self.param_groups:
            params, grads = self._params_with_grad(group)
            if not params:
                continue
            tensors = self._group_tensors(group, params, grads)
            (fused if resolve_fused(group.get("fused")) else eager).append((group, params, tensors))
        if not all(self._fusable(group, tensors) for group, _, tensors in fused):
            eager, fused = fused + eager, []  # e.g. the first momentum step: all eager, so one layout compiles
        if fused:  # first: a failing compile raises before any weight has moved
            self._fused_step()([self._fused_group(group, tensors) for group, _, tensors in fused])
        for group, params, tensors in eager:
            self._update(group, *tensors, foreach=resolve_foreach(group["foreach"], params))
        for group, params, tensors in fused + eager:
            self._finish(group, params, tensors)
        return loss

    def _fused_step(self) -> FusedStep:
        engine = self.__dict__.get("_fused_engine")
        if engine is None:  # created lazily: not part of the pickled / deep-copied state
            engine = self.__dict__["_fused_engine"] = FusedStep(type(self)._update)
        return engine

    def _fused_group(self, group: dict[str, Any], tensors: TensorLists) -> FusedGroup:
        skip = {"params", "foreach", "fused", *self._dynamic_keys}
        static_keys = [k for k in self.defaults if k not in skip] + list(self._extra_static_keys)  # a fixed order
        return FusedGroup(
            static={k: group[k] for k in static_keys if k in group},  # torch adds e.g. "differentiable" to defaults
            dynamic={k: group[k] for k in self._dynamic_keys},
            tensors=tensors,
            present=tuple(p.grad is not None for p in group["params"]),
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # optimizers pickled before ``fused`` existed
            group.setdefault("fused", None)
        self.defaults.setdefault("fused", None)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load ``state_dict``; each group keeps *this* optimizer's ``foreach`` and ``fused``.

        Those two say how a step runs, not what it computes, so a checkpoint moves freely between
        fused and eager optimizers (torch.optim would take them from the checkpoint).
        """
        flags = [{k: group.get(k) for k in ("foreach", "fused")} for group in self.param_groups]
        super().load_state_dict(state_dict)
        for group, kept in zip(self.param_groups, flags, strict=True):
            group.update(kept)


class DecoupledOptimizer(ValidatedOptimizer):
    """Adds decoupled decay options (``weight_decay``, ``weight_norm``, ``rule``, ``l1_decay``,
    ``scale``) per group and the stored references for ``rule="toward_reference"``."""

    _dynamic_keys: ClassVar[tuple[str, ...]] = ("lr", "weight_decay", "l1_decay")
    _extra_static_keys: ClassVar[tuple[str, ...]] = ("initial_lr",)

    def __init__(self, params: Any, defaults: dict[str, Any], reference: ReferenceSource = None) -> None:
        self._references_ready = False
        super().__init__(params, defaults)
        if reference is not None:
            self.set_reference(reference)
        else:
            self._snapshot_missing_references()
        self._references_ready = True

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_references_ready", True)  # not in torch's pickled state

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_group_decay(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        param_group.setdefault("initial_lr", param_group["lr"])
        if self._references_ready:
            self._snapshot_missing_references()

    def set_reference(self, reference: ReferenceSource = None) -> None:
        """Store the weights that ``rule="toward_reference"`` decays toward.

        ``reference`` is ``None`` (snapshot the current weights of every parameter), a sequence of
        tensors with one entry per parameter in param-group order, or a mapping parameter -> tensor.
        Every shape is checked before anything is stored.
        """
        params = [p for group in self.param_groups for p in group["params"]]
        for p, ref in zip(params, resolve_references(params, reference), strict=True):
            self.state[p]["reference"] = ref

    def stored_references(self) -> list[tuple[Tensor, Tensor]]:
        """``(parameter, reference)`` pairs in param-group order, for parameters that have one."""
        return [
            (p, self.state[p]["reference"])
            for group in self.param_groups
            for p in group["params"]
            if "reference" in self.state.get(p, {})
        ]

    def _snapshot_missing_references(self) -> None:
        params = [
            p
            for group in self.param_groups
            if group_needs_reference(group)
            for p in group["params"]
            if "reference" not in self.state.get(p, {})
        ]
        for p, ref in zip(params, resolve_references(params, None), strict=True):
            self.state[p]["reference"] = ref

    def _references(self, group: dict[str, Any], params: list[Tensor]) -> list[Tensor] | None:
        if not group_needs_reference(group):
            return None
        return references_for(params, lambda p: self.state.get(p, {}).get("reference"))

    def _check_before_step(self) -> None:
        super()._check_before_step()
        for group in self.param_groups:
            self._references(group, group["params"])


def zeros_state_like(p: Tensor) -> Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)
