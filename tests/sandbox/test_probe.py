"""The probe: seed-1 numbers, every row against an independent float64 formula, failures as rows."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch

from decaylab.rules import RULES
from decaylab.sandbox.probe import (
    Probe,
    ProbeSettings,
    builtin_probes,
    format_change,
    format_number,
    json_safe,
    resolve_optimizer,
    run_all,
    run_probe,
    seed_model,
    third_party_probe,
)


@pytest.fixture(scope="module")
def seed():
    return run_all(ProbeSettings())


def after(result, label: str, source: str = "decaylab") -> dict[str, list[float]]:
    row = result.row(label, source)
    assert row.error is None, row.error
    return {p.name: p.after for p in row.params}


def grads(result, label: str, source: str = "decaylab") -> dict[str, list[float]]:
    return {p.name: p.grad for p in result.row(label, source).params}


F32 = dict(rel=1e-6, abs=1e-7)


def test_seed_model_is_the_notebooks_reset() -> None:
    model, images, labels = seed_model(ProbeSettings())
    assert {n: p.tolist() for n, p in model.named_parameters()} == {
        "conv1.weight": [[[[1.0]]]],
        "conv1.bias": [0.0],
        "fc.weight": [[-1.5], [-1.5]],
        "fc.bias": [0.0],
    }
    assert images.tolist() == [[[[1.0]]]]
    assert labels.tolist() == [1]
    assert model.conv1.weight.dtype == torch.float32


@pytest.mark.parametrize(
    ("label", "source", "conv", "fc"),
    [
        ("SGD", "decaylab", 0.99, -1.485),  # coupled L2
        ("SGD", "torch.optim", 0.99, -1.485),
        ("SGDW l2 s=none", "decaylab", 0.9, -1.35),  # the seed's SGDW
        ("SGDW l1 s=none", "decaylab", 0.9, -1.4),  # the seed's SGDW weight_norm=1
        ("penalty L2 + SGD", "decaylab", 0.98, -1.47),
        ("penalty L1 + SGD", "decaylab", 0.99, -1.49),
    ],
)
def test_seed_one_numbers(seed, label: str, source: str, conv: float, fc: float) -> None:
    values = after(seed, label, source)
    assert values["conv1.weight"] == [pytest.approx(conv, **F32)]
    assert values["fc.weight"] == [pytest.approx(fc, **F32)] * 2
    assert values["conv1.bias"] == values["fc.bias"] == [0.0]  # zero stays zero under every seed method


def test_seed_one_penalties_and_their_gradients(seed) -> None:
    l2, l1 = seed.row("penalty L2 + SGD"), seed.row("penalty L1 + SGD")
    assert l2.penalty == pytest.approx(0.55, **F32)
    assert l1.penalty == pytest.approx(0.4, **F32)
    assert grads(seed, "penalty L2 + SGD")["conv1.weight"] == [pytest.approx(0.2, **F32)]
    assert grads(seed, "penalty L2 + SGD")["fc.weight"] == [pytest.approx(-0.3, **F32)] * 2
    assert grads(seed, "penalty L1 + SGD")["conv1.weight"] == [pytest.approx(0.1, **F32)]
    assert grads(seed, "penalty L1 + SGD")["fc.weight"] == [pytest.approx(-0.1, **F32)] * 2
    for row in seed.rows:  # the seed's loss is 0 x cross-entropy: every other gradient is exactly zero
        if row.penalty is None and row.error is None:
            assert all(g == 0.0 for p in row.params for g in p.grad)


def test_decaylab_and_torch_agree_where_semantics_coincide(seed) -> None:
    assert after(seed, "SGD") == after(seed, "SGD", "torch.optim")
    assert after(seed, "AdamW l2 s=lr") == after(seed, "AdamW", "torch.optim")


def test_every_rule_has_a_row_per_scale() -> None:
    result = run_all(ProbeSettings(scales=("lr", "none", "lr")))
    labels = [r.label for r in result.rows if r.label.startswith("SGDW")]
    assert labels == [f"SGDW {rule} s={s}" for s in ("lr", "none") for rule in RULES]
    assert after(result, "SGDW l2 s=lr")["conv1.weight"] == [pytest.approx(0.99, **F32)]


def test_zero_gradient_rows_show_each_rules_shape(seed) -> None:
    assert after(seed, "SGDW proximal_l1 s=none")["fc.weight"] == [pytest.approx(-1.4, **F32)] * 2
    assert after(seed, "SGDW elastic_net s=none")["fc.weight"] == [pytest.approx(-1.25, **F32)] * 2
    assert after(seed, "SGDW toward_reference s=none") == seed.start  # w equals its reference: no pull
    # torch Adam's coupled term is normalised by its own second moment: a sign step of size lr
    assert after(seed, "Adam", "torch.optim")["fc.weight"] == [pytest.approx(-1.4, **F32)] * 2


# -- every row against an independent float64 formula, with a real gradient ----------------------


def soft_threshold(w: float, t: float) -> float:
    return math.copysign(max(abs(w) - t, 0.0), w)


def expected_after(key: str, w: float, g: float, lr: float, lam: float) -> float:
    """One step from weight ``w`` with data-loss gradient ``g``, written out per method (no decaylab code)."""
    sign = math.copysign(1.0, w) if w else 0.0

    def adam(d: float) -> float:  # Adam's first step: m_hat / (sqrt(v_hat) + eps) with m_hat = d, v_hat = d**2
        return d / (abs(d) + 1e-8)

    formulas = {
        "decaylab SGD": lambda: w - lr * (g + lam * w),
        "decaylab SGDW l2 s=none": lambda: (1 - lam) * w - lr * g,
        "decaylab SGDW l2 s=lr": lambda: (1 - lr * lam) * w - lr * g,
        "decaylab SGDW l1 s=none": lambda: w - lam * sign - lr * g,
        "decaylab SGDW l1 s=lr": lambda: w - lr * lam * sign - lr * g,
        "decaylab SGDW proximal_l1 s=none": lambda: soft_threshold(w - lr * g, lam),
        "decaylab SGDW elastic_net s=none": lambda: soft_threshold((1 - lam) * w - lr * g, lam),
        "decaylab SGDW toward_reference s=none": lambda: w - lr * g,  # w is its own reference at step 1
        "decaylab AdamW l2 s=lr": lambda: (1 - lr * lam) * w - lr * adam(g),
        "decaylab penalty L2 + SGD": lambda: w - lr * (g + 2 * lam * w),
        "decaylab penalty L1 + SGD": lambda: w - lr * (g + lam * sign),
        "torch.optim SGD": lambda: w - lr * (g + lam * w),
        "torch.optim Adam": lambda: w - lr * adam(g + lam * w),
        "torch.optim AdamW": lambda: (1 - lr * lam) * w - lr * adam(g),
    }
    return formulas[key]() if key in formulas else math.nan


@pytest.mark.parametrize(
    "settings",
    [
        ProbeSettings(dtype="float64", loss_scale=1.0, scales=("none", "lr")),
        ProbeSettings(
            dtype="float64", loss_scale=2.5, lr=0.03, weight_decay=0.4, fc_weight=0.7, conv1_weight=1.3, conv1_bias=-0.2
        ),
        ProbeSettings(dtype="float64", loss_scale=1.0, lr=0.5, weight_decay=0.05, fc_weight=-0.01, fc_bias=0.3),
    ],
)
def test_rows_match_hand_written_formulas(settings: ProbeSettings) -> None:
    result = run_all(settings)
    data_grad = {p.name: p.grad for p in result.row("SGD", "torch.optim").params}  # no penalty in this row
    assert any(g != 0 for gs in data_grad.values() for g in gs)  # a real gradient, not the seed's zero
    checked = set()
    for row in result.rows:
        key = f"{row.source} {row.label}"
        for p in row.params:
            for w, g, got in zip(p.before, data_grad[p.name], p.after, strict=True):
                want = expected_after(key, w, g, settings.lr, settings.weight_decay)
                if math.isnan(want):
                    continue
                assert got == pytest.approx(want, rel=1e-12, abs=1e-15), (key, p.name)
                checked.add(key)
    assert len(checked) >= 12


def test_a_real_loss_gives_the_cross_entropy_gradient() -> None:
    row = run_all(ProbeSettings(loss_scale=1.0, dtype="float64")).row("SGD", "torch.optim")
    by_name = {p.name: p for p in row.params}
    # equal logits -> softmax (0.5, 0.5), label 1 -> dL/dlogits = (0.5, -0.5); hidden unit relu(1) = 1
    assert by_name["fc.weight"].grad == [0.5, -0.5]
    assert by_name["fc.bias"].grad == [0.0]  # the shared bias sees 0.5 - 0.5
    assert by_name["conv1.weight"].grad == [0.0]  # both fc weights equal: the two paths cancel
    assert row.loss == pytest.approx(math.log(2), rel=1e-15)


# -- third-party optimizers and failures ----------------------------------------------------------


def test_torch_optimizer_sgdw_is_a_constant_shift() -> None:
    pytest.importorskip("torch_optimizer")
    row = run_all(ProbeSettings(), ["torch_optimizer.SGDW"]).row("torch_optimizer.SGDW", "third-party")
    values = {p.name: p.after for p in row.params}
    assert values["conv1.weight"] == [pytest.approx(0.99, **F32)]
    assert values["fc.weight"] == [pytest.approx(-1.51, **F32)] * 2
    assert values["conv1.bias"] == values["fc.bias"] == [pytest.approx(-0.01, **F32)]


def test_resolve_optimizer_finds_classes_at_any_depth() -> None:
    assert resolve_optimizer("torch.optim.SGD") is torch.optim.SGD
    assert resolve_optimizer(" torch.optim.sgd.SGD ") is torch.optim.SGD


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SGDW", "expected module.Class"),
        ("torch..SGD", "expected module.Class"),
        ("no_such_pkg_xyz.Opt", r"cannot find 'no_such_pkg_xyz.Opt'; tried: import no_such_pkg_xyz: No module named"),
        ("torch.optim.Nope", r"tried: torch.optim has no attribute 'Nope'; import torch: .*|tried: .*'Nope'"),
        ("torch.nn.Linear", "is not a torch.optim.Optimizer subclass"),
        ("torch.optim.lr_scheduler.StepLR", "is not a torch.optim.Optimizer subclass"),
    ],
)
def test_resolve_optimizer_errors_say_what_was_tried(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_optimizer(name)


def test_unknown_optimizer_fails_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="optimizer: cannot find"):
        run_all(ProbeSettings(), ["torch.optim.SGD", "nope_pkg.X"])


class ExplodingOptimizer(torch.optim.Optimizer):
    def __init__(self, params, lr: float, weight_decay: float) -> None:
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    def step(self, closure=None):
        raise RuntimeError("boom")


def test_failures_become_rows_that_say_why() -> None:
    settings = ProbeSettings()
    lbfgs = run_probe(third_party_probe("torch.optim.LBFGS"), settings)  # takes no weight_decay
    assert lbfgs.error.startswith("could not construct: TypeError:")
    assert "weight_decay" in lbfgs.error
    assert lbfgs.params == []
    boom = run_probe(
        Probe("boom", "third-party", "-", lambda p, s: ExplodingOptimizer(p, s.lr, s.weight_decay)), settings
    )
    assert boom.error == "step failed: RuntimeError: boom"


def test_an_optimizer_that_writes_to_grad_is_visible() -> None:
    class GradWriter(torch.optim.SGD):
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.grad.add_(p, alpha=group["weight_decay"])  # coupled decay done in place
            return super().step(closure)

    row = run_probe(
        Probe("w", "third-party", "-", lambda p, s: GradWriter(p, lr=s.lr, weight_decay=0.1)), ProbeSettings()
    )
    conv = next(p for p in row.params if p.name == "conv1.weight")
    assert conv.grad == [0.0]
    assert conv.grad_after == [pytest.approx(0.1, **F32)]


# -- settings, output formats and number display --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(lr=0.0), "lr: expected a number > 0"),
        (dict(lr=math.inf), "lr: expected a finite number"),
        (dict(weight_decay=-0.1), "weight_decay: expected a finite number >= 0"),
        (dict(fc_weight=math.nan), "fc_weight: expected a finite number"),
        (dict(loss_scale="1"), "loss_scale: expected a finite number"),
        (dict(scales=()), "scales: expected one or more of lr, schedule, none"),
        (dict(scales=("cosine",)), "scales: expected one or more"),
        (dict(dtype="float16"), "dtype: expected one of float32, float64"),
    ],
)
def test_settings_reject_bad_values_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProbeSettings(**changes)


def test_json_is_strict_and_complete(seed) -> None:
    data = json.loads(seed.to_json())
    assert data["settings"]["lr"] == 0.1
    assert len(data["rows"]) == len(builtin_probes(ProbeSettings()))
    sgd = data["rows"][0]
    assert sgd["label"] == "SGD"
    assert sgd["params"][0]["change"] == [pytest.approx(-0.01, **F32)]
    assert json_safe({"a": [math.nan, 1.0, math.inf]}) == {"a": [None, 1.0, None]}


def test_csv_has_one_line_per_entry_and_error_rows(seed) -> None:
    result = run_all(ProbeSettings(), ["torch.optim.LBFGS"])
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    ok = [r for r in rows if not r["error"]]
    assert len(ok) == (len(result.rows) - 1) * 5  # conv1.weight, conv1.bias, fc.weight x2, fc.bias
    (failed,) = [r for r in rows if r["error"]]
    assert failed["method"] == "torch.optim.LBFGS"
    penalty = [r for r in rows if r["method"] == "penalty L2 + SGD" and r["param"] == "fc.weight"]
    assert [float(r["grad"]) for r in penalty] == [pytest.approx(-0.3, **F32)] * 2
    assert float(penalty[0]["penalty"]) == pytest.approx(0.55, **F32)


@pytest.mark.parametrize(
    ("value", "dtype", "text"),
    [
        (float(torch.tensor(0.99)), "float32", "0.99"),
        (float(torch.tensor(-1.485)), "float32", "-1.485"),
        (float(torch.tensor(0.55)), "float32", "0.55"),
        (-0.0, "float32", "0"),
        (1e-9, "float32", "1e-09"),
        (0.1 + 0.2, "float64", "0.3"),
        (0.900000009999999, "float64", "0.90000001"),
    ],
)
def test_format_number(value: float, dtype: str, text: str) -> None:
    assert format_number(value, dtype) == text


def test_format_change_drops_digits_lost_to_cancellation() -> None:
    assert format_change(1.0, float(torch.tensor(0.99))) == "-0.01"
    assert format_change(-1.5, float(torch.tensor(-1.485))) == "0.015"
    assert format_change(0.0, float(torch.tensor(-0.01))) == "-0.01"
    assert format_change(0.0, 0.0) == "0"
    assert format_change(1.0, 1.0 + 1e-12, "float64") == "0"
    assert format_change(1e-3, 2e-3, "float64") == "0.001"
