"""``decaylab probe``: seed 1 as data. One step of every method on a tiny model with known weights.

The model is the seed notebook's: :class:`~decaylab.models.SimpleCNN` on a 1x1 one-channel image
of ones, label 1, one 1x1 convolution and a 2-class ``fc``, with ``conv1.weight = 1``,
``conv1.bias = 0``, ``fc.weight = -1.5`` (2 entries) and a one-element ``fc.bias = 0``. The loss
is ``loss_scale * cross_entropy`` (the seed's ``* 0``: a zero gradient, so only the regularizer
moves the weights), plus ``lam * sum|w|**p`` for the penalty methods. Each method starts from a
fresh model, runs ``backward`` once and takes one ``step``.

Seed numbers (lr 0.1, weight_decay 0.1), ``conv1.weight`` / ``fc.weight`` after one step:
coupled SGD 0.99 / -1.485; SGDW L2 0.9 / -1.35; SGDW L1 0.9 / -1.4; penalty L2 0.98 / -1.47
(penalty 0.55, grads 0.2 / -0.3); penalty L1 0.99 / -1.49 (penalty 0.4, grads 0.1 / -0.1);
torch_optimizer.SGDW 0.3.0 0.99 / -1.51 and a zero bias -> -0.01 (a constant shift).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from decaylab.models import SimpleCNN
from decaylab.optim import SGD, SGDW, AdamW
from decaylab.optim._validation import check_nonnegative
from decaylab.penalty import WeightRegularization
from decaylab.rules import RULES, SCALES
from decaylab.sandbox.common import check_dtype, json_safe

SOURCES: tuple[str, ...] = ("decaylab", "torch.optim", "third-party")


@dataclass(frozen=True)
class ProbeSettings:
    """The probe's inputs; defaults are seed 1's. Every check names the field it rejects."""

    lr: float = 0.1
    weight_decay: float = 0.1
    conv1_weight: float = 1.0
    conv1_bias: float = 0.0
    fc_weight: float = -1.5
    fc_bias: float = 0.0
    loss_scale: float = 0.0
    scales: tuple[str, ...] = ("none",)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if check_nonnegative("lr", self.lr) == 0:
            raise ValueError("lr: expected a number > 0, got 0")
        check_nonnegative("weight_decay", self.weight_decay)
        for name in ("conv1_weight", "conv1_bias", "fc_weight", "fc_bias", "loss_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        scales = tuple(self.scales)
        if not scales or any(s not in SCALES for s in scales):
            raise ValueError(f"scales: expected one or more of {', '.join(SCALES)}, got {list(scales)}")
        object.__setattr__(self, "scales", tuple(dict.fromkeys(scales)))
        check_dtype(self.dtype)


def seed_model(settings: ProbeSettings) -> tuple[SimpleCNN, torch.Tensor, torch.Tensor]:
    """The seed's ``reset()``: the model with the settings' weights, the input (ones) and the label (1)."""
    dtype = check_dtype(settings.dtype)
    images = torch.ones(1, 1, 1, 1, dtype=dtype)
    labels = torch.ones(1, dtype=torch.long)
    model = SimpleCNN(img_size=(1, 1), in_channels=1, num_classes=2, num_layers=1, num_channels=1, kernel_size=1)
    model.fc.bias = nn.Parameter(torch.zeros(1))  # the seed's one-element bias (broadcast over both logits)
    model = model.to(dtype)
    with torch.no_grad():
        model.conv1.weight.fill_(settings.conv1_weight)
        model.conv1.bias.fill_(settings.conv1_bias)
        model.fc.weight.fill_(settings.fc_weight)
        model.fc.bias.fill_(settings.fc_bias)
    return model, images, labels


OptimizerFactory = Callable[[list[nn.Parameter], ProbeSettings], torch.optim.Optimizer]


@dataclass(frozen=True)
class Probe:
    """One row of the probe: how to build the optimizer, and whether a penalty ``lam*sum|w|**p`` joins the loss."""

    label: str
    source: str
    rule: str
    make: OptimizerFactory
    penalty_p: float | None = None


def _sgdw(rule: str, scale: str) -> OptimizerFactory:
    def make(params: list[nn.Parameter], s: ProbeSettings) -> torch.optim.Optimizer:
        l1 = s.weight_decay if rule == "elastic_net" else 0.0
        return SGDW(params, lr=s.lr, weight_decay=s.weight_decay, rule=rule, l1_decay=l1, scale=scale)

    return make


_SGDW_RULES = {
    "l2": "w -= s*lam*w",
    "l1": "w -= s*lam*sign(w)",
    "proximal_l1": "after the step: |w| -= s*lam, stop at 0",
    "elastic_net": "l2, then proximal l1",
    "toward_reference": "w -= s*lam*(w - w0)",
}


def builtin_probes(settings: ProbeSettings) -> list[Probe]:
    """decaylab's methods (SGD coupled, SGDW under every rule and each chosen scale, AdamW, the two
    penalties with torch.optim.SGD as in the seed), then torch.optim's SGD, Adam and AdamW."""
    probes = [Probe("SGD", "decaylab", "g += lam*w", lambda p, s: SGD(p, lr=s.lr, weight_decay=s.weight_decay))]
    for scale in settings.scales:
        for rule in RULES:
            probes.append(Probe(f"SGDW {rule} s={scale}", "decaylab", _SGDW_RULES.get(rule, rule), _sgdw(rule, scale)))
    probes += [
        Probe(
            "AdamW l2 s=lr",
            "decaylab",
            "w -= lr*lam*w, Adam",
            lambda p, s: AdamW(p, lr=s.lr, weight_decay=s.weight_decay, scale="lr"),
        ),
        Probe("penalty L2 + SGD", "decaylab", "loss += lam*sum w^2", lambda p, s: torch.optim.SGD(p, lr=s.lr), 2.0),
        Probe("penalty L1 + SGD", "decaylab", "loss += lam*sum|w|", lambda p, s: torch.optim.SGD(p, lr=s.lr), 1.0),
        Probe(
            "SGD",
            "torch.optim",
            "g += lam*w",
            lambda p, s: torch.optim.SGD(p, lr=s.lr, weight_decay=s.weight_decay),
        ),
        Probe(
            "Adam",
            "torch.optim",
            "g += lam*w, Adam",
            lambda p, s: torch.optim.Adam(p, lr=s.lr, weight_decay=s.weight_decay),
        ),
        Probe(
            "AdamW",
            "torch.optim",
            "w -= lr*lam*w, Adam",
            lambda p, s: torch.optim.AdamW(p, lr=s.lr, weight_decay=s.weight_decay),
        ),
    ]
    return probes


