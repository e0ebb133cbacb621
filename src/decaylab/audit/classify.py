"""From measured effects to a label, with the ratios that justify it.

The experiment plan (``lam1 < lam2``, ``lr1 < lr2``, ``R = lr2/lr1``, ``S = lam2/lam1``, ``T`` steps):

==========  ===============================================  =====================================
name        configuration (each against its twin at lam=0)   what it answers
==========  ===============================================  =====================================
base        lr1, lam1, zero gradient, default momentum       shape of the move (tail steps)
strength    lr1, lam2                                        ∝ lam? (ratio S) or independent (1)
lr          lr2, lam1                                        ∝ constructor lr? (R) or not (1)
schedule    lr1 -> lr2 by an LR scheduler after the switch   ∝ current lr (R) or not (1)
momentum    lr1, lam1, momentum toggled                      does the decay enter the momentum?
grad        lr1, lam1, gradients of two sizes                does the decay depend on the gradient?
form        lr1, lam with s*lam = 0.2                        w*(1 - s*lam) or w/(1 + s*lam)?
==========  ===============================================  =====================================

Decisions, on the tail (last steps) of each experiment, in this order:

1. nothing moves with zero gradient, nor with gradients -> **no decay**. Nothing moves with zero
   gradient but the gradients show a decay -> the plan is redone with a gradient.
2. the move fits no shape -> **other** (with the measured moves).
3. sign-shaped, ratio ~1 for the strength, ~R for lr -> **adaptive-coupled** (coupled L2 divided by
   a second moment: a sign step of size ~lr, whatever lam).
4. the strength must not drift over steps at a constant lr (a coupled L2 that accumulates in a
   default-on momentum is measured on the momentum-off probe), must shrink the weights, be ∝ lam
   (ratio S), follow a scale convention -- (R, R): lr; (1, R): lr/initial_lr; (1, 1): not scaled;
   (R, 1): initial lr only -- and not depend on the gradient; else **other**.
5. L2-shaped: enters the momentum -> **coupled L2**, else **decoupled L2** (and the strong probe
   must give ``w*(1 - s*lam)``, ``w/(1 + s*lam)`` or that applied k times); sign-shaped: small
   weights land on exactly 0 -> **proximal L1**, cross 0 -> **L1/sign**; the same move for every
   weight -> **constant shift**; ∝ (w - w0) -> **L2 toward initial weights**.
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
NOT_STANDARD = "not a standard decay (see why)"

SCALE_TERM = {"lr": "lr·wd", "initial lr": "lr0·wd", "lr/initial_lr": "(lr/lr0)·wd", "none": "wd"}
"""``s * lam`` in words for each scale (``lr0``: the initial lr)."""


def g(x: float | None) -> str:
    """Compact number formatting for reasons."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.3g}"


def power(r: float | None, base: float) -> str:
    """``"∝ x^p"`` with ``r = base**p``, or a phrase when undefined."""
    if r is None or not r > 0:
        return "changes shape"
    return f"power {math.log(r) / math.log(base):.2f}"


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


def effects_differ(a: Effect, b: Effect) -> bool:
    """Whether two experiments' per-step decay moves differ (kind or magnitude at any step)."""
    for sa, sb in zip(a.shapes, b.shapes, strict=True):
        if sa.kind != sb.kind or not same(sa.magnitude, sb.magnitude):
            return True
    return False


def _agree(words: list[str]) -> str:
    """The one non-empty word they all share, ``""`` when there is none, ``"mixed"`` when they disagree."""
    seen = {w for w in words if w}
    if not seen:
        return ""
    return seen.pop() if len(seen) == 1 else "mixed"


def _num(x: float | None) -> float:
    return math.nan if x is None else x


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

    def other(self, reason: str, surprise: str = NOT_STANDARD) -> Classification:
        self.kind = OTHER
        self.why.append(reason)
        self.surprises.append(surprise)
        return self


@dataclass
class Plan:
    """The measured effects of the plan (see the module docstring) and their ratios."""

    mode: float
    base: Effect
    strength: Effect
    lr: Effect
    schedule: Effect
    momentum: Effect | None
    grads: list[Effect]

    @property
    def kind(self) -> str | None:
        return self.base.tail_kind()

    @property
    def r_strength(self) -> float | None:
        return ratio(self.strength, self.base, self.kind)

    @property
    def r_lr(self) -> float | None:
        return ratio(self.lr, self.base, self.kind)

    @property
    def r_schedule(self) -> float | None:
        return ratio(self.schedule, self.base, self.kind)


