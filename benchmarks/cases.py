"""What the benchmark times: decaylab's steps under every rule and their third-party equivalents.

Three families, each measured on its own fresh parameters and gradients:

* ``sgd``: SGD with momentum 0.9. decaylab's ``SGD`` (coupled L2) and ``SGDW`` under every
  decoupled rule; torch.optim.SGD (momentum, coupled weight decay: the same traffic),
  torch_optimizer.SGDW, pytorch_optimizer.SGDW.
* ``adamw``: decaylab's ``AdamW`` under every rule; torch.optim.AdamW (pytorch_optimizer.AdamW
  *is* torch.optim.AdamW in 4.1.0, so it is not timed twice).
* ``penalty``: ``WeightRegularization.add_to_grad`` (p = 2 and p = 1) against autograd's
  forward + backward of the same penalty, the thing the gradient mode replaces.

torch.optim has L2 decay only: coupled in SGD (SGDW's decoupled L2 is judged against it: the same
memory traffic, not the same update) and decoupled in AdamW. For every other rule its fastest
equivalent is its fused step with the rule applied around it as eager passes over the weights,
which is what a user of torch.optim writes by hand (and what decaylab's ``DecayWrapper`` does: it
is used here for those passes, one row per pass implementation, loop and foreach). A decaylab row
is compared with the torch rows that serve its rule (``serves``) and, as a harder bar, with
torch's plain step (its *base*: less work for every rule but L2).

Each decaylab configuration is one optimizer whose ``foreach`` / ``fused`` flags are switched
before each timing block: the three implementations run on the same state, which keeps memory
at one state per configuration (a step's time does not depend on which object holds the state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchmarks.bandwidth import Traffic
from decaylab import RULES, SGD, SGDW, AdamW, DecayWrapper, WeightRegularization

IMPLEMENTATIONS = {"loop": {"foreach": False, "fused": False}, "foreach": {"foreach": True, "fused": False}}
IMPLEMENTATIONS["fused"] = {"foreach": False, "fused": True}

SGD_TRAFFIC = Traffic(reads=3, writes=2)  # w, g, buf -> w, buf
ADAMW_TRAFFIC = Traffic(reads=4, writes=3)  # w, g, m, v -> w, m, v
PENALTY_TRAFFIC = Traffic(reads=2, writes=1)  # w, g -> g
REFERENCE_READ = Traffic(reads=1, writes=0)  # rule="toward_reference" also reads w_ref

SGD_OPTIONS = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}
ADAMW_OPTIONS = {"lr": 1e-3, "weight_decay": 1e-2}
PENALTY_STRENGTH = 5e-4


def _plus(a: Traffic, b: Traffic) -> Traffic:
    return Traffic(a.reads + b.reads, a.writes + b.writes)


class Workspace:
    """Parameters with fixed gradients (``.grad`` set once), held by a module for the penalty.

    Values are drawn on the CPU from ``seed`` and moved to ``device``: the same on every device."""

    def __init__(self, shapes: list[tuple[int, ...]], seed: int = 0, device: torch.device | str = "cpu") -> None:
        gen = torch.Generator().manual_seed(seed)
        self.params = [nn.Parameter((torch.randn(s, generator=gen) * 0.05).to(device)) for s in shapes]
        for p in self.params:
            p.grad = (torch.randn(p.shape, generator=gen) * 1e-3).to(device)
        self.module = nn.ParameterList(self.params)
        self.numel = sum(p.numel() for p in self.params)


@dataclass
class Runner:
    step: Callable[[], Any]
    prepare: Callable[[], None] = lambda: None  # before each timing block (switches decaylab's flags)
    state_bytes: Callable[[], int] = lambda: 0
    compile_seconds: Callable[[], float | None] = lambda: None


@dataclass
class Candidate:
    family: str
    library: str
    optimizer: str
    rule: str
    impl: str
    traffic: Traffic
    build: Callable[[], Runner]
    note: str = ""
    serves: tuple[str, ...] = ()  # a torch row: the decaylab rules whose update it computes
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = f"{self.library}:{self.optimizer}:{self.rule}:{self.impl}"


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(
        t.numel() * t.element_size() for state in opt.state.values() for t in state.values() if torch.is_tensor(t)
    )


def _compile_seconds(opt: torch.optim.Optimizer) -> float | None:
    engine = opt.__dict__.get("_fused_engine")
    return None if engine is None else engine.compile_seconds


def _shared(factory: Callable[[], torch.optim.Optimizer]) -> Callable[[], torch.optim.Optimizer]:
    """One optimizer for all implementations of a configuration, built on first use."""
    made: list[torch.optim.Optimizer] = []

    def get() -> torch.optim.Optimizer:
        if not made:
            made.append(factory())
        return made[0]

    return get


def _decaylab_runner(get: Callable[[], torch.optim.Optimizer], impl: str) -> Callable[[], Runner]:
    def build() -> Runner:
        opt = get()

        def prepare() -> None:
            for group in opt.param_groups:
                group.update(IMPLEMENTATIONS[impl])

        return Runner(opt.step, prepare, lambda: _state_bytes(opt), lambda: _compile_seconds(opt))

    return build


def _torch_runner(factory: Callable[[], torch.optim.Optimizer]) -> Callable[[], Runner]:
    def build() -> Runner:
        opt = factory()
        return Runner(opt.step, state_bytes=lambda: _state_bytes(opt))

    return build


def _decaylab_family(
    family: str, name: str, factory: Callable[[str], torch.optim.Optimizer], rules: list[str], base: Traffic
) -> list[Candidate]:
    out = []
    for rule in rules:
        get = _shared(lambda r=rule: factory(r))
        traffic = _plus(base, REFERENCE_READ) if rule == "toward_reference" else base
        for impl in IMPLEMENTATIONS:
            out.append(Candidate(family, "decaylab", name, rule, impl, traffic, _decaylab_runner(get, impl)))
    return out


def _decoupled_options(rule: str, weight_decay: float) -> dict[str, Any]:
    return {"rule": rule, "l1_decay": weight_decay / 2 if rule == "elastic_net" else 0.0}


RULE_PASS_IMPLS = {"fused+loop": False, "fused+foreach": True}  # torch's fused step; the passes' foreach


def _torch_with_rule_passes(
    family: str, torch_class: type[torch.optim.Optimizer], ws: Workspace, options: dict, scale: str, base: Traffic
) -> list[Candidate]:
    """torch's fused step (no decay of its own) with each rule but L2 applied around it as eager
    passes; ``scale`` is the decaylab optimizer's default (SGDW: ``none``, AdamW: ``lr``)."""
    out = []
    weight_decay = options["weight_decay"]
    for rule in (r for r in RULES if r != "l2"):
        traffic = _plus(base, REFERENCE_READ) if rule == "toward_reference" else base
        for impl, foreach in RULE_PASS_IMPLS.items():

            def build(rule: str = rule, foreach: bool = foreach) -> Runner:
                step = torch_class(ws.params, **{**options, "weight_decay": 0.0}, fused=True)
                opt = DecayWrapper(
                    step, weight_decay, scale=scale, foreach=foreach, **_decoupled_options(rule, weight_decay)
                )
                return Runner(opt.step, state_bytes=lambda: _state_bytes(opt.optimizer))

            out.append(
                Candidate(
                    family,
                    "torch.optim",
                    f"{torch_class.__name__}+passes",
                    rule,
                    impl,
                    traffic,
                    build,
                    note="torch's fused step, the rule as eager passes around it",
                    serves=(rule,),
                )
            )
    return out


