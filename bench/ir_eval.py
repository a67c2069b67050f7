"""IR reference evaluator speed: 10,000 MNIST-shaped samples through the 3,000-LUT model.

The model is torch-dwn's MNIST shape: 784 features x 3 thermometer bits on an 8-bit grid, LUT layers of
2000 and 1000 six-input LUTs, GroupSum over 10 classes. The tables and mappings are random (speed does not
depend on them). The baseline, measured in the same run on the same model and inputs, is the PyTorch forward
of dwn_hw.nn on the CPU (encoder + LUT layers + GroupSum, no grad). Both must give the same scores.

Prints one JSON object: seconds for each (best of --repeats), samples/s, and the ratio baseline/IR.
Target: IR evaluation in at most 1 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def build(seed: int = 0):
    import torch

    import dwn_hw as dwn
    from dwn_hw.freeze import freeze
    from dwn_hw.datasets.grid import Grid

    torch.manual_seed(seed)
    x_fit = torch.randint(0, 256, (2000, 784)).float()
    enc = dwn.DistributiveThermometer(3).fit(x_fit)
    model = torch.nn.Sequential(dwn.LUTLayer(784 * 3, 2000, 6, mapping="learnable"), dwn.LUTLayer(2000, 1000, 6),
                                dwn.GroupSum(10, tau=1 / 0.3))
    model.eval()
    grid = Grid(1.0, 8, False)
    ir = freeze(model, encoder=enc, grid=grid, simplify=False)
    return model, enc, ir


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the baseline")
    args = ap.parse_args()

    import torch

    import dwn_hw.ir as I

    torch.set_num_threads(args.threads)
    model, enc, ir = build()
    rng = np.random.default_rng(1)
    q = rng.integers(0, 256, size=(args.samples, 784))

    t_ir, (scores, classes) = best_of(lambda: I.evaluate(ir, q), args.repeats)

    def torch_forward():
        with torch.no_grad():
            out = []
            for i in range(0, len(q), 2048):
                x = torch.from_numpy(q[i:i + 2048].astype(np.float32))
                out.append(model(enc.binarize(x)))
            return torch.cat(out)

    t_pt, out = best_of(torch_forward, args.repeats)
    pt_scores = torch.round(out.double() * model[-1].tau).long().numpy()
    if not np.array_equal(pt_scores, scores):
        raise SystemExit("IR and PyTorch scores differ: the benchmark compares unequal work")
    print(json.dumps({
        "benchmark": "ir_eval",
        "samples": args.samples,
        "model": "784x3 bits -> 2000 LUT6 -> 1000 LUT6 -> GroupSum(10)",
        "luts": sum(len(layer["mapping"]) for layer in ir["layers"]),
        "ir_seconds": round(t_ir, 4),
        "ir_samples_per_s": round(args.samples / t_ir),
        "baseline": f"PyTorch forward (dwn_hw.nn, CPU, {args.threads} threads, no grad)",
        "baseline_seconds": round(t_pt, 4),
        "ratio_baseline_over_ir": round(t_pt / t_ir, 2),
        "target_ir_seconds": 1.0,
        "meets_target": t_ir <= 1.0,
        "scores_equal": True,
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
