"""Bad input: a ValueError/TypeError that names the argument and what is allowed, nothing touched."""

from __future__ import annotations

import math

import pytest
import torch

from decaylab import SGD, SGDW, AdamW, DecayWrapper

BAD_NUMBERS = [-0.1, math.nan, math.inf, -math.inf]


def fresh() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(-torch.ones(2))]


CONSTRUCTORS = {
    "SGD": lambda ps, **kw: SGD(ps, **{"lr": 0.1, **kw}),
    "SGDW": lambda ps, **kw: SGDW(ps, **{"lr": 0.1, **kw}),
    "AdamW": lambda ps, **kw: AdamW(ps, **kw),
}


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
@pytest.mark.parametrize("argument", ["lr", "weight_decay"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_negative_or_non_finite_numbers_name_the_argument(name: str, argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{argument}: expected a finite number >= 0, got"):
        CONSTRUCTORS[name](fresh(), **{argument: value})


@pytest.mark.parametrize("name", ["SGD", "SGDW"])
@pytest.mark.parametrize("argument", ["momentum", "dampening"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_momentum_names_the_argument(name: str, argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{argument}: expected a finite number >= 0"):
        CONSTRUCTORS[name](fresh(), **{argument: value})


@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_non_numbers_are_type_errors(value) -> None:
    with pytest.raises(TypeError, match=r"^lr: expected a real number"):
        SGDW(fresh(), lr=value)


@pytest.mark.parametrize("weight_norm", [0, 3, 1.5, "l2", None])
def test_weight_norm_other_than_1_or_2(weight_norm) -> None:
    with pytest.raises(ValueError, match=r"^weight_norm: expected one of 1, 2, got"):
        SGDW(fresh(), weight_norm=weight_norm)


def test_weight_norm_contradicting_rule() -> None:
    with pytest.raises(ValueError, match="weight_norm=1 asks for an L1 rule but rule='l2'"):
        SGDW(fresh(), weight_norm=1, rule="l2")


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGDW(ps, scale="paper"),
        lambda ps: AdamW(ps, scale="LR"),
        lambda ps: DecayWrapper(torch.optim.Adam(ps), scale="x"),
    ],
)
def test_unknown_scale_convention(make) -> None:
    with pytest.raises(ValueError, match=r"scale: expected one of 'lr', 'schedule', 'none'"):
        make(fresh())


def test_unknown_rule_lists_the_rules() -> None:
    with pytest.raises(
        ValueError, match=r"^rule: expected one of 'l2', 'l1', 'proximal_l1', 'elastic_net', 'toward_reference'"
    ):
        SGDW(fresh(), rule="l0")


def test_l1_decay_only_with_elastic_net() -> None:
    with pytest.raises(ValueError, match="l1_decay is only used by rule='elastic_net'"):
        AdamW(fresh(), rule="l2", l1_decay=0.1)


def test_schedule_scale_with_zero_lr() -> None:
    with pytest.raises(ValueError, match="scale='schedule'"):
        SGDW(fresh(), lr=0.0, scale="schedule", weight_decay=0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, nesterov=True),
        lambda ps: SGDW(ps, lr=0.1, nesterov=True, momentum=0.9, dampening=0.1),
    ],
)
def test_nesterov_needs_momentum_and_no_dampening(make) -> None:
    with pytest.raises(ValueError, match=r"^nesterov=True requires momentum > 0 and dampening = 0"):
        make(fresh())


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_empty_parameter_list(name: str) -> None:
    with pytest.raises(ValueError, match=r"^params: got an empty parameter list"):
        CONSTRUCTORS[name]([])


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_a_parameter_in_two_groups(name: str) -> None:
    p, q = fresh()
    with pytest.raises(ValueError, match=r"^params: a parameter appears in more than one param group"):
        CONSTRUCTORS[name]([{"params": [p]}, {"params": [p, q]}])


def test_a_single_tensor_instead_of_an_iterable() -> None:
    with pytest.raises(TypeError, match="^params: .* got a single Tensor"):
        SGDW(torch.nn.Parameter(torch.ones(2)))


def test_adam_betas_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"^betas\[1\]: expected a number in \[0, 1\)"):
        AdamW(fresh(), betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="^betas: expected a pair"):
        AdamW(fresh(), betas=0.9)


@pytest.mark.parametrize(
    ("reference", "error", "message"),
    [
        (
            [torch.ones(3), torch.ones(3)],
            ValueError,
            r"reference: item 1 has shape \(3,\) but its parameter has shape \(2,\)",
        ),
        ([torch.ones(3)], ValueError, r"reference: expected 2 tensors \(one per parameter\), got 1"),
        (torch.ones(3), TypeError, "reference: expected a sequence of tensors"),
        ([torch.ones(3), [1.0, 1.0]], TypeError, "reference: item 1 is a list"),
    ],
)
def test_reference_of_the_wrong_shape(reference, error, message) -> None:
    with pytest.raises(error, match=message):
        SGDW(fresh(), weight_decay=0.1, rule="toward_reference", reference=reference)


def test_set_reference_checks_everything_before_storing_anything() -> None:
    ps = fresh()
    opt = SGDW(ps, weight_decay=0.1, rule="toward_reference")
    before = [opt.state[p]["reference"].clone() for p in ps]
    with pytest.raises(ValueError, match="reference: item 1"):
        opt.set_reference([torch.zeros(3), torch.zeros(5)])
    assert all(torch.equal(opt.state[p]["reference"], b) for p, b in zip(ps, before, strict=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1),
        lambda ps: SGDW(ps, lr=0.1, weight_decay=0.1),
        lambda ps: AdamW(ps),
        lambda ps: DecayWrapper(torch.optim.SGD(ps, lr=0.1)),
    ],
)
def test_sparse_gradients_are_rejected_before_any_update(make) -> None:
    ps = fresh()
    opt = make(ps)
    ps[0].grad = torch.ones(3)
    ps[1].grad = torch.ones(2).to_sparse()
    with pytest.raises(TypeError, match="does not support sparse gradients"):
        opt.step()
    assert torch.equal(ps[0].detach(), torch.ones(3)), "the dense parameter was updated before the error"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("weight_decay", -1.0, "^weight_decay: expected a finite number >= 0"),
        ("lr", math.nan, "^lr: expected a finite number >= 0"),
        ("scale", "linear", "^scale: expected one of"),
        ("rule", "l3", "^rule: expected one of"),
    ],
)
def test_a_group_edited_to_a_bad_value_fails_at_step_with_nothing_applied(key: str, value, message: str) -> None:
    ps = fresh()
    opt = SGDW([{"params": [ps[0]]}, {"params": [ps[1]]}], lr=0.1, momentum=0.9, weight_decay=0.1)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt.param_groups[1][key] = value
    with pytest.raises((ValueError, TypeError), match=message):
        opt.step()
    assert torch.equal(ps[0].detach(), torch.ones(3)), "group 0 was stepped before group 1 failed"
    assert not opt.state[ps[0]], "state was created before the error"