def sgd_family(ws: Workspace) -> list[Candidate]:
    o = SGD_OPTIONS
    out = _decaylab_family("sgd", "SGD", lambda _: SGD(ws.params, **o), ["coupled_l2"], SGD_TRAFFIC)
    out += _decaylab_family(
        "sgd",
        "SGDW",
        lambda rule: SGDW(ws.params, **o, **_decoupled_options(rule, o["weight_decay"])),
        list(RULES),
        SGD_TRAFFIC,
    )
    for impl, flags in IMPLEMENTATIONS.items():
        out.append(
            Candidate(
                "sgd",
                "torch.optim",
                "SGD",
                "coupled_l2",
                impl,
                SGD_TRAFFIC,
                _torch_runner(lambda f=flags: torch.optim.SGD(ws.params, **o, **f)),
                note="coupled L2: the same traffic as decoupled",
                serves=("coupled_l2", "l2"),
            )
        )
    out += _torch_with_rule_passes("sgd", torch.optim.SGD, ws, o, "none", SGD_TRAFFIC)
    import pytorch_optimizer
    import torch_optimizer

    out.append(
        Candidate(
            "sgd",
            "torch_optimizer",
            "SGDW",
            "constant_shift",
            "loop",
            SGD_TRAFFIC,
            _torch_runner(lambda: torch_optimizer.SGDW(ws.params, **o)),
            note="0.3.0: w -= lr*lam for every element, not a decay",
        )
    )
    for impl in ("loop", "foreach"):
        out.append(
            Candidate(
                "sgd",
                "pytorch_optimizer",
                "SGDW",
                "l2",
                impl,
                SGD_TRAFFIC,
                _torch_runner(lambda i=impl: pytorch_optimizer.SGDW(ws.params, **o, foreach=i == "foreach")),
                note="decoupled, s = lr",
            )
        )
    return out


