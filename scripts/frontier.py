"""The MNIST frontier: commit a sweep's chosen Pareto trials as models, with their accuracy over seeds.

    python scripts/frontier.py --study DIR --pick NUMBER=NAME[,NUMBER=NAME...] [--seeds 1,2]
                               [--work runs/frontier] [--threads 1] [--no-copy]

For every picked trial of the study in DIR (a ``dwn-hw sweep`` output folder; the trial was chosen on
its *validation* accuracy, the study's objective):

1. its IR ``DIR/trials/<number>/dwn.ir.json`` (seed = the study's ``--seed``) is checked with the
   numpy evaluator on the MNIST test set and copied to ``models/<NAME>.ir.json``;
2. the same configuration (the trial's parameters plus the space's fixed values, the same validation
   split fraction) is trained again with each of ``--seeds`` (``WORK/<NAME>/seed<S>.pt``; a finished
   seed is not trained again, an interrupted one is continued), frozen, and its IR evaluated on the test
   set;
3. ``bench/results/frontier.json`` gets one entry per model: parameters, the LUT / FF / carry cells of
   the trial's yosys synthesis (``synth_xilinx`` for the Arty A7 core with the encoder, the study's
   measure), the validation and test accuracy of every seed, and their mean and spread (sample standard
   deviation).

The test set is never used to choose anything here: the study chose on validation accuracy and the
picks are made from ``pareto.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwn_hw.fsutil import atomic_write_text  # noqa: E402
from dwn_hw.sweep.space import validate  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "frontier.json"
MODELS = ROOT / "models"


def _cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dwn_hw.cli", *args], cwd=ROOT, text=True,
                         capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"error: dwn-hw {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def ir_test_accuracy(ir_path: Path, dataset: str) -> float:
    """The numpy evaluator's test accuracy of an IR, as ``dwn-hw eval`` prints it."""
    import re

    text = _cli("eval", str(ir_path), "--dataset", dataset)
    found = re.search(r"accuracy ([0-9.]+) \((\d+)/(\d+)\)", text)
    if not found:
        raise SystemExit(f"error: cannot read the accuracy from dwn-hw eval: {text.strip()}")
    return int(found.group(2)) / int(found.group(3))


def train_seed(space, params: dict, settings: dict, seed: int, ckpt: Path, threads: int) -> dict:
    """Train (or continue) one seed of a configuration; returns its metrics."""
    from dwn_hw.train import loop

    cfg, _ = space.settings(params, dataset=settings["dataset"], seed=seed, val_split=settings["val_split"],
                            num_classes=10)
    metrics_path = ckpt.with_suffix(".metrics.json")
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    metrics = loop.run(cfg, str(ckpt), resume=ckpt.exists(), force=not ckpt.exists(), progress=False,
                       threads=threads, log=lambda m: print(f"  {ckpt.stem}: {m}", flush=True))
    metrics["wall_seconds"] = round(time.monotonic() - t0, 1)
    atomic_write_text(metrics_path, json.dumps(metrics, indent=1) + "\n")
    return metrics


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", required=True, type=Path)
    ap.add_argument("--pick", required=True, help="NUMBER=NAME,... : trials of the study to commit as models/NAME")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "frontier")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-copy", action="store_true", help="do not copy the IRs into models/")
    a = ap.parse_args(argv)

    pareto = json.loads((a.study / "pareto.json").read_text())
    settings = pareto  # the study's settings are top-level keys of pareto.json
    space = validate(json.loads((a.study / "space.json").read_text()), str(a.study / "space.json"))
    dataset, val_split = settings.get("dataset", "mnist"), settings.get("val_split")
    study_seed = int(settings.get("seed", 0))
    if val_split is None:
        raise SystemExit(f"error: {a.study}/pareto.json records no val_split")
    s = {"dataset": dataset, "val_split": float(val_split)}
    on_front = {int(t["number"]) for t in pareto.get("front", [])}
    seeds = [int(x) for x in a.seeds.split(",") if x.strip()]

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    results["how"] = ("scripts/frontier.py: each model is a Pareto trial of the study (chosen on validation "
                      "accuracy), retrained with further seeds; LUTs are the trial's yosys synth_xilinx count of "
                      "the Arty A7 (xc7a35t) core with the encoder; accuracy is the IR on the MNIST test set")
    for item in a.pick.split(","):
        number_text, name = item.split("=")
        number = int(number_text)
        if number not in on_front:
            print(f"warning: trial {number} is not on the study's Pareto front", file=sys.stderr)
        tdir = a.study / "trials" / f"{number:04d}"
        m = json.loads((tdir / "metrics.json").read_text())
        synth = json.loads((tdir / "synth_report.json").read_text())
        params = m["params"]
        ir_path = tdir / "dwn.ir.json"
        seed0_test = ir_test_accuracy(ir_path, dataset)
        print(f"{name}: trial {number}, {m['luts']} LUTs, val {m['accuracy']:.4f}, IR test {seed0_test:.4f}",
              flush=True)
        if not a.no_copy:
            atomic_write_text(MODELS / f"{name}.ir.json", ir_path.read_text())
        runs = [{"seed": study_seed, "val_accuracy": m["accuracy"], "test_accuracy": seed0_test,
                 "epochs": m.get("epochs"), "committed": True}]
        for seed in seeds:
            ckpt = a.work / name / f"seed{seed}.pt"
            sm = train_seed(space, params, s, seed, ckpt, a.threads)
            ir_seed = ckpt.with_suffix(".ir.json")
            if not ir_seed.exists():
                _cli("freeze", str(ckpt), "-o", str(ir_seed))
            runs.append({"seed": seed, "val_accuracy": sm.get("val_accuracy"),
                         "test_accuracy": ir_test_accuracy(ir_seed, dataset), "epochs": sm.get("epochs"),
                         "train_seconds": round(sm.get("train_seconds", 0), 1)})
            print(f"  seed {seed}: val {runs[-1]['val_accuracy']:.4f} test {runs[-1]['test_accuracy']:.4f}",
                  flush=True)
        core = synth["core"] if "core" in synth else synth
        results["models"][name] = {
            "ir": f"models/{name}.ir.json", "study_trial": number, "params": params,
            "fixed": space.fixed, "space_version": space.version, "val_split": s["val_split"],
            "luts": m["luts"], "ffs": m.get("ffs"), "carry": m.get("carry"),
            "tool": core.get("tool") or "yosys synth_xilinx -flatten -abc9", "part": m.get("part"),
            "accounting": "core with encoder",
            "runs": runs,
            "test_accuracy": spread([r["test_accuracy"] for r in runs]),
            "val_accuracy": spread([r["val_accuracy"] for r in runs]),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RESULTS, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