class Classifier:
    """Runs the experiment plan on a :class:`Lab` and decides (see the module docstring)."""

    def __init__(self, lab: Lab, path: tuple = (), dtype: str = "float64") -> None:
        self.lab = lab
        self.settings = lab.settings
        self.knobs = lab.knobs
        self.exp = partial(Experiment, path=path, dtype=dtype)

    def effect(self, lr: float, strength: float, grad: float = 0.0, **kw: object) -> Effect:
        return self.lab.effect(self.exp(lr, strength, grad_scale=grad, **kw))

    # -- step 1: is there a decay at all, and with which gradient ---------------------------------
    def classify(self) -> Classification:
        s = self.settings
        lr1, lam1 = s.lrs[0], s.strengths[0]
        base = self.effect(lr1, lam1)
        if not base.ok:
            return Classification(OTHER, error=base.error, why=[f"the probe failed: {base.error}"])
        grads = [self.effect(lr1, lam1, gs) for gs in s.grad_scales]
        out = Classification(OTHER)
        mode = 0.0
        if not base.moved:
            if not any(e.ok and e.moved for e in grads):
                why = (
                    f"no weight moves differently with weight_decay={g(lam1)} than with 0: zero gradient, "
                    f"gradients ±{g(s.grad_scales[0])} and ±{g(s.grad_scales[1])}, {s.steps} steps"
                )
                notes = [f"gradient probe failed: {e.error}" for e in grads if not e.ok]
                return Classification(NO_DECAY, why=[why], notes=notes)
            mode, base = s.grad_scales[0], grads[0]
            out.notes.append(f"no decay at zero gradient: classified with gradients of size {g(mode)}")
            out.surprises.append("decays only when the gradient is non-zero")
        lr2, lam2 = s.lrs[1], s.strengths[1]
        plan = Plan(
            mode=mode,
            base=base,
            strength=self.effect(lr1, lam2, mode),
            lr=self.effect(lr2, lam1, mode),
            schedule=self.effect(lr1, lam1, mode, lr_factor=s.lr_ratio),
            momentum=self.effect(lr1, lam1, mode, momentum=True) if self.knobs.momentum else None,
            grads=grads,
        )
        return self._decide(out, plan)

    # -- steps 2-5 -------------------------------------------------------------------------------
    def _decide(self, out: Classification, plan: Plan) -> Classification:
        s = self.settings
        base, kind = plan.base, plan.kind
        where = "zero gradient" if plan.mode == 0 else f"gradients of size {g(plan.mode)}"
        if len({sh.kind for sh in base.shapes}) > 1:
            out.notes.append(f"the decay changes over the {s.steps} steps: {base.history()}")
        if kind in (None, "other", "nonfinite"):
            out.why.append(f"{where}: the decay's move fits no standard shape: {base.history()}")
            if base.other_detail():
                out.why.append(f"moves at step {s.steps}: {base.other_detail()}")
            out.surprises.append(NOT_STANDARD)
            return out
        onset = base.onset()
        if onset is not None and onset > 1:
            out.surprises.append(f"no decay during the first {onset - 1} steps")

        magnitude = base.magnitude()
        symbol = "a" if kind in ("l2", "toward_initial") else "c"
        out.numbers.update(
            magnitude=magnitude,
            ratio_strength=_num(plan.r_strength),
            ratio_lr=_num(plan.r_lr),
            ratio_schedule=_num(plan.r_schedule),
        )
        out.why.append(f"{where}: {self._shape_words(kind, magnitude)}")
        interacts = self._momentum(out, base, plan.momentum)
        out.why.append(
            f"weight_decay x{g(s.strength_ratio)} → {symbol} {times(plan.r_strength)}; "
            f"lr x{g(s.lr_ratio)} → {times(plan.r_lr)}; LR scheduler lr x{g(s.lr_ratio)} → {times(plan.r_schedule)}"
        )
        if not plan.schedule.ok:
            out.notes.append(f"LR scheduler probe failed: {plan.schedule.error}")

        if kind == "sign" and plan.mode == 0 and magnitude > 0 and near_ratio(plan.r_strength, 1.0, 0.1):
            return self._adaptive(out, plan, symbol)

        coupled = kind == "l2" and interacts
        reference = self._reference(plan, coupled)
        if not reference.tail_is_steady() and not coupled:
            return self._unsteady(out, reference, symbol)
        if magnitude < 0 and kind != "shift":
            return out.other(
                "weight_decay makes the weights grow: the opposite of a decay", "weight_decay makes weights grow"
            )
        if not near_ratio(plan.r_strength, s.strength_ratio):
            return out.other(f"not proportional to weight_decay ({symbol}: {power(plan.r_strength, s.strength_ratio)})")
        scale = scale_of(plan.r_lr, plan.r_schedule if plan.schedule.ok else None, s.lr_ratio)
        if scale is None:
            return out.other(
                f"the lr ratios match no scale convention (lr, lr/initial_lr, none): {symbol} "
                f"{power(plan.r_lr, s.lr_ratio)} of the constructor lr, {power(plan.r_schedule, s.lr_ratio)} "
                "of the scheduled lr"
            )
        out.scale = scale
        if scale == "initial lr":
            out.surprises.append("scaled by the constructor's lr: ignores the LR scheduler")
        if not plan.schedule.ok and scale == "lr":
            out.notes.append("scaled by lr; lr/initial_lr not ruled out (no LR scheduler probe)")
        if reference.tail_is_steady():
            multiplier = self._multiplier(out, reference, scale, symbol, without_momentum=reference is not base)
        else:  # a coupled decay still accumulating in a momentum that cannot be switched off
            multiplier = math.nan
            mags = reference.magnitudes()
            out.why.append(f"{symbol} grows from {g(mags[0])} to {g(mags[-1])} over the steps (momentum)")
        if self._depends_on_gradient(out, plan, symbol, coupled):
            return out.other(
                f"{kind}-shaped, but the decay changes with the gradient", "decay depends on the gradient's size"
            )

        if kind == "l2":
            return self._l2(out, plan, coupled, reference, multiplier, scale, interacts)
        if kind == "sign":
            return self._sign(out, plan, interacts)
        if kind == "shift":
            out.kind = CONSTANT_SHIFT
            out.surprises.append("constant shift: moves every weight by the same amount whatever its sign (a bug)")
            return out
        # Pulling toward the initial weights has nothing to do until the weights have moved:
        # needing a gradient (and a first step) is its nature, not a surprise.
        out.kind = TOWARD_INITIAL
        expected = [w for w in out.surprises if w.startswith(("decays only", "no decay during"))]
        out.surprises = [w for w in out.surprises if w not in expected]
        out.notes += expected
        return out

    # -- the branches ------------------------------------------------------------------------------
    @staticmethod
    def _shape_words(kind: str, magnitude: float) -> str:
        size = g(abs(magnitude))
        grows = magnitude < 0
        return {
            "l2": f"every weight {'grows by' if grows else 'loses'} the same fraction a={size} of itself per step "
            "(move ∝ w)",
            "sign": f"every large weight moves {'away from' if grows else 'toward'} 0 by the same c={size} per step, "
            "whatever its size",
            "shift": f"every weight moves {'down' if magnitude > 0 else 'up'} by c={size} per step, whatever its "
            "sign (w=0 and w<0 included)",
            "toward_initial": f"every weight moves {'away from' if grows else 'back toward'} its initial value by "
            f"a={size} of the gap",
        }[kind]

    def _adaptive(self, out: Classification, plan: Plan, symbol: str) -> Classification:
        magnitude, lr1 = plan.base.magnitude(), self.settings.lrs[0]
        if not near_ratio(plan.r_lr, self.settings.lr_ratio):
            return out.other(
                f"sign-shaped and independent of weight_decay, but not ∝ lr ({symbol}: "
                f"{power(plan.r_lr, self.settings.lr_ratio)} of lr)"
            )
        out.kind = ADAPTIVE_COUPLED
        out.numbers["step_over_lr"] = magnitude / lr1
        out.why.append(
            f"so the step is {g(magnitude / lr1)}·lr and weight_decay only switches it on: coupled L2 normalised "
            "by a second moment"
        )
        moves = [-plan.base.tail_move(0)]
        parts = []
        for scale, e in zip(self.settings.grad_scales, plan.grads, strict=True):
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
        out.surprises.append("weight_decay acts as a sign step of size ~lr, independent of its value")
        return out

    def _reference(self, plan: Plan, coupled: bool) -> Effect:
        """The probe to read the strength from: the momentum-off one when a coupled decay accumulates."""
        mom = plan.momentum
        if (
            coupled
            and not plan.base.tail_is_steady()
            and mom is not None
            and mom.tail_kind() == plan.kind
            and mom.tail_is_steady()
        ):
            return mom
        return plan.base

    def _unsteady(self, out: Classification, reference: Effect, symbol: str) -> Classification:
        mags = ", ".join(g(m) for m in reference.magnitudes())
        out.why.append(f"at a constant lr, {symbol} changes from step to step: {mags}")
        period = reference.period()
        if period is not None:
            out.why.append(f"the pattern repeats every {period} steps")
        if math.isfinite(reference.net_fraction) and reference.tail_kind() == "l2":
            lr1, lam1 = self.settings.lrs[0], self.settings.strengths[0]
            net = reference.net_fraction
            out.numbers["net_fraction"] = net
            out.why.append(
                f"net over {self.settings.steps} steps: w=10 loses {g(net)} per step = {g(net / (lr1 * lam1))}·lr·wd"
            )
        out.surprises.append(NOT_STANDARD)
        out.kind = OTHER
        return out

    def _multiplier(
        self, out: Classification, reference: Effect, scale: str, symbol: str, without_momentum: bool
    ) -> float:
        lr1, lam1 = self.settings.lrs[0], self.settings.strengths[0]
        multiplier = reference.magnitude() / (scale_factor(scale, lr1) * lam1)
        out.multiplier = multiplier
        out.numbers["multiplier"] = multiplier
        out.why.append(
            f"so {symbol} = {g(multiplier)}·{SCALE_TERM[scale]}{' without momentum' if without_momentum else ''}"
        )
        if not same(multiplier, 1.0):
            out.surprises.append(f"strength is {g(multiplier)}x the nominal weight_decay")
        return multiplier

    def _l2(
        self,
        out: Classification,
        plan: Plan,
        coupled: bool,
        reference: Effect,
        multiplier: float,
        scale: str,
        interacts: bool,
    ) -> Classification:
        if coupled and scale != "lr":
            out.notes.append(f"enters the momentum, but scaled as {scale}")
        if not interacts and self.knobs.momentum is None:
            out.notes.append("no momentum option: coupled and decoupled L2 act the same here")
        if math.isfinite(multiplier):
            out.form = self._form(out, multiplier, scale, momentum=reference is not plan.base)
        else:
            out.notes.append("the decay keeps growing over the steps as it accumulates in the momentum")
        if out.form.startswith("other"):
            return out.other("L2-shaped at a small strength, but not at a strong one")
        out.kind = COUPLED_L2 if coupled else DECOUPLED_L2
        return out

    def _sign(self, out: Classification, plan: Plan, interacts: bool) -> Classification:
        below = _agree([e.below() for e in (plan.base, plan.strength, plan.lr) if e.ok])
        if interacts:
            return out.other("sign-shaped, but the decay enters the momentum")
        if not plan.base.mid_follows():
            return out.other("sign-shaped on large weights, but weights between c and 1 move differently")
        if below == "zeros":
            out.kind = PROXIMAL
            out.why.append("weights smaller than c land on exactly 0 and stay there (soft threshold)")
        elif below == "crosses":
            out.kind = L1_SIGN
            out.why.append("weights smaller than c cross zero (sign step)")
        elif below == "":
            out.kind = L1_SIGN
            out.notes.append("no weight fell below c: L1 and proximal L1 not told apart")
        else:
            return out.other("sign-shaped on large weights, but small weights neither cross 0 nor stop at 0")
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

    def _depends_on_gradient(self, out: Classification, plan: Plan, symbol: str, coupled: bool) -> bool:
        """True when gradients turn the decay into another standard shape or another magnitude.

        When, with gradients, the difference between the runs fits no shape at all, the decay is
        kept (it was measured cleanly at zero gradient) and flagged: the update itself reacts to
        the decayed weights (relative step sizes, trust ratios, projections...). A coupled decay in
        a default-on momentum is not flagged: its history makes the moves uneven by construction.
        """
        kind, base = plan.kind, plan.base
        parts, depends, unshaped = [], False, False
        for scale, e in zip(self.settings.grad_scales, plan.grads, strict=True):
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
        if unshaped and not depends and not coupled:
            out.surprises.append("with gradients the runs differ by more than the decay: the update reacts to it")
        return depends

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
        s_lam = SCALE_TERM[scale] if same(multiplier, 1.0) else f"{g(multiplier)}·{SCALE_TERM[scale]}"
        f = s.form_factor
        if not probe.ok:
            out.notes.append(f"strong-decay probe failed: {probe.error}")
            return ""
        a = probe.l2_fraction()  # the factor on the large weights: what the form is about
        if not math.isfinite(a):
            form = f"other (at {s_lam} = {g(f)} the weights become non-finite)"
            out.why.append(f"form: {form}")
            return form
        out.numbers["form_fraction"] = a
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
