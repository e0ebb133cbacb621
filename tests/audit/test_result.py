"""AuditResult: labels with their scale, rows for optimizers that could not be probed, round trips."""

from __future__ import annotations

from decaylab.audit.result import (
    ADAPTIVE_COUPLED,
    COUPLED_L2,
    DECOUPLED_L2,
    NOT_PROBED,
    PROXIMAL,
    AuditResult,
    full_label,
)


def test_full_label_names_the_scale_of_decoupled_kinds_only():
    assert full_label(DECOUPLED_L2, "lr") == "decoupled L2 (scaled by lr)"
    assert full_label(DECOUPLED_L2, "none") == "decoupled L2 (not scaled by lr)"
    assert full_label(PROXIMAL, "lr/initial_lr") == "proximal L1 (scaled by lr/initial_lr)"
    assert full_label(COUPLED_L2, "lr") == "coupled L2"
    assert full_label(ADAPTIVE_COUPLED, "") == "adaptive-coupled"


def test_not_probed_rows_say_why_and_round_trip():
    row = AuditResult.not_probed("pkg.X", "no result within the time limit", status="timeout", seconds=2.0)
    assert (row.label, row.kind, row.status, row.why) == (
        NOT_PROBED,
        NOT_PROBED,
        "timeout",
        "no result within the time limit",
    )
    assert not row.surprising
    assert AuditResult.from_dict({**row.to_dict(), "unknown_key": 1}) == row