def resolve_optimizer(name: str) -> type:
    """Import ``module.Class`` (any split point: ``torch.optim.SGD``, ``torch_optimizer.SGDW``).

    Raises ValueError naming every import and lookup that was tried, or why the object found is
    not an optimizer class.
    """
    parts = name.strip().split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise ValueError(f"optimizer: expected module.Class (e.g. torch_optimizer.SGDW), got {name!r}")
    tried = []
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError as error:
            tried.append(f"import {module_name}: {error}")
            continue
        for i, attribute in enumerate(parts[cut:]):
            if not hasattr(obj, attribute):
                tried.append(f"{'.'.join(parts[: cut + i])} has no attribute {attribute!r}")
                break
            obj = getattr(obj, attribute)
        else:
            if not isinstance(obj, type) or not issubclass(obj, torch.optim.Optimizer):
                raise ValueError(f"optimizer: {name!r} is not a torch.optim.Optimizer subclass (it is {obj!r})")
            return obj
    raise ValueError(f"optimizer: cannot find {name!r}; tried: " + "; ".join(tried))


def third_party_probe(name: str) -> Probe:
    """A probe row for ``module.Class``, constructed as ``Class(params, lr=lr, weight_decay=weight_decay)``."""
    cls = resolve_optimizer(name)
    return Probe(
        name.strip(),
        "third-party",
        "its own weight_decay",
        lambda p, s: cls(p, lr=s.lr, weight_decay=s.weight_decay),
    )


@dataclass
class ParamChange:
    """One parameter's values before the step, its gradient (as the optimizer saw it, and after the
    step in case the optimizer wrote to it), and its values after the step."""

    name: str
    before: list[float]
    grad: list[float]
    grad_after: list[float]
    after: list[float]

    @property
    def change(self) -> list[float]:
        return [a - b for a, b in zip(self.after, self.before, strict=True)]


@dataclass
class ProbeRow:
    label: str
    source: str
    rule: str
    loss: float | None = None
    penalty: float | None = None
    params: list[ParamChange] = field(default_factory=list)
    error: str | None = None


