"""The compile study's measurement in this process (the cold/warm pair runs in fresh processes)."""

from __future__ import annotations

import pytest

from benchmarks.compile_cache import measure_one


def test_compiled_first_step_is_measured_with_the_cache_counters() -> None:
    result = measure_one("digits", "AdamW", "l2", steps=3)
    assert result["first_fused_step_s"] >= result["steady_step_s"] > 0
    assert result["compile_s"] == pytest.approx(result["first_fused_step_s"] - result["steady_step_s"])
    counters = result["counters"]
    assert counters["fxgraph_cache_hit"] + counters["fxgraph_cache_miss"] >= 1  # Inductor compiled (or reused) a graph


def test_unknown_optimizer_is_rejected() -> None:
    with pytest.raises(ValueError, match="optimizer: expected 'SGDW' or 'AdamW'"):
        measure_one("digits", "Adam", "l2")
