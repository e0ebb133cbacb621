"""``decaylab audit``: what ``weight_decay`` really does in an optimizer, measured, never read from source.

Each optimizer is run on known weights (large, unit, zero, small, both signs) with injected
gradients, once with ``weight_decay = lam`` and once with 0; the difference of the two runs is the
decay's own move, fitted step by step against the usual shapes (L2, sign, soft threshold, constant
shift, toward the initial weights). Two lrs, two strengths, an LR scheduler, momentum on and off,
gradients of two sizes and a parameter whose grad is None tell the variants apart; every label
comes with the measured ratios behind it. See :mod:`decaylab.audit.classify` for the plan and the
decision rules, :mod:`decaylab.audit.recipes` for optimizers needing extra constructor arguments.

    >>> import torch
    >>> from decaylab.audit import audit_optimizer
    >>> audit_optimizer(torch.optim.AdamW).label
    'decoupled L2 (scaled by lr)'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from decaylab.audit.auditor import audit_target
from decaylab.audit.builder import Target
from decaylab.audit.formats import FORMATS, render, summarize
from decaylab.audit.result import KINDS, AuditResult
from decaylab.audit.runner import DEFAULT_TIMEOUT, run_audit
from decaylab.audit.settings import ProbeSettings
from decaylab.audit.targets import INSTALLED_MODULES, TargetError, resolve_targets


def audit_optimizer(factory: Any, name: str | None = None, settings: ProbeSettings | None = None) -> AuditResult:
    """Audit one optimizer class (or a ``functools.partial`` fixing some of its arguments), in this process."""
    return audit_target(Target.of(factory, name), settings)


def audit(
    targets: Sequence[str] = (),
    *,
    installed: bool = False,
    jobs: int = 2,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = False,
    settings: ProbeSettings | None = None,
) -> list[AuditResult]:
    """Audit command-line style targets (see :mod:`decaylab.audit.targets`) in worker processes."""
    resolved, _ = resolve_targets(targets, installed=installed)
    return run_audit(resolved, settings=settings, jobs=jobs, timeout=timeout, progress=progress)


__all__ = [
    "DEFAULT_TIMEOUT",
    "FORMATS",
    "INSTALLED_MODULES",
    "KINDS",
    "AuditResult",
    "ProbeSettings",
    "Target",
    "TargetError",
    "audit",
    "audit_optimizer",
    "audit_target",
    "render",
    "resolve_targets",
    "run_audit",
    "summarize",
]