def _values(t: torch.Tensor | None, like: torch.Tensor) -> list[float]:
    """A tensor's entries as Python floats (exact, in the tensor's dtype); a missing grad reads as NaN."""
    if t is None:
        return [math.nan] * like.numel()
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def run_probe(probe: Probe, settings: ProbeSettings) -> ProbeRow:
    """One fresh model, one backward, one step. An optimizer that fails to build or step gives a row
    whose ``error`` says why (third-party code can raise anything, so every exception is caught)."""
    model, images, labels = seed_model(settings)
    row = ProbeRow(probe.label, probe.source, probe.rule)
    named = list(model.named_parameters())
    before = {n: _values(p, p) for n, p in named}
    try:
        optimizer = probe.make([p for _, p in named], settings)
    except Exception as error:
        row.error = f"could not construct: {type(error).__name__}: {error}"
        return row
    loss = nn.functional.cross_entropy(model(images), labels) * settings.loss_scale
    if probe.penalty_p is not None:
        penalty = WeightRegularization(model, settings.weight_decay, p=probe.penalty_p)
        term = penalty.penalty()
        row.penalty = float(term.detach())
        loss = loss + term
    row.loss = float(loss.detach())
    loss.backward()
    grads = {n: _values(p.grad, p) for n, p in named}
    try:
        optimizer.step()
    except Exception as error:
        row.error = f"step failed: {type(error).__name__}: {error}"
        return row
    row.params = [ParamChange(n, before[n], grads[n], _values(p.grad, p), _values(p, p)) for n, p in named]
    return row


#: significant digits shown per dtype: float32 carries ~7 (its 0.99 is 0.99000000954); float64 rows show
#: 10 to keep the table narrow (JSON and CSV have every digit)
SIGNIFICANT_DIGITS: dict[str, int] = {"float32": 7, "float64": 10}


def format_number(value: float, dtype: str = "float32") -> str:
    """``value`` to the digits shown for its dtype: float32 ``0.9900000095`` -> ``"0.99"``; ``-0.0`` -> ``"0"``."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{SIGNIFICANT_DIGITS[dtype]}g}"
    return "0" if float(text) == 0 else text


def format_change(before: float, after: float, dtype: str = "float32") -> str:
    """``after - before`` rounded to the absolute precision of the operands (the difference of two
    float32 numbers near 1 is only known to ~1e-7): float32 ``0.99 - 1`` -> ``"-0.01"``, not
    ``"-0.009999990"``."""
    change = after - before
    magnitude = max(abs(before), abs(after))
    if not math.isfinite(change) or magnitude == 0:
        return format_number(change, dtype)
    decimals = SIGNIFICANT_DIGITS[dtype] - 1 - math.floor(math.log10(magnitude))
    return format_number(round(change, decimals), dtype)


def format_entries(texts: Sequence[str]) -> str:
    """One text when every entry reads the same (``fc.weight``'s two -1.5), else all of them."""
    return texts[0] if len(set(texts)) == 1 else ", ".join(texts)


@dataclass
class ProbeResult:
    settings: ProbeSettings
    rows: list[ProbeRow]
    start: dict[str, list[float]]

    def row(self, label: str, source: str = "decaylab") -> ProbeRow:
        for r in self.rows:
            if r.label == label and r.source == source:
                return r
        raise KeyError(f"no probe row {label!r} from {source!r}")

    def to_dict(self) -> dict:
        rows = []
        for r in self.rows:
            record = asdict(r)
            for p, change in zip(record["params"], r.params, strict=True):
                p["change"] = change.change
            rows.append(record)
        return {"settings": asdict(self.settings), "start": self.start, "rows": rows}

    def to_json(self) -> str:
        """Strict JSON: a missing gradient or a non-finite value is ``null``."""
        return json.dumps(json_safe(self.to_dict()), indent=2, allow_nan=False)

    def to_csv(self) -> str:
        """One line per method, parameter and entry (a failed method: one line with its error)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            [
                "source",
                "method",
                "rule",
                "param",
                "index",
                "before",
                "grad",
                "grad_after",
                "after",
                "change",
                "loss",
                "penalty",
                "error",
            ]
        )
        for r in self.rows:
            optional = ["" if v is None else repr(v) for v in (r.loss, r.penalty)]
            if r.error is not None:
                writer.writerow([r.source, r.label, r.rule, "", "", "", "", "", "", "", *optional, r.error])
                continue
            for p in r.params:
                for i, values in enumerate(zip(p.before, p.grad, p.grad_after, p.after, p.change, strict=True)):
                    writer.writerow([r.source, r.label, r.rule, p.name, i, *map(repr, values), *optional, ""])
        return buffer.getvalue()


def run_all(settings: ProbeSettings, optimizers: Sequence[str] = ()) -> ProbeResult:
    """Every built-in probe, then one per ``module.Class`` in ``optimizers`` (resolved first, so an
    unknown name fails before anything runs)."""
    extra = [third_party_probe(name) for name in optimizers]
    model, _, _ = seed_model(settings)
    start = {n: _values(p, p) for n, p in model.named_parameters()}
    rows = [run_probe(probe, settings) for probe in [*builtin_probes(settings), *extra]]
    return ProbeResult(settings, rows, start)
