"""Build one optimizer for one probe: which constructor argument is the strength, the momentum, the
implementation path, and who receives each (the optimizer itself, or the base of a wrapper).

Only constructor *signatures* are read here (to know what can be passed); what the optimizer does
with the values is left to the experiments.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from decaylab.audit.recipes import Recipe, recipe_for

MISSING: Any = inspect.Parameter.empty
PATH_FLAGS: tuple[str, ...] = ("foreach", "fused")


@dataclass(frozen=True)
class Target:
    """An optimizer to audit: a class, fixed constructor kwargs, and its recipe."""

    name: str
    cls: type
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    recipe: Recipe = field(default_factory=Recipe)

    @classmethod
    def of(cls, factory: Any, name: str | None = None) -> Target:
        """From a class or a ``functools.partial`` of one (its keywords become fixed kwargs)."""
        kwargs: dict[str, Any] = {}
        func = factory
        while hasattr(func, "func") and hasattr(func, "keywords"):  # functools.partial
            if getattr(func, "args", ()):
                raise ValueError("optimizer: a functools.partial may fix keyword arguments only, not positional ones")
            kwargs = {**func.keywords, **kwargs}
            func = func.func
        if not (inspect.isclass(func) and issubclass(func, torch.optim.Optimizer)):
            raise TypeError(
                f"optimizer: expected a torch.optim.Optimizer subclass (or a partial of one), got {factory!r}"
            )
        if name is None:
            name = public_name(func)
            if kwargs:
                name += "(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"
        return cls(name=name, cls=func, kwargs=kwargs, recipe=recipe_for(func))


def public_name(cls: type) -> str:
    """The shortest module path that exports ``cls``: ``torch.optim.sgd.SGD`` -> ``torch.optim.SGD``."""
    parts = cls.__module__.split(".")
    for i in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is not None and getattr(module, cls.__name__, None) is cls:
            return f"{'.'.join(parts[:i])}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class Signature:
    """Keyword names a constructor accepts, their defaults, and whether it takes ``**kwargs``."""

    defaults: Mapping[str, Any]
    var_keyword: bool

    @classmethod
    def of(cls, func: Callable[..., Any]) -> Signature:
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            return cls({}, True)
        defaults = {
            name: p.default
            for name, p in params.items()
            if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        }
        var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        return cls(defaults, var_keyword)

    def has(self, name: str) -> bool:
        return name in self.defaults


def import_path(path: str) -> Any:
    """``"torch.optim.AdamW"`` -> the object."""
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Knobs:
    """What the probe can turn, and on which object (``"self"`` or ``"base"``)."""

    strength: str | None
    strength_target: str = "self"
    strength_default: Any = MISSING
    strength_via_kwargs: bool = False
    """True when the strength is not a named argument and only ``**kwargs`` would take it."""
    momentum: str | None = None
    momentum_target: str = "self"
    momentum_default: Any = MISSING
    paths: tuple[str, ...] = ()


def find_knobs(target: Target) -> Knobs:
    """Read the constructor signatures of ``target`` (and of its recipe's base optimizer)."""
    recipe = target.recipe
    own = Signature.of(target.cls.__init__)
    base = Signature.of(import_path(recipe.base).__init__) if recipe.wraps else None
    fixed = set(target.kwargs) | set(recipe.kwargs)

    strength_name = recipe.strength or "weight_decay"
    strength_target = "self"
    strength_sig = own
    if recipe.wraps == "instance" and recipe.strength_on == "base":
        strength_target, strength_sig = "base", base
    elif recipe.wraps == "class" and not own.has(strength_name):
        strength_sig = base
    assert strength_sig is not None
    strength: str | None = strength_name
    via_kwargs = False
    if strength_name in fixed:
        strength = None
    elif not strength_sig.has(strength_name):
        if strength_sig.var_keyword and recipe.wraps is None:
            via_kwargs = True
        else:
            strength = None
    strength_default = strength_sig.defaults.get(strength_name, MISSING)

    momentum_sig, momentum_target = own, "self"
    if not (own.has("momentum") or own.has("betas")) and base is not None:
        momentum_sig = base
        momentum_target = "base" if recipe.wraps == "instance" else "self"
    momentum, momentum_default = None, MISSING
    if momentum_sig.has("momentum") and "momentum" not in fixed:
        default = momentum_sig.defaults["momentum"]
        if isinstance(default, int | float) and not isinstance(default, bool):
            momentum, momentum_default = "momentum", default
    if momentum is None and momentum_sig.has("betas") and "betas" not in fixed:
        default = momentum_sig.defaults["betas"]
        if isinstance(default, tuple | list) and len(default) >= 2:
            momentum, momentum_default = "betas", tuple(default)

    paths = () if recipe.wraps else tuple(f for f in PATH_FLAGS if own.has(f) and f not in fixed)
    return Knobs(
        strength=strength,
        strength_target=strength_target,
        strength_default=strength_default,
        strength_via_kwargs=via_kwargs,
        momentum=momentum,
        momentum_target=momentum_target,
        momentum_default=momentum_default,
        paths=paths,
    )


def momentum_value(knobs: Knobs, toggled: bool, on: float) -> Any:
    """The value passed for the momentum knob, or MISSING to leave the default.

    The base probes leave the optimizer's default. Toggled: ``momentum`` becomes ``on`` when its
    default is 0 and 0 otherwise; ``betas`` keep their default except ``beta1``, flipped the same way.
    """
    if not toggled or knobs.momentum is None:
        return MISSING
    if knobs.momentum == "momentum":
        return 0.0 if knobs.momentum_default else on
    betas = knobs.momentum_default
    return (0.0 if betas[0] else on, *betas[1:])


def momentum_words(knobs: Knobs) -> str:
    """``"momentum 0.9 → 0"``-style description of the toggled probe."""
    if knobs.momentum == "momentum":
        return "momentum off" if knobs.momentum_default else "momentum on"
    return "beta1 → 0" if knobs.momentum_default[0] else "beta1 on"


class ProbeModule(nn.Module):
    """Holds the probe's parameters for optimizers built from a model."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        super().__init__()
        for i, p in enumerate(params):
            self.register_parameter(f"weight{i}", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never called
        return x


def build_optimizer(
    target: Target,
    knobs: Knobs,
    params: list[nn.Parameter],
    *,
    lr: float,
    strength: float | None,
    momentum: Any,
    path: Mapping[str, Any],
) -> torch.optim.Optimizer:
    """Construct ``target`` over ``params`` with the given lr, strength (None: default) and momentum."""
    recipe = target.recipe
    own: dict[str, Any] = {**recipe.kwargs, **target.kwargs, **path}
    base: dict[str, Any] = {}
    (base if recipe.wraps == "instance" else own)["lr"] = lr
    if strength is not None and knobs.strength is not None:
        (base if knobs.strength_target == "base" else own)[knobs.strength] = strength
    if momentum is not MISSING and knobs.momentum is not None:
        (base if knobs.momentum_target == "base" else own)[knobs.momentum] = momentum
    groups: list[Any] = [{"params": params, **recipe.group_options}] if recipe.group_options else list(params)

    if recipe.wraps == "instance":
        optimizer = target.cls(import_path(recipe.base)(groups, **base), **own)
    else:
        if recipe.wraps == "class":
            own[recipe.base_arg] = import_path(recipe.base)
        if recipe.model is not None:
            if recipe.params_too:
                own["params"] = groups
            own[recipe.model] = ProbeModule(params)
            optimizer = target.cls(**own)
        else:
            optimizer = target.cls(groups, **own)
    if recipe.train_mode:
        optimizer.train()
    return optimizer
