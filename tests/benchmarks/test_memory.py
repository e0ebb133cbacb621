"""The allocation profile sees temporaries and nothing else."""

from __future__ import annotations

import torch

from benchmarks.memory import allocation_profile, peak_transient_bytes

MB4 = 1000 * 1000 * 4


def test_two_live_temporaries_are_the_peak() -> None:
    x = torch.randn(1000, 1000)

    def two_temporaries() -> torch.Tensor:
        y = x * 2  # 4 MB
        return y + 1  # another 4 MB while y is alive

    profile = allocation_profile(two_temporaries)
    assert 2 * MB4 <= profile.peak_bytes < 2 * MB4 + 4096
    assert profile.largest_bytes == MB4
    assert profile.kept_bytes < 4096  # the result was dropped


def test_in_place_work_allocates_nothing() -> None:
    x, y = torch.randn(1000, 1000), torch.randn(1000, 1000)
    assert peak_transient_bytes(lambda: x.add_(y, alpha=0.5)) < 4096


def test_bytes_kept_by_the_call_are_reported() -> None:
    kept = []
    profile = allocation_profile(lambda: kept.append(torch.zeros(1000, 1000)))
    assert profile.kept_bytes >= MB4
