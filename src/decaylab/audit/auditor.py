"""Audit one optimizer: probe it, classify it, and add the per-optimizer facts (grad-None params,
default strength, implementation paths). Never raises for a misbehaving optimizer: every failure
becomes a row that says why.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from decaylab.audit.builder import MISSING, Knobs, Target, find_knobs
from decaylab.audit.classify import Classification, Classifier, g
from decaylab.audit.effects import Lab
from decaylab.audit.probe import Experiment
from decaylab.audit.result import NO_DECAY, OTHER, AuditResult, full_label
from decaylab.audit.settings import ProbeSettings

PATH_RTOL = {"float64": 1e-6, "float32": 1e-4}
"""Two implementation paths agree when their weights differ by less than this (relative to max(|w|, 1))."""


def _preflight(target: Target, knobs: Knobs, settings: ProbeSettings) -> tuple[Lab, str, list[str]] | str:
    """Find a dtype the optimizer accepts (float64, else float32).

    Returns ``(lab, dtype, notes)`` or the error of the float64 attempt.
    """
    first_error = ""
    for dtype in ("float64", "float32"):
        lab = Lab(target, knobs, settings)
        exp = Experiment(settings.lrs[0], settings.strengths[0], dtype=dtype)
        run, twin = lab.run(exp), lab.run(exp.baseline())
        if run.ok and twin.ok:
            notes = ["probed in float32 (float64 was rejected)"] if dtype != "float64" else []
            return lab, dtype, notes
        first_error = first_error or run.error or twin.error or ""
    return first_error


def _no_grad(lab: Lab, dtype: str, settings: ProbeSettings) -> tuple[str, list[str], list[str]]:
    """Whether the decay touches a parameter whose ``.grad`` is None: (answer, notes, surprises)."""
    exp = Experiment(settings.lrs[0], settings.strengths[0], no_grad_param=True, dtype=dtype)
    run, twin = lab.run(exp), lab.run(exp.baseline())
    if not twin.ok:
        return "crashes", [f"fails when a parameter has no grad, even without decay: {twin.error}"], []
    if not run.ok:
        return "crashes", [], [f"crashes when a parameter has no grad and weight_decay > 0: {run.error}"]
    assert run.no_grad is not None
    assert twin.no_grad is not None
    tol = PATH_RTOL[dtype] * np.maximum(np.abs(twin.no_grad), 1.0)
    decayed = bool(np.any(np.abs(run.no_grad - twin.no_grad) > tol))
    moved = bool(np.any(np.abs(twin.no_grad[-1] - twin.no_grad[0]) > tol[0]))
    notes = ["the optimizer moves a parameter with no grad even without decay"] if moved else []
    if decayed:
        final = ", ".join(f"{a:g} → {b:.6g}" for a, b in zip(run.no_grad[0], run.no_grad[-1], strict=True))
        return "decayed", notes, [f"decays parameters that have no gradient ({final} in {settings.steps} steps)"]
    return "not touched", notes, []


def _default_strength(lab: Lab, knobs: Knobs, dtype: str, settings: ProbeSettings) -> tuple[str, bool | None]:
    """The signature's default strength and whether the optimizer decays when none is passed."""
    default = knobs.strength_default
    if default is MISSING:
        text = "n/a (only through **kwargs)" if knobs.strength_via_kwargs else "required"
    else:
        text = repr(default)
    if default is MISSING or default == 0:
        return text, False if default == 0 else None
    exp = Experiment(settings.lrs[0], None, dtype=dtype)
    effect = lab.effect(exp)
    return text, (effect.moved if effect.ok else None)


