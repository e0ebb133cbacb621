"""From measured effects to a label, with the ratios that justify it.

The experiment plan (``lam1 < lam2``, ``lr1 < lr2``, ``R = lr2/lr1``, ``S = lam2/lam1``, ``T`` steps):

==========  ===============================================  =====================================
name        configuration (each against its twin at lam=0)   what it answers
==========  ===============================================  =====================================
base        lr1, lam1, zero gradient, momentum off           shape of the move (tail steps)
strength    lr1, lam2                                        ∝ lam? (ratio S) or independent (1)
lr          lr2, lam1                                        ∝ constructor lr? (R) or not (1)
schedule    lr1 -> lr2 by an LR scheduler after the switch   ∝ current lr (R) or not (1)
momentum    lr1, lam1, momentum toggled                      does the decay enter the momentum?
grad        lr1, lam1, gradients of two sizes                does the decay depend on the gradient?
form        lr1, lam with s*lam = 0.2                        w*(1 - s*lam) or w/(1 + s*lam)?
==========  ===============================================  =====================================

Decisions, on the tail (last steps) of each experiment:

* nothing moves with zero gradient, nor with gradients -> **no decay**. Nothing moves with zero
  gradient but the gradients show a decay -> every experiment is redone with a gradient.
* sign-shaped, ratio ~1 for the strength, ~R for lr -> **adaptive-coupled** (coupled L2 divided by a
  second moment: a sign step of size ~lr, whatever lam).
* otherwise the move must be ∝ lam (ratio S), else **other**. The scale is read from the lr and
  schedule ratios: (R, R) -> lr; (1, R) -> lr/initial_lr; (1, 1) -> not scaled; (R, 1) -> initial
  lr (ignores the scheduler). It must not change with the gradient, nor drift over steps at a
  constant lr, else **other**.
* L2-shaped: enters the momentum -> **coupled L2**, else **decoupled L2**; sign-shaped: small weights
  land on exactly 0 -> **proximal L1**, cross 0 -> **L1/sign**; same move for every weight ->
  **constant shift**; ∝ (w - w0) -> **L2 toward initial weights**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise

from decaylab.audit.builder import momentum_words
from decaylab.audit.effects import Effect, Lab, near_ratio, same
from decaylab.audit.probe import Experiment
from decaylab.audit.result import (
    ADAPTIVE_COUPLED,
    CONSTANT_SHIFT,
    COUPLED_L2,
    DECOUPLED_L2,
    L1_SIGN,
    NO_DECAY,
    OTHER,
    PROXIMAL,
    TOWARD_INITIAL,
)

GRADIENT_RTOL = 0.05
"""The decay 'does not depend on the gradient' when magnitudes agree within this."""
FORM_RTOL = 0.01


def g(x: float | None) -> str:
    """Compact number formatting for reasons."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.3g}"


def power(r: float | None, base: float) -> str:
    """The exponent ``p`` with ``r = base**p``, as text (``"n/a"`` when undefined)."""
    if r is None or not r > 0:
        return "n/a"
    return f"{math.log(r) / math.log(base):.2f}"


def times(r: float | None) -> str:
    """``"x3"``, or a phrase when the shape itself changed."""
    return f"x{g(r)}" if r is not None else "changes shape"


def ratio(a: Effect, b: Effect, kind: str | None) -> float | None:
    """Tail magnitude of ``a`` over that of ``b`` when both have ``kind`` on their tail."""
    if not (a.ok and b.ok) or a.tail_kind() != kind or b.tail_kind() != kind:
        return None
    denominator = b.magnitude()
    return a.magnitude() / denominator if denominator else None


def scale_of(r_lr: float | None, r_schedule: float | None, lr_ratio: float) -> str | None:
    """The scale convention implied by the lr and schedule ratios (None: none fits)."""
    lr_scaled = near_ratio(r_lr, lr_ratio)
    lr_flat = near_ratio(r_lr, 1.0)
    if r_schedule is None:
        return "lr" if lr_scaled else None
    if lr_scaled and near_ratio(r_schedule, lr_ratio):
        return "lr"
    if lr_flat and near_ratio(r_schedule, lr_ratio):
        return "lr/initial_lr"
    if lr_flat and near_ratio(r_schedule, 1.0):
        return "none"
    if lr_scaled and near_ratio(r_schedule, 1.0):
        return "initial lr"
    return None