def test_add_param_group_is_validated_before_it_is_added() -> None:
    p, q = fresh()
    opt = SGDW([p], lr=0.1)
    with pytest.raises(ValueError, match="^weight_decay"):
        opt.add_param_group({"params": [q], "weight_decay": -1})
    assert len(opt.param_groups) == 1


def test_toward_reference_switched_on_later_without_a_reference() -> None:
    ps = fresh()
    opt = SGDW(ps, lr=0.1, weight_decay=0.1)
    opt.param_groups[0]["rule"] = "toward_reference"
    for p in ps:
        p.grad = torch.zeros_like(p)
    with pytest.raises(ValueError, match="no reference is stored"):
        opt.step()
    opt.set_reference()
    opt.step()


def test_wrapper_rejects_non_optimizers_and_double_wrapping() -> None:
    with pytest.raises(TypeError, match="^optimizer: expected a torch.optim.Optimizer"):
        DecayWrapper(fresh())
    wrapped = DecayWrapper(torch.optim.SGD(fresh(), lr=0.1))
    with pytest.raises(TypeError, match="already a DecayWrapper"):
        DecayWrapper(wrapped)


def test_wrapper_bad_group_option_is_reported_before_the_inner_step() -> None:
    ps = fresh()
    inner = torch.optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "decay_weight_decay": -0.5}], lr=0.1)
    with pytest.raises(ValueError, match="^decay_weight_decay: expected a finite number >= 0"):
        DecayWrapper(inner)


@pytest.mark.parametrize(
    ("name", "argument"),
    [("SGD", "nesterov"), ("SGDW", "nesterov"), ("AdamW", "amsgrad"), ("SGD", "maximize"), ("AdamW", "maximize")],
)
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_switches_take_true_or_false_only(name: str, argument: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"^{argument}: expected True or False, got {value!r}"):
        CONSTRUCTORS[name](fresh(), **{argument: value})
