"""Traffic accounting and the bandwidth meter (no timing assertions)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.bandwidth import Bandwidth, BandwidthMeter, floor_seconds, same_streams_kernel, same_streams_seconds
from benchmarks.cases import ADAMW_TRAFFIC, PENALTY_TRAFFIC, SGD_TRAFFIC


def test_traffic_of_each_step() -> None:
    assert (SGD_TRAFFIC.moved, SGD_TRAFFIC.footprint) == (5, 3)  # w, g, buf read; w, buf written
    assert (ADAMW_TRAFFIC.moved, ADAMW_TRAFFIC.footprint) == (7, 4)  # w, g, m, v read; w, m, v written
    assert (PENALTY_TRAFFIC.moved, PENALTY_TRAFFIC.footprint) == (3, 2)  # w, g read; g written
    assert SGD_TRAFFIC.bytes_moved(1000) == 5 * 1000 * 4
    assert ADAMW_TRAFFIC.footprint_bytes(10) == 4 * 10 * 4


def test_floor_is_bytes_over_bandwidth() -> None:
    bw = Bandwidth(footprint_bytes=1, bytes_per_second=2e10, kernel="add", per_kernel={"add": 2e10})
    assert floor_seconds(SGD_TRAFFIC, 1_000_000, bw) == pytest.approx(20e6 / 2e10)
    assert bw.gb_per_s == 20


@pytest.mark.parametrize("footprint", [12, 4096, 3 * 2**20])
def test_meter_reports_the_best_kernel_and_leaves_its_buffer_intact(footprint: int) -> None:
    meter = BandwidthMeter(3 * 2**20)
    bw = meter.measure(footprint, repeats=2)
    assert set(bw.per_kernel) == {"scale", "add", "fma"}
    assert bw.kernel == max(bw.per_kernel, key=bw.per_kernel.__getitem__)
    assert bw.bytes_per_second == bw.per_kernel[bw.kernel] > 0
    assert all(math.isfinite(v) for v in bw.per_kernel.values())
    assert bw.footprint_bytes == max(12, footprint)
    assert torch.equal(meter._pool, torch.ones_like(meter._pool))  # nothing drifted toward overflow


def test_the_same_streams_kernel_is_the_one_moving_as_many_streams() -> None:
    assert same_streams_kernel(PENALTY_TRAFFIC) == "add"  # g += f(w) reads two streams and writes one, as a += b
    assert same_streams_kernel(SGD_TRAFFIC) is None  # no kernel reads three and writes two
    assert same_streams_kernel(ADAMW_TRAFFIC) is None
    bw = Bandwidth(footprint_bytes=1, bytes_per_second=3e10, kernel="scale", per_kernel={"scale": 3e10, "add": 2e10})
    assert same_streams_seconds(PENALTY_TRAFFIC, 1_000_000, bw) == pytest.approx(12e6 / 2e10)
    assert floor_seconds(PENALTY_TRAFFIC, 1_000_000, bw) == pytest.approx(12e6 / 3e10)  # the floor: the best kernel
    assert same_streams_seconds(SGD_TRAFFIC, 1_000_000, bw) is None
