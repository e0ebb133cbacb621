"""The fused path: ``torch.compile`` of the optimizers' own per-tensor update, all groups in one graph.

An eager step of SGDW with momentum makes three passes over memory per tensor (decay, momentum,
update) and AdamW about six, with temporaries the size of each tensor. The fused path traces the
*same* Python code as the eager per-tensor path (the rules in :mod:`decaylab.rules` and the
updates in :mod:`decaylab.optim.functional`, called with ``foreach=False``), so no rule is written
twice; Inductor then fuses each tensor's chain of in-place ops into one loop that reads ``w``,
``g`` and the state (and ``w_ref`` for ``rule="toward_reference"``) once and writes ``w`` and the
state once, without temporaries.

How the compiled step stays valid:

* Numbers that may change between steps (``lr``, ``weight_decay``, ``l1_decay``) enter the graph
  as 0-dim float64 tensors (:attr:`FusedGroup.scalar_dtype`), filled in place before every call, so
  LR schedulers never trigger a recompile. A strength that is exactly ``0`` enters as the Python
  number ``0`` instead, which leaves its rule out of the graph, as on the eager path; whether it is
  zero is part of the layout. Values derived from them that would cost a ``pow`` per element
  inside the compiled loops (Adam's bias corrections) are computed once per step by the optimizer
  and passed as a small tensor, in the weights' opmath dtype: Inductor converts a float64 input to
  float32 inside the vector loop, once per vector.
* Everything else in a group (momentum, betas, eps, rule, scale convention, nesterov, maximize,
  initial lr, which parameters have a gradient) is the *layout*. Each layout gets its own compiled
  function with its own code object, so dynamo's per-code-object recompile limit is never shared
  between optimizers or layouts; a changed layout compiles a new function rather than evicting one.
* All fused groups of an optimizer run in one graph (one compile however many groups there are).
  A step that cannot run compiled (the first momentum step, which creates the buffers) runs
  eagerly for every group, so it never adds a layout.
* Inductor's on-disk FX graph cache (on by default; ``TORCHINDUCTOR_CACHE_DIR`` moves it) makes the
  compile of a layout seen before, in this or an earlier process, a cache hit.
"""

from __future__ import annotations

import functools
import time
import types
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from decaylab.rules._scalar import is_zero

FUSED_DEVICES = ("cpu", "cuda")

# On CPU, split a loop across threads only from 32768 elements per thread, ATen's own grain size for
# elementwise kernels (Inductor's default is 512). Below that the loop is over in about a microsecond
# and waking the other threads costs more; on a busy machine much more (a scheduler time slice).
# Dynamo's guards already check every input's size and stride, so Inductor's per-call re-check of
# each tensor (about a microsecond each) is left out.
INDUCTOR_OPTIONS = {"cpp.min_chunk_size": 32768, "size_asserts": False}

Update = Callable[..., None]


class FusedGroup(NamedTuple):
    """One param group's share of a fused step.

    ``static``: options baked into the graph; ``dynamic``: numbers fed as 0-dim tensors (filled
    in place before each call), or tensors of one or more dimensions passed as they are;
    ``tensors``: the positional tensor lists ``update`` takes (``None`` for an unused list);
    ``present``: which of the group's parameters have a gradient this step; ``scalar_dtype``: the
    dtype of those 0-dim tensors. float64 (the default) where the update derives values from them
    in the graph (``1 - lr * lam``), as the eager path does in Python; an update that only ever
    scales by each number as it is may use the weights' opmath dtype
    (:func:`~decaylab.rules._scalar.opmath_dtype`), which the eager kernels round it to anyway,
    and spare the loops a conversion per vector.
    """

    static: Mapping[str, Any]
    dynamic: Mapping[str, float]
    tensors: tuple[list[Tensor] | None, ...]
    present: tuple[bool, ...]
    scalar_dtype: torch.dtype = torch.float64


class _Compiled(NamedTuple):
    compiled: Callable[..., None]
    scalars: list[dict[str, Tensor]]  # per group: the 0-dim tensors filled before each call
    code: types.CodeType


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Tensor):  # a number given as a tensor: its value, as the eager path reads it
        return value.item()
    return value


def _layout_key(group: FusedGroup, switches: Sequence[str]) -> Hashable:
    static = tuple(group.static.items())  # the optimizer builds it in a fixed order
    try:
        hash(static)
    except TypeError:  # e.g. betas given as a list
        static = tuple((k, _freeze(v)) for k, v in static)
    zeros, given = [], []
    for name, value in group.dynamic.items():
        if isinstance(value, Tensor) and value.dim() > 0:
            given.append((name, value.shape))
        elif name in switches:
            zeros.append((name, is_zero(float(value))))
    lists = tuple(None if t is None else len(t) for t in group.tensors)
    return static, tuple(zeros), tuple(given), lists, group.present, group.scalar_dtype


