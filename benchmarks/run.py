"""Optimizer steps and the penalty's gradient mode against the memory-bandwidth floor, in one run.

    python -m benchmarks.run [--size resnet50|digits|both] [--json PATH] [--quick] [--only TEXT]

For every candidate (see :mod:`benchmarks.cases`) it prints the median step time, the floor of
that step measured in the same run (bytes moved / in-place bandwidth, see
:mod:`benchmarks.bandwidth`), the ratio to the floor, the ratio to torch's fastest equivalent
(``x torch``: its own step for L2, the same traffic; for rules torch.optim lacks, its fused step
with the rule as passes around it, the same update), the ratio to torch's plain step (``x base``: L2 decay
only, less work), the ratios to the third-party libraries, the first step's time (the compile,
for ``fused``) and the peak memory a step allocates (see :mod:`benchmarks.memory`).

Measuring on a shared machine: all candidates of a family and the bandwidth kernels are
interleaved, round after round (each round starts at a different candidate); a candidate's time
is the median over rounds of its per-round median step, and its ratio to the floor is the median
over rounds of (its step time / the floor measured in that round).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from benchmarks import compile_cache
from benchmarks.bandwidth import (
    BandwidthMeter,
    call_seconds,
    floor_seconds,
    median_seconds,
    same_streams_kernel,
    same_streams_seconds,
)
from benchmarks.cases import (
    FAMILIES,
    THIRD_PARTY,
    TORCH_LIBRARIES,
    Candidate,
    Runner,
    Workspace,
    base_steps,
    equivalents,
)
from benchmarks.device import DEVICES, describe, resolve_device, synchronizer
from benchmarks.memory import allocation_profile
from benchmarks.shapes import digits_shapes, resnet50_shapes

SIZES = {"resnet50": resnet50_shapes, "digits": digits_shapes}
TARGETS = {"sgd": 1.25, "adamw": 1.25, "penalty": 1.2}  # x floor, at the ResNet-50 size
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Settings:
    rounds: int
    steps: int  # timed steps per candidate per round
    warmup: int  # untimed steps before them
    bandwidth_repeats: int

    @staticmethod
    def for_size(size: str, quick: bool, device: torch.device = CPU) -> Settings:
        if size == "digits" or device.type == "cuda":  # microsecond or sub-millisecond steps: many of them
            return Settings(rounds=3, steps=50, warmup=10, bandwidth_repeats=50) if quick else Settings(7, 200, 20, 200)
        return Settings(rounds=2, steps=3, warmup=1, bandwidth_repeats=3) if quick else Settings(7, 7, 2, 7)


def _counters() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {
        "fxgraph_cache_hit": counters["inductor"]["fxgraph_cache_hit"],
        "fxgraph_cache_miss": counters["inductor"]["fxgraph_cache_miss"],
    }


def _time_steps(runner: Runner, settings: Settings, device: torch.device = CPU) -> float:
    """One round's step time (see :func:`benchmarks.bandwidth.call_seconds`)."""
    runner.prepare()
    return call_seconds(runner.step, settings.steps, settings.warmup, device)


def _setup(candidate: Candidate, device: torch.device = CPU) -> tuple[Runner, dict[str, Any]]:
    """Build and take the first step (state; the compile for ``fused``), timed on its own."""
    sync = synchronizer(device)
    runner = candidate.build()
    runner.prepare()
    before = _counters()
    first = median_seconds(runner.step, repeats=1, warmup=0, sync=sync)
    if candidate.impl == "fused" and runner.compile_seconds() is None:  # first momentum step: eager
        first = median_seconds(runner.step, repeats=1, warmup=0, sync=sync)
    after = _counters()
    info = {"first_step_s": first, "compile_s": runner.compile_seconds()}
    info["cache"] = {k: after[k] - before[k] for k in after}
    return runner, info