def scale_factor(scale: str, lr: float) -> float:
    """``s`` at the base probe (constructor lr = current lr = ``lr``)."""
    return lr if scale in ("lr", "initial lr") else 1.0


SCALE_TERM = {"lr": "lr·wd", "initial lr": "lr0·wd", "lr/initial_lr": "(lr/lr0)·wd", "none": "wd"}
"""``s * lam`` in words for each scale (``lr0``: the initial lr)."""


def effects_differ(a: Effect, b: Effect) -> bool:
    """Whether two experiments' per-step decay moves differ (kind or magnitude at any step)."""
    for sa, sb in zip(a.shapes, b.shapes, strict=True):
        if sa.kind != sb.kind or not same(sa.magnitude, sb.magnitude):
            return True
    return False


@dataclass
class Classification:
    """The label and its reasons for one implementation path."""

    kind: str
    scale: str = ""
    multiplier: float | None = None
    form: str = ""
    momentum: str = ""
    why: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class Classifier:
    """Runs the experiment plan on a :class:`Lab` and decides (see the module docstring)."""

    def __init__(self, lab: Lab, path: tuple = (), dtype: str = "float64") -> None:
        self.lab = lab
        self.settings = lab.settings
        self.knobs = lab.knobs
        self.exp = partial(Experiment, path=path, dtype=dtype)

    # -- the plan -----------------------------------------------------------------------------
    def effect(self, lr: float, strength: float, grad: float = 0.0, **kw: object) -> Effect:
        return self.lab.effect(self.exp(lr, strength, grad_scale=grad, **kw))

    def classify(self) -> Classification:
        s = self.settings
        lr1, lam1 = s.lrs[0], s.strengths[0]
        base = self.effect(lr1, lam1)
        if not base.ok:
            return Classification(OTHER, error=base.error, why=[f"the probe failed: {base.error}"])
        grads = [self.effect(lr1, lam1, gs) for gs in s.grad_scales]
        mode = 0.0
        out = Classification(OTHER)
        if not base.moved:
            if not any(e.ok and e.moved for e in grads):
                errors = [e.error for e in grads if not e.ok]
                why = (
                    f"no weight moves differently with weight_decay={g(lam1)} than with 0: zero gradient, "
                    f"gradients ±{g(s.grad_scales[0])} and ±{g(s.grad_scales[1])}, {s.steps} steps"
                )
                return Classification(NO_DECAY, why=[why], notes=[f"gradient probe failed: {e}" for e in errors])
            mode = s.grad_scales[0]
            base = grads[0]
            out.notes.append(f"no decay at zero gradient: classified with gradients of size {g(mode)}")
            out.surprises.append("decays only when the gradient is non-zero")
        return self._decide(out, base, grads, mode)

    def _decide(self, out: Classification, base: Effect, grads: list[Effect], mode: float) -> Classification:
        s = self.settings
        lr1, lr2 = s.lrs
        lam1, lam2 = s.strengths
        where = "zero gradient" if mode == 0 else f"gradients of size {g(mode)}"
        kind = base.tail_kind()
        out.numbers["magnitude"] = base.magnitude() if kind else math.nan
        history = base.history()
        if len({sh.kind for sh in base.shapes}) > 1:
            out.notes.append(f"the decay changes over the {s.steps} steps: {history}")
        onset = base.onset()
        if onset is not None and onset > 1 and kind not in (None, "other", "nonfinite"):
            out.surprises.append(f"no decay during the first {onset - 1} steps")

        if kind in (None, "other", "nonfinite"):
            out.why.append(f"{where}: the decay's move fits no standard shape: {history}")
            detail = base.other_detail()
            if detail:
                out.why.append(f"moves at step {s.steps}: {detail}")
            out.surprises.append("not a standard decay (see why)")
            return out

        strength = self.effect(lr1, lam2, mode)
        lr_run = self.effect(lr2, lam1, mode)
        schedule = self.effect(lr1, lam1, mode, lr_factor=s.lr_ratio)
        r_lam = ratio(strength, base, kind)
        r_lr = ratio(lr_run, base, kind)
        r_sched = ratio(schedule, base, kind)
        out.numbers.update(ratio_strength=_num(r_lam), ratio_lr=_num(r_lr), ratio_schedule=_num(r_sched))
        if not schedule.ok:
            out.notes.append(f"LR scheduler probe failed: {schedule.error}")
        magnitude = base.magnitude()
        symbol = "a" if kind in ("l2", "toward_initial") else "c"
        grows = magnitude < 0 and kind != "shift"
        shape_words = {
            "l2": f"every weight {'grows' if grows else 'loses'} the same fraction a={g(abs(magnitude))} "
            f"of itself per step (move ∝ w)",
            "sign": f"every large weight moves {'away from' if grows else 'toward'} 0 by the same "
            f"c={g(abs(magnitude))} per step, whatever its size",
            "shift": f"every weight moves {'down' if magnitude > 0 else 'up'} by c={g(abs(magnitude))} per step, "
            "whatever its sign (w=0 and w<0 included)",
            "toward_initial": f"every weight moves {'away from' if grows else 'back toward'} its initial value "
            f"by a={g(abs(magnitude))} of the gap",
        }[kind]
        out.why.append(f"{where}: {shape_words}")
        ratios = (
            f"weight_decay x{g(s.strength_ratio)} → {symbol} {times(r_lam)}; lr x{g(s.lr_ratio)} → {times(r_lr)}; "
            f"LR scheduler lr x{g(s.lr_ratio)} → {times(r_sched)}"
        )
        mom = self.effect(lr1, lam1, mode, momentum=True) if self.knobs.momentum else None
        interacts = self._momentum(out, base, mom)
        if grows:
            out.why.append(ratios)
            out.why.append("weight_decay makes the weights grow: the opposite of a decay")
            out.surprises.append("weight_decay makes weights grow (sign error?)")
            return out

        if kind == "sign" and mode == 0 and near_ratio(r_lam, 1.0, 0.1):
            out.why.append(ratios)
            if near_ratio(r_lr, s.lr_ratio):
                out.kind = ADAPTIVE_COUPLED
                out.numbers["step_over_lr"] = magnitude / lr1
                out.why.append(
                    f"so the step is {g(magnitude / lr1)}·lr and weight_decay only switches it on: coupled L2 "
                    "normalised by a second moment"
                )
                self._gradient_evidence(out, base, grads, symbol)
                out.surprises.append("weight_decay acts as a sign step of size ~lr, independent of its value")
                return out
            out.why.append(
                f"sign-shaped and independent of weight_decay, but not ∝ lr ({symbol} ∝ lr^{power(r_lr, s.lr_ratio)})"
            )
            out.surprises.append("not a standard decay (see why)")
            return out

        if not near_ratio(r_lam, s.strength_ratio):
            out.why.append(ratios)
            out.why.append(f"not proportional to weight_decay ({symbol} ∝ wd^{power(r_lam, s.strength_ratio)})")
            out.surprises.append("not a standard decay (see why)")
            return out

        scale = scale_of(r_lr, r_sched if schedule.ok else None, s.lr_ratio)
        out.why.append(ratios)
        if scale is None:
            out.why.append("the lr ratios match no scale convention (lr, lr/initial_lr, none)")
            out.surprises.append("not a standard decay (see why)")
            return out
        out.scale = scale
        if scale == "initial lr":
            out.surprises.append("scaled by the constructor's lr: ignores the LR scheduler")
        if not schedule.ok and scale == "lr":
            out.notes.append("scaled by lr; lr/initial_lr not ruled out (no LR scheduler probe)")
        # A coupled decay accumulates in a default-on momentum: then the toggled (momentum-off)
        # probe is the clean measurement of its strength.
        reference = base
        coupled = kind == "l2" and interacts
        if (
            coupled
            and not base.tail_is_steady()
            and mom is not None
            and mom.tail_kind() == kind
            and mom.tail_is_steady()
        ):
            reference = mom
        multiplier = reference.magnitude() / (scale_factor(scale, lr1) * lam1)
        out.multiplier = multiplier
        out.numbers["multiplier"] = multiplier
        without = " without momentum" if reference is mom else ""
        out.why.append(f"so {symbol} = {g(multiplier)}·{SCALE_TERM[scale]}{without}")
        if not same(multiplier, 1.0):
            out.surprises.append(f"strength is {g(multiplier)}x the nominal weight_decay")

        if mode == 0 and self._depends_on_gradient(out, base, grads, symbol):
            out.kind = OTHER
            out.why.append(f"{kind}-shaped, but the decay changes with the gradient")
            out.surprises.append("decay depends on the gradient's size")
            return out
        if not reference.tail_is_steady() and not coupled:
            mags = [sh.magnitude for sh in reference.tail_shapes()]
            out.why.append(f"at a constant lr, {symbol} still changes over the last steps: {', '.join(map(g, mags))}")
            out.surprises.append("not a standard decay (see why)")
            return out

        if kind == "l2":
            if coupled and not reference.tail_is_steady():
                out.notes.append("the decay keeps growing over the steps as it accumulates in the momentum")
            if coupled and scale != "lr":
                out.notes.append(f"enters the momentum, but scaled as {scale}")
            if not interacts and self.knobs.momentum is None:
                out.notes.append("no momentum option: coupled and decoupled L2 act the same here")
            out.form = self._form(out, multiplier, scale, momentum=reference is mom)
            if out.form.startswith("other"):
                out.kind = OTHER
                out.why.append("L2-shaped at a small strength, but not at a strong one")
                out.surprises.append("not a standard decay (see why)")
                return out
            out.kind = COUPLED_L2 if coupled else DECOUPLED_L2
        elif kind == "sign":
            below = _agree([e.below() for e in (base, strength, lr_run) if e.ok])
            follows = base.mid_follows()
            if interacts:
                out.kind = OTHER
                out.why.append("sign-shaped, but the decay enters the momentum")
                out.surprises.append("not a standard decay (see why)")
            elif below == "zeros" and follows:
                out.kind = PROXIMAL
                out.why.append("weights smaller than c land on exactly 0 and stay there (soft threshold)")
            elif below in ("crosses", "") and follows:
                out.kind = L1_SIGN
                out.why.append(
                    "weights smaller than c cross zero (sign step)"
                    if below
                    else "no weight below c to tell L1 from proximal"
                )
            else:
                out.kind = OTHER
                out.why.append(f"sign-shaped on large weights, but small weights do neither L1 nor proximal ({below})")
                out.surprises.append("not a standard decay (see why)")
        elif kind == "shift":
            out.kind = CONSTANT_SHIFT
            out.surprises.append("constant shift: moves every weight by the same amount whatever its sign (a bug)")
        else:
            out.kind = TOWARD_INITIAL
        return out

    # -- sub-decisions -------------------------------------------------------------------------
    def _momentum(self, out: Classification, base: Effect, mom: Effect | None) -> bool:
        if mom is None:
            out.momentum = "n/a (no momentum option)"
            return False
        toggled = momentum_words(self.knobs)
        if not mom.ok:
            out.momentum = f"unknown ({toggled} failed)"
            out.notes.append(f"momentum probe failed: {mom.error}")
            return False
        if effects_differ(base, mom):
            out.momentum = "yes"
            tail = ", ".join(g(m) for m in mom.magnitudes()[-self.settings.tail :])
            out.why.append(f"with {toggled} the decay changes (last steps: {tail}): it enters the momentum")
            out.numbers["magnitude_momentum"] = mom.magnitude() if mom.tail_kind() else math.nan
            return True
        out.momentum = "no"
        out.why.append(f"{toggled}: same decay")
        return False

    def _depends_on_gradient(self, out: Classification, base: Effect, grads: list[Effect], symbol: str) -> bool:
        """True when gradients change the decay into another standard shape or another magnitude.

        When, with gradients, the difference between the runs fits no shape at all, the decay is
        kept (it was measured cleanly at zero gradient) and flagged: the update itself reacts to
        the decayed weights (relative step sizes, trust ratios, projections...).
        """
        kind = base.tail_kind()
        parts, depends, unshaped = [], False, False
        for scale, e in zip(self.settings.grad_scales, grads, strict=True):
            if not e.ok:
                out.notes.append(f"gradient probe failed: {e.error}")
                continue
            grad_kind = e.tail_kind()
            value = e.magnitude() if grad_kind == kind else math.nan
            out.numbers[f"magnitude_grad_{scale:g}"] = value
            if grad_kind == kind and same(value, base.magnitude(), GRADIENT_RTOL):
                parts.append(f"±{g(scale)}: same")
            elif grad_kind in (None, "other", "nonfinite"):
                unshaped = True
                parts.append(
                    f"±{g(scale)}: no clean shape (w=10 moves {g(e.tail_move(0))} per step, "
                    f"the zero-gradient decay alone would move it {g(base.tail_move(0))})"
                )
            else:
                depends = True
                parts.append(f"±{g(scale)}: {grad_kind} with {symbol}={g(e.magnitude())}")
        if parts:
            out.why.append("with gradients " + "; ".join(parts))
        if unshaped and not depends:
            out.surprises.append("with gradients the runs differ by more than the decay: the update reacts to it")
        return depends

    def _gradient_evidence(self, out: Classification, base: Effect, grads: list[Effect], symbol: str) -> None:
        """How far the decay moves w=10 per step once gradients flow (it shrinks as they grow)."""
        parts, moves = [], [-base.tail_move(0)]
        for scale, e in zip(self.settings.grad_scales, grads, strict=True):
            if e.ok:
                moves.append(-e.tail_move(0))
                out.numbers[f"move_w10_grad_{scale:g}"] = moves[-1]
                parts.append(f"±{g(scale)}: {g(moves[-1])}")
        if parts:
            shrinks = all(abs(b) < abs(a) for a, b in pairwise(moves))
            out.why.append(
                f"with gradients the decay moves w=10 by {'; '.join(parts)} per step (zero gradient: {g(moves[0])})"
                + (": it shrinks as the gradient grows" if shrinks else "")
            )

    def _form(self, out: Classification, multiplier: float, scale: str, momentum: bool = False) -> str:
        """Tell ``w*(1 - s*lam)`` from ``w/(1 + s*lam)`` with a strong probe (``kappa*s*lam = form_factor``)."""
        s = self.settings
        lr1 = s.lrs[0]
        if multiplier <= 0:
            return ""
        lam = s.form_factor / (multiplier * scale_factor(scale, lr1))
        if not (0 < lam < 1e6):
            return ""
        probe = self.effect(lr1, lam, momentum=momentum)
        if not probe.ok or probe.tail_kind() != "l2":
            return ""
        a, f = probe.magnitude(), s.form_factor
        out.numbers["form_fraction"] = a
        s_lam = SCALE_TERM[scale] if same(multiplier, 1.0) else f"{g(multiplier)}·{SCALE_TERM[scale]}"
        if same(a, f, FORM_RTOL):
            form = f"w·(1 - {s_lam})"
        elif same(a, f / (1 + f), FORM_RTOL):
            form = f"w/(1 + {s_lam})"
        else:
            k = round(multiplier)
            if k >= 2 and same(a, 1 - (1 - f / k) ** k, FORM_RTOL):
                form = f"w·(1 - {SCALE_TERM[scale]}) applied {k} times"
            else:
                form = f"other (removes {g(a)} when {s_lam} = {g(f)})"
        out.why.append(f"form: {form} (probe with {s_lam} = {g(f)} removes {g(a)} per step)")
        return form


def _agree(words: list[str]) -> str:
    """The one non-empty word they all share, ``""`` when there is none, ``"mixed"`` when they disagree."""
    seen = {w for w in words if w}
    if not seen:
        return ""
    return seen.pop() if len(seen) == 1 else "mixed"


def _num(x: float | None) -> float:
    return math.nan if x is None else x
