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
   the trial's yosys synthesis (its ``metrics.json``) (``synth_xilinx`` for the Arty A7 core with the encoder, the study's
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
# the arty_a7 flow's script (with -abc9 the counts of these primitive-written cores are the same)
TOOL = "yosys synth_xilinx -family xc7 -flatten -noiopad (dwn-hw synth --board arty_a7 --no-board-build)"
PUBLISHED = ROOT / "docs" / "studies" / "published.json"
PLOT = ROOT / "docs" / "frontier.png"


def _cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dwn_hw.cli", *args], cwd=ROOT, text=True,
                         capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f"error: dwn-hw {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def ir_test_accuracy(ir_path: Path, dataset: str) -> float:
    """The numpy evaluator's test accuracy of an IR, as ``dwn-hw eval`` computes it."""
    from dwn_hw.describe_cli import ir_predictions

    pred, y, _, _ = ir_predictions(ir_path, dataset)
    return float((pred == y).mean())


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


def non_dominated(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (LUTs, accuracy) points that no other point beats: none with fewer or as many LUTs and as
    high or higher accuracy, better in one of the two. Ties (the same point twice) keep both."""
    return [i for i, (l, a) in enumerate(points)
            if not any(l2 <= l and a2 >= a and (l2, a2) != (l, a) for l2, a2 in points)]


def plot(results: dict, published: list, path: Path) -> None:
    """Accuracy against LUTs: our committed models (seed spread as a bar) and the published points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 (matplotlib.ticker below)

    fig, ax = plt.subplots(figsize=(8, 5))
    models = sorted(results["models"].values(), key=lambda m: m["luts"])
    committed = [100 * next(r["test_accuracy"] for r in m["runs"] if r.get("committed")) for m in models]
    front = non_dominated([(m["luts"], a) for m, a in zip(models, committed)])
    ax.plot([models[i]["luts"] for i in front], [committed[i] for i in front], "o-", color="C0",
            label="dwn-hw, committed models on the front (yosys synth_xilinx, xc7a35t, with encoder)")
    off = [i for i in range(len(models)) if i not in front]
    if off:
        ax.plot([models[i]["luts"] for i in off], [committed[i] for i in off], "o", color="C0", mfc="none",
                label="dwn-hw, committed models another one dominates")
    for m in models:
        t = m["test_accuracy"]
        ax.errorbar([m["luts"]], [100 * t["mean"]], yerr=[[100 * (t["mean"] - t["min"])], [100 * (t["max"] - t["mean"])]],
                    fmt="_", color="C0", alpha=0.6, capsize=4)
    ns = sorted({m["test_accuracy"]["n"] for m in models})
    seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
    ax.plot([], [], "_", color="C0", alpha=0.6, label=f"dwn-hw, mean and range over {seeds} seeds" if models else "")
    styles = {}
    for p in published:
        key = p["label"]
        marker = styles.setdefault(key, ("s", "C1") if "with encoder" in key else ("^", "C2"))
        ax.scatter([p["luts"]], [100 * p["accuracy"]], marker=marker[0], color=marker[1], s=40,
                   label=key if key not in ax.get_legend_handles_labels()[1] else None, zorder=3)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: f"{v:,.0f}" if str(int(round(v)))[0] in "2345" else ""))
    ax.set_xlabel("LUTs (see each label for tool, part and what is counted)")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_title("MNIST: accuracy against LUTs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.text(0.01, 0.01, "yosys counts encoders at about half of Vivado (dwn2rtl's calibration): "
             "the published points are Vivado figures", fontsize=6)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def synth_core(ir_path: Path, work: Path) -> dict:
    """yosys synth_xilinx of the Arty A7 core with the encoder (as the sweep counts it): the report's core."""
    bundle, report = work / "bundle_arty", work / "synth_arty.json"
    if not report.exists():
        _cli("export", str(ir_path), "-o", str(bundle), "--board", "arty_a7", "--force")
        _cli("synth", str(bundle), "--board", "arty_a7", "--no-board-build", "--json", str(report), "--force")
    rep = json.loads(report.read_text())
    return {**rep["core"], "part": rep.get("part")}


def _run_record(path: Path) -> tuple[dict, Path]:
    """A run's record (seed, options, selected epoch) and its IR path, from either of two forms:
    a ``--keep-best`` checkpoint ``X.best.pt`` (its IR is ``X.best.ir.json``, frozen when missing), or an IR
    ``X.ir.json`` frozen elsewhere with its ``X.run.json`` beside it (``scripts/seeds.py`` writes both, so
    the checkpoints, hundreds of MB, can stay on the machine that trained them)."""
    if path.name.endswith(".ir.json"):
        side = path.with_name(path.name[: -len(".ir.json")] + ".run.json")
        if not side.exists():
            raise SystemExit(f"error: {path} has no {side.name} beside it (scripts/seeds.py writes one)")
        return json.loads(side.read_text()), path
    from dwn_hw.train.checkpoint import read_record

    return read_record(path), path.with_suffix(".ir.json")


def add_by_hand(a) -> int:
    """``--add NAME --runs A,B,C``: a model trained with ``dwn-hw train --keep-best``, over seeds."""
    name, paths = a.add, [Path(p) for p in (a.runs or "").split(",") if p]
    if len(paths) < 1:
        raise SystemExit("error: --add needs --runs")
    runs, records = [], [_run_record(p) for p in paths]
    for i, (ck, (rec, ir_path)) in enumerate(zip(paths, records)):
        sel = rec.get("selected") or {}
        if not ir_path.exists():
            _cli("freeze", str(ck), "-o", str(ir_path))
        runs.append({"seed": int(rec["seed"]), "checkpoint": ck.name, "selected_epoch": sel.get("epoch"),
                     "epochs": rec["options"]["epochs"], "val_accuracy": sel.get("val_accuracy"),
                     "test_accuracy": ir_test_accuracy(ir_path, "mnist"), "committed": i == 0})
        print(f"  {ck}: seed {runs[-1]['seed']}, epoch {sel.get('epoch')} (best validation "
              f"{sel.get('val_accuracy')}), IR test {runs[-1]['test_accuracy']:.4f}", flush=True)
    first_ir = records[0][1]
    core = synth_core(first_ir, paths[0].parent)
    if not a.no_copy:
        atomic_write_text(MODELS / f"{name}.ir.json", first_ir.read_text())
    opts = records[0][0]["options"]
    entry = {
        "ir": f"models/{name}.ir.json", "by_hand": a.note or "dwn-hw train --keep-best, one run per seed",
        "options": {k: opts[k] for k in ("layers", "n", "bits", "encoder", "tau", "lr", "lr_step", "epochs",
                                          "batch_size", "threshold_bits", "val_split", "shift")},
        "luts": core["luts"], "ffs": core.get("ffs"), "carry": core.get("carry"),
        "tool": TOOL, "part": core.get("part"),
        "accounting": "core with encoder", "runs": runs,
        "test_accuracy": spread([r["test_accuracy"] for r in runs]),
        "val_accuracy": spread([r["val_accuracy"] for r in runs if r["val_accuracy"] is not None]),
    }
    results = _update(a.results, name, entry)
    if a.results == RESULTS:
        plot(results, json.loads(PUBLISHED.read_text()), PLOT)
    print(f"{name}: {core['luts']} LUTs; test {entry['test_accuracy']}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", type=Path)
    ap.add_argument("--pick", help="NUMBER=NAME,... : trials of the study to commit as models/NAME")
    ap.add_argument("--add", metavar="NAME", help="commit a model trained by hand instead: --runs are its seeds' "
                    "checkpoints (each the --keep-best file of one seed) or IRs with their run.json (scripts/seeds.py); "
                    "the first is committed")
    ap.add_argument("--runs", help="with --add: comma-separated checkpoints or IRs")
    ap.add_argument("--note", default="", help="with --add: how the model was trained")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "frontier")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-copy", action="store_true", help="do not copy the IRs into models/")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results JSON to update [default: %(default)s]")
    ap.add_argument("--plot-only", action="store_true", help=f"only redraw {PLOT.relative_to(ROOT)} from "
                    f"{RESULTS.relative_to(ROOT)}")
    a = ap.parse_args(argv)
    if a.plot_only:
        plot(json.loads(a.results.read_text()), json.loads(PUBLISHED.read_text()), PLOT)
        return 0
    if a.add:
        return add_by_hand(a)
    if not (a.study and a.pick):
        ap.error("give --study and --pick (or --add with --runs, or --plot-only)")

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

    results = _read(a.results)
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
        entry = {
            "ir": f"models/{name}.ir.json", "study_trial": number, "params": params,
            "fixed": space.fixed, "space_version": space.version, "val_split": s["val_split"],
            "luts": m["luts"], "ffs": m.get("ffs"), "carry": m.get("carry"),
            "tool": TOOL, "part": m.get("part"),
            "accounting": "core with encoder",
            "runs": runs,
            "test_accuracy": spread([r["test_accuracy"] for r in runs]),
            "val_accuracy": spread([r["val_accuracy"] for r in runs]),
        }
        results = _update(a.results, name, entry, results["how"])
    if a.results == RESULTS:
        plot(results, json.loads(PUBLISHED.read_text()), PLOT)
    return 0


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"models": {}}


def _update(path: Path, name: str, entry: dict, how: str | None = None) -> dict:
    """Re-read the results file and replace one model's entry (several runs of this script may share it)."""
    results = _read(path)
    if how:
        results["how"] = how
    results["models"][name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(main())
