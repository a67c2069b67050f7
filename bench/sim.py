"""Simulation speed: the MNIST test-set size through the cocotb bench on Verilator; prints JSON.

    python bench/sim.py [--vectors 10000] [--baseline numpy|stock|both] [--quick]

Model: MNIST-shaped random IR (784 features x 3 thermometer bits, 8-bit inputs, layers
(2000,6),(1000,6), k=10), ``build_top`` with the ``balanced`` pipeline and the export's default
LUT style; vectors: random grid inputs, expected from the IR evaluator.

Figures:
- ``build_s`` / ``run_s`` / ``total_s``: the tuned bench (``sim/run_sim.py``), Verilator build
  and streaming run separately, and their sum (goal: total <= 90 s on 2 cores). The first build
  on a machine also compiles the Verilator run-time library; ``runtime_cached`` says whether it
  was already cached (``--cold`` builds without the cache).
- baselines, measured in the same run: ``numpy_s`` (the IR evaluator on the same vectors) and,
  with ``--baseline stock`` or ``both``, ``stock_build_s`` / ``stock_run_s``: cocotb's runner
  with its default Verilator options (every signal public, no output splitting, ``-Os``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dwn_hw import ir as I
from dwn_hw.check.sim import run_units

MNIST = dict(features=784, bits_per_feature=3, input_bits=8, layers=[(2000, 6), (1000, 6)], k=10)
QUICK = dict(features=64, bits_per_feature=3, input_bits=5, layers=[(500, 4)], k=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", type=int, default=10_000)
    ap.add_argument("--baseline", choices=["numpy", "stock", "both"], default="numpy")
    ap.add_argument("--quick", action="store_true", help="a digits-sized model instead of MNIST")
    ap.add_argument("--cold", action="store_true", help="do not use the Verilator run-time cache")
    ap.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = ap.parse_args()

    from dwn_hw.hdl import build_top

    shape = QUICK if args.quick else MNIST
    work = args.keep or Path(tempfile.mkdtemp(prefix="dwn-bench-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ir = I.random_ir(7, **shape)
    text, info = build_top(ir, inputs="features", pipeline="balanced")
    gen_s = time.perf_counter() - t0
    (work / "top.v").write_text(text)
    qmin, qmax = I.grid_range(ir["encoder"])
    q = np.random.default_rng(0).integers(qmin, qmax + 1, size=(args.vectors, shape["features"]))
    t0 = time.perf_counter()
    scores, classes = I.evaluate(ir, q)
    numpy_s = time.perf_counter() - t0
    np.savez(work / "vectors.npz", inputs=q, scores=scores, classes=classes)
    unit = dict(name="mnist", ports="", vectors=str(work / "vectors.npz"), latency=info["latency"],
                in_width=info["in_width"], classes=info["classes"], score_width=info["score_width"],
                inputs="features", input_bits=shape["input_bits"], signed=False, expected_from="ir")

    if args.cold:
        os.environ["DWN_SIM_NO_CACHE"] = "1"
    result = run_units([unit], [work / "top.v"], info["top"], work / "build")
    u = result["units"][0]
    out = {
        "model": {**{k: v for k, v in shape.items()}, "luts": sum(n for n, _ in shape["layers"]),
                  "latency": info["latency"], "in_width": info["in_width"], "pipeline": info["pipeline"]},
        "vectors": args.vectors, "cores": os.cpu_count(), "generate_s": round(gen_s, 2),
        "build_s": round(result["build_s"], 2), "run_s": round(result["run_s"], 2),
        "total_s": round(result["build_s"] + result["run_s"], 2), "goal_total_s": 90,
        "runtime_cached": result["runtime_cached"], "bit_exact": f"{u['matched']}/{u['n']}",
        "numpy_s": round(numpy_s, 3),
        "ratio_run_vs_numpy": round(result["run_s"] / numpy_s, 1),
    }
    if args.baseline in ("stock", "both"):
        stock = run_units([unit], [work / "top.v"], info["top"], work / "build_stock", tuned=False)
        out.update(stock_build_s=round(stock["build_s"], 2), stock_run_s=round(stock["run_s"], 2),
                   stock_total_s=round(stock["build_s"] + stock["run_s"], 2),
                   ratio_total_vs_stock=round((result["build_s"] + result["run_s"])
                                              / (stock["build_s"] + stock["run_s"]), 2))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=1))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