def measure_family(
    family: str, shapes: list[tuple[int, ...]], settings: Settings, only: list[str], log, device: torch.device = CPU
) -> tuple[list[dict], dict]:
    ws = Workspace(shapes, device=device)
    candidates = [c for c in FAMILIES[family](ws) if not only or any(text in c.key for text in only)]
    if not candidates:
        return [], {}
    runners, first = {}, {}
    for c in candidates:
        log(f"  setting up {c.key}")
        runners[c.key], first[c.key] = _setup(c, device)
    footprints = sorted({c.traffic.footprint_bytes(ws.numel) for c in candidates})
    meter = BandwidthMeter(max(footprints), device)
    times: dict[str, list[float]] = {c.key: [] for c in candidates}
    bandwidth: dict[int, list] = {f: [] for f in footprints}
    for r in range(settings.rounds):
        log(f"  round {r + 1}/{settings.rounds}")
        for f in footprints:
            bandwidth[f].append(meter.measure(f, settings.bandwidth_repeats))
        order = candidates[r % len(candidates) :] + candidates[: r % len(candidates)]
        for c in order:
            times[c.key].append(_time_steps(runners[c.key], settings, device))
    param_bytes = ws.numel * 4
    rows = []
    for c in candidates:
        runner = runners[c.key]
        runner.prepare()
        memory = allocation_profile(runner.step, device)
        f = c.traffic.footprint_bytes(ws.numel)
        floors = [floor_seconds(c.traffic, ws.numel, bw) for bw in bandwidth[f]]
        ratios = [t / fl for t, fl in zip(times[c.key], floors, strict=True)]
        kernel = same_streams_kernel(c.traffic)
        same_streams = {}
        if kernel is not None:
            same = [same_streams_seconds(c.traffic, ws.numel, bw) for bw in bandwidth[f]]
            same_streams = {
                "same_streams_kernel": kernel,
                "x_same_streams": statistics.median(t / k for t, k in zip(times[c.key], same, strict=True)),
            }
        rows.append(
            {
                "family": family,
                "library": c.library,
                "optimizer": c.optimizer,
                "rule": c.rule,
                "impl": c.impl,
                "note": c.note,
                "key": c.key,
                "step_ms": 1e3 * statistics.median(times[c.key]),
                "rounds_ms": [1e3 * t for t in times[c.key]],
                "floor_ms": 1e3 * statistics.median(floors),
                "x_floor": statistics.median(ratios),
                **same_streams,
                "bytes_moved": c.traffic.bytes_moved(ws.numel),
                "footprint_bytes": f,
                "peak_bytes": memory.peak_bytes,
                "peak_x_params": memory.peak_bytes / param_bytes,
                "largest_allocation_bytes": memory.largest_bytes,
                "state_bytes": runner.state_bytes(),
                **first[c.key],
            }
        )
    _compare(rows, candidates)
    summary = {
        str(f): {
            "gb_per_s_median": statistics.median(bw.gb_per_s for bw in bandwidth[f]),
            "rounds": [
                {"gb_per_s": bw.gb_per_s, "kernel": bw.kernel, **{k: v / 1e9 for k, v in bw.per_kernel.items()}}
                for bw in bandwidth[f]
            ],
        }
        for f in footprints
    }
    del runners, meter, ws
    gc.collect()
    return rows, summary


def _compare(rows: list[dict], candidates: list[Candidate]) -> None:
    """Ratios of every decaylab row to the fastest row of each library that computes its update
    (``x_torch``, ``x_torch_optimizer``, ``x_pytorch_optimizer``) and to torch's fastest plain step
    (``x_base``)."""
    by_key = {r["key"]: r for r in rows}

    def fastest(matches: list[Candidate]) -> dict | None:
        return min((by_key[m.key] for m in matches), key=lambda m: m["step_ms"], default=None)

    for row, c in zip(rows, candidates, strict=True):
        if c.library != "decaylab":
            continue
        for library in (*TORCH_LIBRARIES, *THIRD_PARTY):
            best = fastest(equivalents(c, candidates, library))
            if best is None:
                continue
            name = "torch" if library in TORCH_LIBRARIES else library
            row[f"x_{name}"] = row["step_ms"] / best["step_ms"]
            row[f"{name}_best"] = f"{best['library']}.{best['optimizer']} {best['impl']}"
        base = fastest(base_steps(c, candidates))
        if base is not None:
            row["x_base"] = row["step_ms"] / base["step_ms"]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(size: str, info: dict) -> str:
    lines = [
        f"\n== {size}: {info['params']:,} parameters in {info['tensors']} tensors, on {info.get('device', 'cpu')}, "
        f"{info['threads']} threads ==",
        "bandwidth (best in-place kernel, median over rounds): "
        + ", ".join(
            f"{int(f) / 1e6:.0f} MB footprint {v['gb_per_s_median']:.1f} GB/s" for f, v in info["bandwidth"].items()
        ),
    ]
    header = (
        f"{'optimizer':<25}{'rule':<17}{'impl':<14}{'step ms':>9}{'floor ms':>9}{'x floor':>8}"
        f"{'x torch':>8}  {'(torch best)':<39}{'x base':>7}{'x TO':>6}{'x PO':>6}{'peak MB':>9}{'x par':>6}{'1st s':>7}"
    )
    for family in ("sgd", "adamw", "penalty"):
        rows = [r for r in info["rows"] if r["family"] == family]
        if not rows:
            continue
        lines += ["", header]
        for r in rows:
            name = r["optimizer"] if r["library"] == "decaylab" else f"{r['library']}.{r['optimizer']}"
            lines.append(
                f"{name[:24]:<25}{r['rule'][:16]:<17}{r['impl']:<14}{r['step_ms']:>9.3f}{r['floor_ms']:>9.3f}"
                f"{r['x_floor']:>8.2f}{_fmt(r.get('x_torch'), '.2f'):>8}  {r.get('torch_best', '')[:38]:<39}"
                f"{_fmt(r.get('x_base'), '.2f'):>7}{_fmt(r.get('x_torch_optimizer'), '.2f'):>6}{_fmt(r.get('x_pytorch_optimizer'), '.2f'):>6}"
                f"{r['peak_bytes'] / 1e6:>9.1f}{r['peak_x_params']:>6.2f}{r['first_step_s']:>7.2f}"
            )
    return "\n".join(lines)


