"""Benchmark: the embedded default (``dwn-hw train`` on digits), accuracy and wall time.

Target: >= 95 % test accuracy within 60 s on two CPU cores. Prints one JSON object. The baseline,
measured in the same run on the same grid inputs and split, is scikit-learn's logistic regression
(what a user would try first); ``ratio`` is the DWN's wall time over the 60 s budget.

    python bench/train_digits.py [--epochs E] [--threads T] [--seed S] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from sklearn.linear_model import LogisticRegression

from dwn_hw.datasets import load_dataset
from dwn_hw.train.loop import TrainConfig, run

BUDGET_S = 60.0
TARGET_ACC = 0.95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu (the target's setting), cuda or auto")
    args = ap.parse_args()

    t0 = time.perf_counter()
    ds = load_dataset("digits")
    x_tr, x_te = ds.grid.to_x(ds.q_train), ds.grid.to_x(ds.q_test)
    clf = LogisticRegression(max_iter=2000).fit(x_tr, ds.y_train)
    base_acc = float((clf.predict(x_te) == ds.y_test).mean())
    base_s = time.perf_counter() - t0

    cfg = TrainConfig(epochs=args.epochs, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        metrics = run(cfg, os.path.join(tmp, "model.pt"), device=args.device, progress=False, threads=args.threads,
                      log=lambda msg: print(msg, file=sys.stderr))
        wall = time.perf_counter() - t0

    print(json.dumps({
        "benchmark": "train_digits",
        "figure": {"test_accuracy": metrics["test_accuracy"], "wall_seconds": round(wall, 2),
                   "train_seconds": round(metrics["train_seconds"], 2), "epochs": metrics["epochs"],
                   "luts": metrics["luts"], "layers": cfg.layers, "n": cfg.n, "bits": cfg.bits,
                   "encoder": cfg.encoder, "tau": cfg.tau, "threads": args.threads, "seed": args.seed,
                   "device": metrics["device"]},
        "baseline": {"name": "sklearn LogisticRegression on the same grid inputs and split",
                     "test_accuracy": base_acc, "wall_seconds": round(base_s, 2)},
        "target": {"test_accuracy": TARGET_ACC, "wall_seconds": BUDGET_S},
        "ratio": {"wall_over_budget": round(wall / BUDGET_S, 3),
                  "accuracy_over_baseline": round(metrics["test_accuracy"] / base_acc, 4)},
        "meets_target": bool(metrics["test_accuracy"] >= TARGET_ACC and wall <= BUDGET_S),
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