def adamw_family(ws: Workspace) -> list[Candidate]:
    o = ADAMW_OPTIONS
    out = _decaylab_family(
        "adamw",
        "AdamW",
        lambda rule: AdamW(ws.params, **o, **_decoupled_options(rule, o["weight_decay"])),
        list(RULES),
        ADAMW_TRAFFIC,
    )
    for impl, flags in IMPLEMENTATIONS.items():
        out.append(
            Candidate(
                "adamw",
                "torch.optim",
                "AdamW",
                "l2",
                impl,
                ADAMW_TRAFFIC,
                _torch_runner(lambda f=flags: torch.optim.AdamW(ws.params, **o, **f)),
                note="pytorch_optimizer.AdamW is this class",
                serves=("l2",),
            )
        )
    out += _torch_with_rule_passes("adamw", torch.optim.AdamW, ws, o, "lr", ADAMW_TRAFFIC)
    return out


def penalty_family(ws: Workspace) -> list[Candidate]:
    out = []
    for p, impls in ((2, ("loop", "foreach", "fused")), (1, ("loop", "fused"))):
        reg = WeightRegularization(ws.module, PENALTY_STRENGTH, p=p)
        for impl in impls:
            flags = IMPLEMENTATIONS[impl]

            def build(reg: WeightRegularization = reg, flags: dict = flags) -> Runner:
                engine = lambda: None if reg._fused is None else reg._fused.compile_seconds  # noqa: E731
                return Runner(lambda: reg.add_to_grad(**flags), compile_seconds=engine)

            out.append(Candidate("penalty", "decaylab", "add_to_grad", f"p={p}", impl, PENALTY_TRAFFIC, build))

        def autograd(reg: WeightRegularization = reg) -> Runner:
            return Runner(lambda: reg.penalty().backward())

        out.append(
            Candidate(
                "penalty",
                "autograd",
                "penalty().backward()",
                f"p={p}",
                "loop",
                PENALTY_TRAFFIC,
                autograd,
                note="forward + backward of the loss term",
            )
        )
    return out


FAMILIES: dict[str, Callable[[Workspace], list[Candidate]]] = {
    "sgd": sgd_family,
    "adamw": adamw_family,
    "penalty": penalty_family,
}
TORCH_LIBRARIES = ("torch.optim", "autograd")  # "torch's fastest equivalent" of a decaylab row
THIRD_PARTY = ("torch_optimizer", "pytorch_optimizer")


def equivalents(row: Candidate, candidates: list[Candidate], library: str) -> list[Candidate]:
    """The rows of ``library`` that ``row`` is judged against.

    torch: the rows that serve its rule (they compute its update, except torch.optim.SGD's coupled
    L2 for SGDW's decoupled L2: the same traffic); the penalty: autograd with the same ``p``. A
    third-party library: its rows of the same family (L2-like decay only; their notes say what it does).
    """
    return [
        c
        for c in candidates
        if c.library == library
        and c.family == row.family
        and (
            row.rule in c.serves
            if c.serves
            else row.family != "penalty" or c.rule == row.rule  # third-party rows, autograd's penalty
        )
    ]


def base_steps(row: Candidate, candidates: list[Candidate]) -> list[Candidate]:
    """torch.optim's plain steps in ``row``'s family (L2 decay, no passes): a harder bar than an
    equivalent for every rule that does more work than L2."""
    return [c for c in candidates if c.library == "torch.optim" and c.family == row.family and "l2" in c.serves]