def _paths(
    lab: Lab, knobs: Knobs, dtype: str, primary: Classification, settings: ProbeSettings
) -> tuple[str, list[str], list[str]]:
    """Compare the foreach / fused paths with the default one; classify any that differs."""
    variants = []
    if "foreach" in knobs.paths:
        variants += [("foreach", False), ("foreach", True)]
    if "fused" in knobs.paths:
        variants.append(("fused", True))
    lr1, lam1 = settings.lrs[0], settings.strengths[0]
    compare = [
        Experiment(lr1, lam1, dtype=dtype),
        Experiment(lr1, lam1, grad_scale=settings.grad_scales[0], dtype=dtype),
    ]
    if knobs.momentum is not None:
        compare.append(Experiment(lr1, lam1, momentum=True, dtype=dtype))
    parts, notes, surprises = [], [], []
    primary_label = full_label(primary.kind, primary.scale)
    for flag, value in variants:
        path = ((flag, value),)
        name = f"{flag}={value}"
        worst, error = 0.0, None
        for exp in compare:
            theirs = lab.run(exp)
            if not theirs.ok:
                continue
            mine = lab.run(replace(exp, path=path))
            if not mine.ok:
                error = mine.error
                break
            scale = np.maximum(np.abs(theirs.weights), 1.0)
            worst = max(worst, float(np.nanmax(np.abs(mine.weights - theirs.weights) / scale)))
        if error is not None:
            parts.append(f"{name}: not available")
            notes.append(f"{name} failed: {error}")
        elif worst <= PATH_RTOL[dtype]:
            parts.append(f"{name}: same")
        else:
            other = Classifier(lab, path=path, dtype=dtype).classify()
            label = full_label(other.kind, other.scale) if other.error is None else f"fails ({other.error})"
            if label != primary_label:
                parts.append(f"{name}: {label}")
                surprises.append(f"the {name} path gives {label}, the default path {primary_label}")
            else:
                parts.append(f"{name}: same label, weights differ by up to {g(worst)}")
    return "; ".join(parts), notes, surprises


def audit_target(target: Target, settings: ProbeSettings | None = None) -> AuditResult:
    """Probe and classify one optimizer (in this process, no time limit)."""
    settings = settings or ProbeSettings()
    start = time.perf_counter()
    recipe = target.recipe.describe()

    def finish(result: AuditResult) -> AuditResult:
        result.recipe = recipe
        result.seconds = time.perf_counter() - start
        return result

    if target.recipe.reason:
        return finish(AuditResult.not_probed(target.name, f"cannot be probed: {target.recipe.reason}"))
    try:
        knobs = find_knobs(target)
    except Exception as error:  # a broken signature or base optimizer path
        return finish(AuditResult.not_probed(target.name, f"cannot read its constructor: {error}"))
    if knobs.strength is None:
        return finish(
            AuditResult(
                name=target.name,
                label=NO_DECAY,
                kind=NO_DECAY,
                why="its constructor has no weight_decay argument (nothing to switch on)",
                default_strength="n/a",
                decays_by_default=False,
            )
        )
    ready = _preflight(target, knobs, settings)
    if isinstance(ready, str):
        return finish(AuditResult.not_probed(target.name, f"cannot be probed: {ready}"))
    lab, dtype, notes = ready
    knobs = lab.knobs
    primary = Classifier(lab, dtype=dtype).classify()
    if primary.error is not None:
        return finish(AuditResult.not_probed(target.name, f"cannot be probed: {primary.error}"))
    surprises = list(primary.surprises)
    notes = notes + primary.notes
    if knobs.strength_via_kwargs:
        notes.append("weight_decay is not a named argument; passed through **kwargs")
        if primary.kind == NO_DECAY:
            surprises.append("accepts weight_decay through **kwargs and ignores it")
    elif primary.kind == NO_DECAY:
        surprises.append(f"has a {knobs.strength} argument, but it changes nothing in these probes")
    no_grad = "n/a"
    if primary.kind != NO_DECAY:
        no_grad, more_notes, more_surprises = _no_grad(lab, dtype, settings)
        notes += more_notes
        surprises += more_surprises
    default_text, decays_by_default = _default_strength(lab, knobs, dtype, settings)
    paths, more_notes, more_surprises = _paths(lab, knobs, dtype, primary, settings)
    notes += more_notes
    surprises += more_surprises
    result = AuditResult(
        name=target.name,
        label=full_label(primary.kind, primary.scale),
        kind=primary.kind,
        scale=primary.scale,
        strength_multiplier=primary.multiplier,
        form=primary.form,
        momentum=primary.momentum or ("n/a" if primary.kind == NO_DECAY else ""),
        no_grad=no_grad,
        default_strength=default_text,
        decays_by_default=decays_by_default,
        paths=paths,
        why="; ".join(primary.why),
        notes=notes,
        surprises=list(dict.fromkeys(surprises)),
        numbers={k: float(v) for k, v in primary.numbers.items()},
    )
    if primary.kind == OTHER and not result.why:
        result.why = "no standard shape"
    result.numbers["probe_runs"] = float(lab.count)
    return finish(result)
