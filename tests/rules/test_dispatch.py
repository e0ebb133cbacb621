from __future__ import annotations

import pytest
import torch

from decaylab.rules import RULES, apply_after_update, apply_before_update


def test_every_rule_has_a_before_or_after_part() -> None:
    for rule in RULES:
        w = [torch.tensor([1.0, -0.5])]
        ref = [torch.tensor([0.5, 0.5])]
        apply_before_update(rule, w, scale=1.0, weight_decay=0.1, references=ref, foreach=False)
        apply_after_update(rule, w, scale=1.0, weight_decay=0.1, l1_decay=0.05, foreach=False)
        assert not torch.equal(w[0], torch.tensor([1.0, -0.5])), f"{rule} changed nothing"


def test_elastic_net_shrinks_then_thresholds() -> None:
    w = [torch.tensor([1.0, 0.1, -2.0])]
    apply_before_update("elastic_net", w, scale=1.0, weight_decay=0.5, foreach=False)
    apply_after_update("elastic_net", w, scale=1.0, weight_decay=0.5, l1_decay=0.1, foreach=False)
    torch.testing.assert_close(w[0], torch.tensor([0.4, 0.0, -0.9]))


def test_toward_reference_without_references_is_an_error() -> None:
    with pytest.raises(ValueError, match="toward_reference"):
        apply_before_update("toward_reference", [torch.ones(1)], scale=1.0, weight_decay=0.1, foreach=False)


def test_unknown_rule_lists_the_rules() -> None:
    with pytest.raises(ValueError, match="rule: expected one of 'l2', 'l1'"):
        apply_before_update("l3", [torch.ones(1)], scale=1.0, weight_decay=0.1, foreach=False)
