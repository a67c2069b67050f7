"""Benchmark: trials per hour of `dwn-hw sweep` with a data set's default space, beside doing the same by hand.

Prints JSON. The figure: `dwn-hw sweep --dataset D --trials N` (one worker, default pruning) on
a fresh study, trials per hour counting every trial it ran (complete and pruned). The baseline,
measured in the same run: the very same trials (same parameters, same validation split and seed)
run one by one as a user would without the sweep, each as three commands, `dwn-hw train`,
`dwn-hw export --board B` and `dwn-hw synth --board B --no-core-pnr`, to the end (a user does not
know which trials a pruning rule would have stopped). The ratio is figure / baseline.

    python bench/sweep.py                       # digits, 6 trials, arty_a7
    python bench/sweep.py --dataset mnist --trials 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def dwn(*args: str) -> list[str]:
    return [sys.executable, "-m", "dwn_hw.cli", *args]


def by_hand(trial: dict, space, dataset: str, board: str, val_split: float, seed: int, work: Path) -> float:
    """One trial as three commands; returns its seconds."""
    from dwn_hw.train.cli import train_argv

    params = {k[len("param_"):]: v for k, v in trial.items() if k.startswith("param_") and v != ""}
    typed = {}
    for name, text in params.items():
        spec = space.params[name]
        typed[name] = (int(float(text)) if spec["type"] == "int" else float(text) if spec["type"] == "float"
                       else next(c for c in spec["choices"] if str(c) == text))
    cfg, export = space.settings(typed, dataset=dataset, seed=seed, val_split=val_split, num_classes=10)
    model, bundle = work / f"t{trial['number']}.pt", work / f"t{trial['number']}"
    # every option of the trial's configuration (the space's fixed values too), as the sweep trains it
    train = dwn("train", *train_argv(cfg), "-o", str(model), "--force", "-q")
    t0 = time.monotonic()
    for command in (train,
                    dwn("export", str(model), "-o", str(bundle), "--board", board, "--force",
                        "--pipeline", export.get("pipeline", "balanced")),
                    dwn("synth", str(bundle), "--board", board, "--no-core-pnr", "-q")):
        subprocess.run(command, check=True, capture_output=True, text=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--board", default="arty_a7")
    ap.add_argument("--trials", type=int, default=6, help="complete trials of the sweep")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-split", type=float, default=0.2)
    args = ap.parse_args()

    from dwn_hw.sweep.space import default_space

    space = default_space(args.dataset)
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        subprocess.run(dwn("sweep", "--dataset", args.dataset, "--board", args.board, "--out", str(tmp / "s"),
                           "--trials", str(args.trials), "--seed", str(args.seed), "--val-split", repr(args.val_split),
                           "-q"), check=True, capture_output=True, text=True)
        sweep_s = time.monotonic() - t0
        import csv

        with open(tmp / "s" / "trials.csv", newline="") as f:
            trials = [r for r in csv.DictReader(f) if r["state"] in ("COMPLETE", "PRUNED")]
        (tmp / "hand").mkdir()
        hand = [by_hand(t, space, args.dataset, args.board, args.val_split, args.seed, tmp / "hand") for t in trials]
    n = len(trials)
    pruned = sum(t["state"] == "PRUNED" for t in trials)
    figure = 3600 * n / sweep_s
    baseline = 3600 * n / sum(hand)
    print(json.dumps({
        "benchmark": "sweep trials per hour", "dataset": args.dataset, "board": args.board,
        "space_version": space.version, "cpus": os.cpu_count(),
        "figure": {"what": "dwn-hw sweep, one worker", "trials_per_hour": round(figure, 1), "trials": n,
                   "pruned": pruned, "seconds": round(sweep_s, 1)},
        "baseline": {"what": "the same trials by hand: train, export, synth commands, each to the end",
                     "trials_per_hour": round(baseline, 1), "seconds": round(sum(hand), 1),
                     "per_trial_s": [round(h, 1) for h in hand]},
        "ratio": round(figure / baseline, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
