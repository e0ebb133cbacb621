"""One row of an audit: the label, the measured reasons, and per-optimizer facts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

NO_DECAY = "no decay"
COUPLED_L2 = "coupled L2"
ADAPTIVE_COUPLED = "adaptive-coupled"
DECOUPLED_L2 = "decoupled L2"
L1_SIGN = "L1/sign"
PROXIMAL = "proximal L1"
CONSTANT_SHIFT = "constant shift"
TOWARD_INITIAL = "L2 toward initial weights"
OTHER = "other"
NOT_PROBED = "not probed"

KINDS: tuple[str, ...] = (
    NO_DECAY,
    COUPLED_L2,
    ADAPTIVE_COUPLED,
    DECOUPLED_L2,
    L1_SIGN,
    PROXIMAL,
    CONSTANT_SHIFT,
    TOWARD_INITIAL,
    OTHER,
    NOT_PROBED,
)
"""Label families, in the order reports list them."""

SCALED_KINDS = frozenset({DECOUPLED_L2, L1_SIGN, PROXIMAL, CONSTANT_SHIFT, TOWARD_INITIAL})
"""Kinds whose label names the scale convention."""

SCALE_WORDS = {
    "lr": "scaled by lr",
    "none": "not scaled by lr",
    "lr/initial_lr": "scaled by lr/initial_lr",
    "initial lr": "scaled by the initial lr only",
}


def full_label(kind: str, scale: str) -> str:
    """``"decoupled L2 (scaled by lr)"``; kinds without a scale stay as they are."""
    if kind in SCALED_KINDS and scale in SCALE_WORDS:
        return f"{kind} ({SCALE_WORDS[scale]})"
    return kind


@dataclass
class AuditResult:
    """Everything the audit measured about one optimizer.

    ``status`` is ``ok`` (classified), ``failed`` (could not be probed: ``why`` says why),
    ``timeout`` or ``crashed`` (the worker process ran past the time limit or died).
    """

    name: str
    label: str
    kind: str
    scale: str = ""
    strength_multiplier: float | None = None
    form: str = ""
    momentum: str = ""
    no_grad: str = ""
    default_strength: str = ""
    decays_by_default: bool | None = None
    paths: str = ""
    why: str = ""
    notes: list[str] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    recipe: str = ""
    status: str = "ok"
    seconds: float = 0.0

    @property
    def surprising(self) -> bool:
        return bool(self.surprises)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def not_probed(cls, name: str, why: str, status: str = "failed", seconds: float = 0.0) -> AuditResult:
        return cls(
            name=name,
            label=NOT_PROBED,
            kind=NOT_PROBED,
            why=why,
            status=status,
            seconds=seconds,
        )