def own_code(fn: types.FunctionType) -> types.FunctionType:
    """A copy of ``fn`` with a code object of its own, so dynamo caches its compiles separately."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def _make_runner(update: Update, views: tuple[dict[str, Any], ...]) -> types.FunctionType:
    def run_all_groups(tensors: list[tuple[list[Tensor] | None, ...]], scalars: list[dict[str, Tensor]]) -> None:
        for view, group_tensors, group_scalars in zip(views, tensors, scalars, strict=True):
            update({**view, **group_scalars}, *group_tensors, foreach=False)

    return own_code(run_all_groups)


class FusedStep:
    """Runs ``update(options, *tensors, foreach=False)`` for every fused group as one compiled graph.

    ``switches`` are the dynamic numbers whose zero turns a rule off (``weight_decay``,
    ``l1_decay``): a zero one is passed as the Python number 0 and is part of the layout.
    ``compile_seconds`` sums the wall time of each layout's first call (compile plus one step);
    ``layouts`` counts the compiled layouts.
    """

    def __init__(self, update: Update, *, switches: Sequence[str] = ("weight_decay", "l1_decay")) -> None:
        self._update = update
        self._switches = tuple(switches)
        self._compiled: dict[Hashable, _Compiled] = {}
        self.compile_seconds = 0.0

    @property
    def layouts(self) -> int:
        return len(self._compiled)

    def code_objects(self) -> list[types.CodeType]:
        """The code object of each compiled layout (for inspecting dynamo's cache)."""
        return [entry.code for entry in self._compiled.values()]

    def __call__(self, groups: Sequence[FusedGroup]) -> None:
        key = tuple(_layout_key(g, self._switches) for g in groups)
        entry = self._compiled.get(key)
        first = entry is None
        if entry is None:
            entry = self._build(groups)
        inputs = []
        for group, group_scalars in zip(groups, entry.scalars, strict=True):
            for name, tensor in group_scalars.items():
                tensor.fill_(float(group.dynamic[name]))
            given = {k: v for k, v in group.dynamic.items() if isinstance(v, Tensor) and v.dim() > 0}
            inputs.append({**group_scalars, **given} if given else group_scalars)
        tensors = [g.tensors for g in groups]
        if not first:
            entry.compiled(tensors, inputs)
            return
        start = time.perf_counter()
        try:
            entry.compiled(tensors, inputs)
        except Exception as error:
            raise RuntimeError(
                f"fused=True: torch.compile could not build the fused step ({type(error).__name__}: {error}); "
                "construct the optimizer with fused=False to use the eager path"
            ) from error
        self.compile_seconds += time.perf_counter() - start
        self._compiled[key] = entry

    def _build(self, groups: Sequence[FusedGroup]) -> _Compiled:
        views, scalars = [], []
        for group in groups:
            device = next(t for ts in group.tensors if ts for t in ts).device
            view = dict(group.static)
            group_scalars = {}
            for name, value in group.dynamic.items():
                if isinstance(value, Tensor) and value.dim() > 0:
                    continue  # passed to the graph as it is, every call
                if name in self._switches and is_zero(float(value)):
                    view[name] = 0.0
                else:
                    group_scalars[name] = torch.zeros((), dtype=group.scalar_dtype, device=device)
            views.append(view)
            scalars.append(group_scalars)
        runner = _make_runner(self._update, tuple(views))
        compiled = torch.compile(runner, fullgraph=True, dynamic=False, options=INDUCTOR_OPTIONS)
        return _Compiled(compiled, scalars, runner.__code__)


@functools.cache
def _compile_supported() -> bool:
    return torch._dynamo.is_dynamo_supported()


def check_fusable_params(params: Sequence[Tensor], owner: str = "fused=True") -> None:
    """Raise TypeError/ValueError if a parameter cannot take the fused path (complex, sparse, other devices).

    Re-checked every step, so it reads three cheap attributes per tensor (layouts are singletons)
    and looks closer only at one that fails them: a set of ``(dtype, layout, device)`` triples,
    which hashes dtypes and builds a device object per tensor, took 2.5x as long.
    """
    if not _compile_supported():
        raise RuntimeError(f"{owner} needs torch.compile, which this Python/platform does not support; use fused=False")
    for p in params:
        if not (p.dtype.is_floating_point and p.layout is torch.strided and (p.is_cpu or p.is_cuda)):
            _raise_unfusable(p, owner)


def _raise_unfusable(p: Tensor, owner: str) -> None:
    if not p.dtype.is_floating_point:
        raise TypeError(f"{owner} supports real floating-point parameters, got dtype {p.dtype}; use fused=False")
    if p.layout != torch.strided:
        raise TypeError(f"{owner} supports dense (strided) parameters, got layout {p.layout}; use fused=False")
    raise ValueError(
        f"{owner} supports parameters on {' or '.join(FUSED_DEVICES)}, got one on {p.device}; use fused=False"
    )
