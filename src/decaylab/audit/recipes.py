"""How to build optimizers that ``cls(params, lr=..., weight_decay=...)`` cannot: a small table.

Most optimizers need nothing here. The rest fall into a few patterns, each a field of
:class:`Recipe`:

* wrappers of an optimizer *instance* (Lookahead, DecayWrapper, ...): ``wraps="instance"``; the
  probe builds ``base(params, lr=...)`` first. ``strength_on`` says who gets ``weight_decay``: the
  wrapper itself (``"self"``: DecayWrapper, ScheduleFreeWrapper) or the base (``"base"``: wrappers
  without a decay of their own, so the row shows how wrapping changes the base's decay);
* wrappers of an optimizer *class* whose extra keyword arguments go to the base (SAM-like):
  ``wraps="class"``, usually with ``closure=True``;
* optimizers whose ``step`` needs a closure (LBFGS, SAM-like, AliG) or Hessian-vector products
  (``create_graph=True``: the probe's loss then has a known constant Hessian);
* optimizers built from a model rather than parameters (``model="model"``), or whose param groups
  need extra keys (``group_options``, e.g. Muon's ``use_muon``);
* required hyper-parameters (``kwargs``) and optimizers that cannot be probed at all (``reason``).

Keys are ``"<top-level package>.<ClassName>"`` (``"torch.LBFGS"``, ``"pytorch_optimizer.SAM"``),
so a class is found whatever module path it was imported from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """Construction and stepping instructions for one optimizer class (see the module docstring).

    The mappings are never modified; they are plain dicts so that recipes pickle (worker processes).
    """

    kwargs: Mapping[str, Any] = field(default_factory=dict)
    wraps: str | None = None
    base: str = "torch.optim.AdamW"
    base_arg: str = "base_optimizer"
    strength_on: str = "self"
    strength: str | None = None
    """Constructor keyword of the decay strength when it is not ``weight_decay``."""
    closure: bool = False
    create_graph: bool = False
    model: str | None = None
    """Keyword (or ``"*"`` for the first positional argument) that receives a module holding the params."""
    params_too: bool = True
    """With ``model``: whether the params are passed as well."""
    group_options: Mapping[str, Any] = field(default_factory=dict)
    train_mode: bool = False
    """Call ``optimizer.train()`` after construction (schedule-free wrappers refuse to step otherwise)."""
    reason: str | None = None
    note: str = ""

    def describe(self) -> str:
        """A short note for the report: the base optimizer and anything non-default the probe did."""
        parts = []
        if self.wraps is not None:
            on = "the wrapper" if self.strength_on == "self" else f"the base {self.base}"
            parts.append(f"wraps {self.base}; weight_decay goes to {on}")
        if self.strength:
            parts.append(f"strength argument: {self.strength}")
        if self.kwargs:
            parts.append(", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()))
        if self.group_options:
            parts.append("param group: " + ", ".join(f"{k}={v!r}" for k, v in self.group_options.items()))
        if self.closure:
            parts.append("stepped with a closure")
        if self.create_graph:
            parts.append("gradients with create_graph=True")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


DEFAULT = Recipe()

_LOOKAHEAD = Recipe(wraps="instance", strength_on="base")
_SAM = Recipe(wraps="class", closure=True)
_HESSIAN = Recipe(create_graph=True)
_MUON = Recipe(group_options={"use_muon": True}, note="Muon branch (use_muon=True)")

RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {
        # torch.optim
        "torch.LBFGS": Recipe(closure=True),
        # torch_optimizer 0.3.0
        "torch_optimizer.Lookahead": _LOOKAHEAD,
        "torch_optimizer.Adahessian": _HESSIAN,
        # pytorch_optimizer 4.x
        "pytorch_optimizer.Lookahead": _LOOKAHEAD,
        "pytorch_optimizer.OrthoGrad": _LOOKAHEAD,
        "pytorch_optimizer.TRAC": _LOOKAHEAD,
        "pytorch_optimizer.Magma": _LOOKAHEAD,
        "pytorch_optimizer.PCGrad": _LOOKAHEAD,
        "pytorch_optimizer.ScheduleFreeWrapper": Recipe(
            wraps="instance", base="torch.optim.SGD", strength_on="self", train_mode=True, note="base without decay"
        ),
        "pytorch_optimizer.SafeFP16Optimizer": Recipe(
            reason="a loss-scaling wrapper for float16 training without param_groups of its own and without a "
            "weight_decay (the wrapped optimizer's decay applies)"
        ),
        "pytorch_optimizer.SAM": _SAM,
        "pytorch_optimizer.FriendlySAM": _SAM,
        "pytorch_optimizer.LookSAM": _SAM,
        "pytorch_optimizer.WSAM": Recipe(wraps="class", closure=True, model="model"),
        "pytorch_optimizer.GSAM": Recipe(
            reason="needs a model, an rho scheduler and a loss function with data fed through set_closure(); "
            "it has no weight_decay of its own (its base optimizer's decay applies)"
        ),
        "pytorch_optimizer.BSAM": Recipe(kwargs={"num_data": 1000}, closure=True),
        "pytorch_optimizer.AdaHessian": _HESSIAN,
        "pytorch_optimizer.SophiaH": _HESSIAN,
        "pytorch_optimizer.AliG": Recipe(closure=True),
        "pytorch_optimizer.Ranger21": Recipe(kwargs={"num_iterations": 1000}),
        "pytorch_optimizer.AdamMini": Recipe(model="model", params_too=False),
        "pytorch_optimizer.LOMO": Recipe(
            reason="updates the weights inside the backward pass (fused_backward(loss, lr)); step() is not implemented"
        ),
        "pytorch_optimizer.AdaLOMO": Recipe(
            reason="updates the weights inside the backward pass (fused_backward(loss, lr)); step() is not implemented"
        ),
        "pytorch_optimizer.Muon": _MUON,
        "pytorch_optimizer.AdaMuon": _MUON,
        "pytorch_optimizer.AdaGO": _MUON,
        "pytorch_optimizer.MuonClip": _MUON,
        "pytorch_optimizer.NorMuon": _MUON,
        "pytorch_optimizer.DistributedMuon": _MUON,
        "pytorch_optimizer.Amos": Recipe(strength="extra_l2"),
        # decaylab
        "decaylab.DecayWrapper": Recipe(wraps="instance", base="torch.optim.Adam", strength_on="self"),
    }
)


def recipe_key(cls: type) -> str:
    """``"<top-level package>.<ClassName>"``."""
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


def recipe_for(cls: type) -> Recipe:
    """The recipe of ``cls`` (the default one when the table has none)."""
    return RECIPES.get(recipe_key(cls), DEFAULT)
