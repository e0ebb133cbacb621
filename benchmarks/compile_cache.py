"""Cold and warm compile of the fused step, each in a fresh process.

``study(size, configs)`` runs this module twice per configuration with the same new, empty
``TORCHINDUCTOR_CACHE_DIR``: the first process compiles from nothing (cold), the second finds
Inductor's on-disk FX graph cache (and AOTAutograd cache) filled by the first (warm). Each
process reports the wall time of its first fused step, a steady fused step, and the cache hits
and misses it saw. Run one directly with
``python -m benchmarks.compile_cache --size resnet50 --optimizer SGDW --rule l2``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import torch


def _counters() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {
        "fxgraph_cache_hit": counters["inductor"]["fxgraph_cache_hit"],
        "fxgraph_cache_miss": counters["inductor"]["fxgraph_cache_miss"],
        "aot_autograd_cache_hit": counters["aot_autograd"]["autograd_cache_hit"],
        "aot_autograd_cache_miss": counters["aot_autograd"]["autograd_cache_miss"],
    }


def measure_one(size: str, optimizer: str, rule: str, steps: int = 5, device: str = "cpu") -> dict[str, Any]:
    """In this process: build the optimizer with fused=True and time its first fused step."""
    from benchmarks.bandwidth import median_seconds
    from benchmarks.cases import ADAMW_OPTIONS, SGD_OPTIONS, Workspace
    from benchmarks.device import resolve_device, synchronizer
    from benchmarks.shapes import digits_shapes, resnet50_shapes
    from decaylab import SGDW, AdamW

    where = resolve_device(device)
    sync = synchronizer(where)
    ws = Workspace(resnet50_shapes() if size == "resnet50" else digits_shapes(), device=where)
    if optimizer == "SGDW":
        opt = SGDW(ws.params, **SGD_OPTIONS, rule=rule, fused=True)
        opt.step()  # the first momentum step runs eagerly
    elif optimizer == "AdamW":
        opt = AdamW(ws.params, **ADAMW_OPTIONS, rule=rule, fused=True)
    else:
        raise ValueError(f"optimizer: expected 'SGDW' or 'AdamW', got {optimizer!r}")
    first = median_seconds(opt.step, repeats=1, warmup=0, sync=sync)
    steady = median_seconds(opt.step, repeats=steps, warmup=0, sync=sync)
    return {
        "size": size,
        "device": str(where),
        "optimizer": optimizer,
        "rule": rule,
        "first_fused_step_s": first,
        "steady_step_s": steady,
        "compile_s": first - steady,
        "counters": _counters(),
    }


def _run_child(size: str, optimizer: str, rule: str, cache_dir: str, device: str) -> dict[str, Any]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache_dir}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "benchmarks.compile_cache", "--size", size, "--optimizer", optimizer, "--rule", rule]
    cmd += ["--device", device]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"compile study child failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall  # includes importing torch
    return result


def study(size: str, configs: list[tuple[str, str]], device: str = "cpu") -> list[dict[str, Any]]:
    """Cold then warm, per configuration, each with its own fresh cache directory."""
    out = []
    for optimizer, rule in configs:
        with tempfile.TemporaryDirectory(prefix="decaylab-inductor-") as cache_dir:
            cold = _run_child(size, optimizer, rule, cache_dir, device)
            warm = _run_child(size, optimizer, rule, cache_dir, device)
        out.append({"optimizer": optimizer, "rule": rule, "size": size, "cold": cold, "warm": warm})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["resnet50", "digits"], default="resnet50")
    parser.add_argument("--optimizer", choices=["SGDW", "AdamW"], default="SGDW")
    parser.add_argument("--rule", default="l2")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(json.dumps(measure_one(args.size, args.optimizer, args.rule, device=args.device)))


if __name__ == "__main__":
    main()
