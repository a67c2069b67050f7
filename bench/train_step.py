"""Training-step speed of the MNIST-shaped DWN on the CPU, ours against two baselines, as JSON.

Model (torch-dwn's README): LUTLayer(2352, 2000, n=6, mapping='learnable') -> LUTLayer(2000, 1000, n=6)
-> GroupSum(10, tau=1/0.3), cross-entropy, ``Adam(model.parameters(), fused=True)``, the plain loop
``zero_grad(); loss.backward(); step()``. Baselines (same weights, same loop, same optimizer):

- ``torch_dwn``: torch-dwn's algorithm in batched torch ops (O(n·2ⁿ) EFD sum per sample and LUT);
- ``careful``: vectorized with a per-step EFD coefficient table.

Steps of the three models are interleaved so machine noise hits them alike; each figure is the median
over the timed steps. Time is split into forward (with loss), backward, optimizer and argmax (the mapping's
``weights.argmax(0)``: inside the baselines' forward, inside our fused optimizer step, so ours reports 0 and
its optimizer time includes it). ``cpu_total`` is the process CPU time of the step (all threads): on a
shared, loaded machine it is steadier than wall time, so both ratios are printed.

Usage: ``python bench/train_step.py [--batch 32 256] [--steps 5] [--threads 2] [--slow-steps 1]``
(``torch_dwn`` is timed on the last ``--slow-steps`` steps only: its backward takes seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dwn_hw as dwn  # noqa: E402
import _torch_dwn_ref as ref  # noqa: E402
from dwn_hw.nn import fused  # noqa: E402


def build(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(dwn.LUTLayer(2352, 2000, n=6, mapping="learnable"), dwn.LUTLayer(2000, 1000, n=6),
                               dwn.GroupSum(10, tau=1 / 0.3))


def inputs(count):
    """MNIST training images through DistributiveThermometer(3) when the data set is at hand, else random bits
    at MNIST's density (0.158 of the bits set)."""
    try:
        from dwn_hw.datasets import readers as sources
        d = sources.load_mnist()
        x = torch.as_tensor(d["x_train"][:count], dtype=torch.float32)
        bits = dwn.DistributiveThermometer(3).fit(x).binarize(x)
        return bits, torch.as_tensor(d["y_train"][:count]).long(), "mnist"
    except Exception:
        gen = torch.Generator().manual_seed(1)
        return ((torch.rand(count, 2352, generator=gen) < 0.158).float(), torch.randint(0, 10, (count,), generator=gen),
                "random bits at MNIST density")


def timed_step(model, opt, x, y, ours):
    ref._ARGMAX_SECONDS[0] = 0.0
    c0, t0 = time.process_time(), time.perf_counter()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3, c3 = time.perf_counter(), time.process_time()
    argmax = 0.0 if ours else ref._ARGMAX_SECONDS[0]
    return {"forward": t1 - t0 - argmax, "backward": t2 - t1, "optimizer": t3 - t2, "argmax": argmax,
            "total": t3 - t0, "cpu_total": c3 - c0}


def run(batch, steps, warmup, flavours, slow_steps):
    base = build()
    models = {"ours": base}
    for flavour in flavours:
        models[flavour] = ref.reference_model(base, flavour)
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-2, fused=True) for name, m in models.items()}
    bits, labels, source = inputs(batch * (warmup + steps))
    data = [(bits[i * batch:(i + 1) * batch], labels[i * batch:(i + 1) * batch]) for i in range(warmup + steps)]
    times = {name: [] for name in models}
    for i, (x, y) in enumerate(data):
        for name, model in models.items():
            # torch-dwn's O(n·2ⁿ) backward takes seconds a step: time it on the last steps only
            if name == "torch_dwn" and i < len(data) - slow_steps:
                continue
            t = timed_step(model, opts[name], x, y, name == "ours")
            if i >= warmup:
                times[name].append(t)
    out = {}
    for name, rows in times.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        med["samples_per_s"] = batch / med["total"]
        med["samples_per_cpu_s"] = batch / med["cpu_total"]
        out[name] = {k: round(v, 5) for k, v in med.items()}
        out[name]["timed_steps"] = len(rows)
    for flavour in flavours:
        out[f"speedup_vs_{flavour}"] = round(out["ours"]["samples_per_s"] / out[flavour]["samples_per_s"], 2)
        out[f"cpu_time_speedup_vs_{flavour}"] = round(out[flavour]["cpu_total"] / out["ours"]["cpu_total"], 2)
    out["inputs"] = source
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slow-steps", type=int, default=1, help="timed steps of the torch_dwn baseline")
    parser.add_argument("--baselines", nargs="+", default=["careful", "torch_dwn"], choices=["careful", "torch_dwn"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"benchmark": "train_step", "model": "LUTLayer(2352,2000,n=6,learnable)-LUTLayer(2000,1000,n=6)-"
              "GroupSum(10,tau=1/0.3)", "optimizer": "Adam(lr=1e-2, fused=True)", "threads": args.threads,
              "fused_library": fused.library() is not None, "steps": args.steps, "unit": "seconds (median)",
              "results": {}}
    for batch in args.batch:
        result["results"][str(batch)] = run(batch, args.steps, args.warmup, args.baselines, min(args.slow_steps, args.steps))
    targets = {"32": 3.0, "256": 2.0}
    result["target_vs_careful"] = {b: {"target": targets[b], "measured": r.get("speedup_vs_careful")}
                                   for b, r in result["results"].items() if b in targets}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