def targets(info: dict) -> list[dict]:
    """Issue 5's targets, row by row (ResNet-50 size): fused SGDW/AdamW and the penalty's best mode."""
    out = []
    for r in info["rows"]:
        if r["library"] != "decaylab":
            continue
        if r["family"] in ("sgd", "adamw") and r["optimizer"] in ("SGDW", "AdamW") and r["impl"] == "fused":
            met = r["x_floor"] <= TARGETS[r["family"]] and r.get("x_torch", 0) <= 1.0
            out.append(
                {
                    "row": r["key"],
                    "x_floor": r["x_floor"],
                    "x_torch": r.get("x_torch"),
                    "x_base": r.get("x_base"),
                    "met": met,
                }
            )
    for rule in ("p=2", "p=1"):
        rows = [
            r for r in info["rows"] if r["family"] == "penalty" and r["library"] == "decaylab" and r["rule"] == rule
        ]
        if rows:
            best = min(rows, key=lambda r: r["x_floor"])
            out.append(
                {
                    "row": best["key"],
                    "x_floor": best["x_floor"],
                    "met": best["x_floor"] <= TARGETS["penalty"],
                    **{k: best[k] for k in ("same_streams_kernel", "x_same_streams") if k in best},
                }
            )
    return out


def machine(device: torch.device = CPU) -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "device": describe(device),
        "load_average_before": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["resnet50", "digits", "both"], default="both")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps; no compile study")
    parser.add_argument(
        "--only",
        metavar="TEXT[,TEXT...]",
        help="only candidates whose key (library:optimizer:rule:impl) contains one of these, e.g. 'SGDW:l2:,torch.optim'",
    )
    parser.add_argument("--families", default="sgd,adamw,penalty", help="comma-separated subset of sgd,adamw,penalty")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument(
        "--device", default="cpu", help=f"where the parameters live: {' or '.join(DEVICES)} (cuda:N); default cpu"
    )
    parser.add_argument(
        "--compile-study", choices=["auto", "on", "off"], default="auto", help="auto: on unless --quick"
    )
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    if args.threads:
        torch.set_num_threads(args.threads)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; choose from {', '.join(FAMILIES)}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report: dict[str, Any] = {"machine": machine(device), "sizes": {}}
    sizes = ["resnet50", "digits"] if args.size == "both" else [args.size]
    for size in sizes:
        shapes = SIZES[size]()
        settings = Settings.for_size(size, args.quick, device)
        info: dict[str, Any] = {
            "params": sum(int(torch.Size(s).numel()) for s in shapes),
            "tensors": len(shapes),
            "threads": torch.get_num_threads(),
            "device": str(device),
            "settings": settings.__dict__,
            "rows": [],
            "bandwidth": {},
        }
        for family in families:
            log(f"[{size}] {family}")
            only = [t for t in (args.only or "").split(",") if t]
            rows, bandwidth = measure_family(family, shapes, settings, only, log, device)
            info["rows"] += rows
            info["bandwidth"].update(bandwidth)
        info["targets"] = targets(info) if size == "resnet50" else []
        report["sizes"][size] = info
        print(table(size, info), flush=True)
    if args.compile_study == "on" or (args.compile_study == "auto" and not args.quick):
        size = "resnet50" if "resnet50" in sizes else sizes[0]
        log(f"[compile study] {size}: cold and warm, each in a fresh process")
        report["compile_study"] = compile_cache.study(size, [("SGDW", "l2"), ("AdamW", "l2")], str(device))
    report["machine"]["load_average_after"] = os.getloadavg()
    print(summary(report), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        log(f"wrote {args.json}")
    return report


def summary(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "",
        f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']}, {m['torch_threads']} threads, "
        f"device {m.get('device', 'cpu')}; "
        f"load average before {tuple(round(x, 2) for x in m['load_average_before'])}, "
        f"after {tuple(round(x, 2) for x in m['load_average_after'])}",
    ]
    for size, info in report["sizes"].items():
        for t in info.get("targets", []):
            beside = "" if t.get("x_torch") is None else f", x torch {t['x_torch']:.2f}"
            beside += "" if t.get("x_base") is None else f" (x its plain step {t['x_base']:.2f})"
            if t.get("x_same_streams") is not None:
                beside += f" (x the {t['same_streams_kernel']} kernel, same streams: {t['x_same_streams']:.2f})"
            lines.append(
                f"target [{size}] {t['row']}: x floor {t['x_floor']:.2f}{beside} -> {'met' if t['met'] else 'NOT met'}"
            )
    for entry in report.get("compile_study", []):
        cold, warm = entry["cold"], entry["warm"]
        lines.append(
            f"compile [{entry['size']}] {entry['optimizer']} {entry['rule']}: cold {cold['compile_s']:.1f} s "
            f"(fx cache misses {cold['counters']['fxgraph_cache_miss']}), warm {warm['compile_s']:.1f} s "
            f"(fx cache hits {warm['counters']['fxgraph_cache_hit']}); first fused step cold {cold['first_fused_step_s']:.1f} s, "
            f"warm {warm['first_fused_step_s']:.1f} s"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
