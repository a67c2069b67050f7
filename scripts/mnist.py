"""`make mnist`: the MNIST headline result, from training to simulated and synthesized hardware.

For each model of the recipe (``RECIPES``) the script runs the real CLI, one step after the other,
and skips a step whose output already exists, so an interrupted run continues where it stopped:

1. train   ``dwn-hw train --dataset mnist ...`` -> WORK/<name>.pt (checkpoint after every epoch;
           an unfinished one is continued with ``--resume``) and WORK/<name>.train.json (metrics);
           skipped altogether when ``models/<name>.ir.json`` exists (pass ``--retrain`` to redo it)
2. freeze  ``dwn-hw freeze`` -> ``models/<name>.ir.json`` (checked against the PyTorch forward)
3. eval    ``dwn-hw eval models/<name>.ir.json --dataset mnist`` (numpy evaluator, 10,000 test images)
4. export  ``dwn-hw export`` of the IR with the hardware encoder (``--inputs features``: 8-bit pixels
           in, the thermometer comparators in the Verilog) and all 10,000 MNIST test images as vectors
5. sim     ``make sim`` in the bundle: Verilator, every vector's scores and class bit-exact
6. synth   ``dwn-hw synth --board arty_a7`` (yosys estimate for the xc7a35t); with ``--pnr`` also
           ``--board ulx3s`` (ECP5-85 place-and-route; the core alone for the big model, whose routing
           is slow) and, for models the recipe marks small, ``--board icebreaker`` (iCE40 UP5K) when
           the core fits
7. results WORK/results.json, the table in docs/results.md (between its ``results`` markers) and
           docs/accuracy_vs_luts.png

Usage::

    python scripts/mnist.py [--models mnist_small,mnist_tutorial] [--work runs/mnist] [--pnr]
                            [--threads 1] [--retrain] [--no-docs]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from _stream import run_streamed  # scripts/ is on sys.path when the script runs

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
RESULTS_MD = ROOT / "docs" / "results.md"
PLOT = ROOT / "docs" / "accuracy_vs_luts.png"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# Both use the distributive thermometer with 3 bits per pixel (784 x 3 = 2,352 input bits), a learnable
# first mapping, six-input LUTs, Adam at batch 32 with a step schedule (lr x gamma every lr_step epochs).
RECIPES = {
    # torch-dwn's MNIST tutorial model: 2,000 learnable -> 1,000 random LUTs, GroupSum tau = 1/0.3
    "mnist_tutorial": dict(layers="2000,1000", n=6, tau=1 / 0.3, epochs=30, batch_size=32, lr=0.01, lr_step=14,
                           gamma=0.1, seed=0, shift=1, small=False),
    # the small model: one learnable layer of 1,000 LUTs straight into GroupSum
    "mnist_small": dict(layers="1000", n=6, tau=3.333, epochs=15, batch_size=32, lr=0.01, lr_step=10,
                        gamma=0.1, seed=0, shift=0, small=True),
}

# Published figures, quoted (not measured here), for the table and the plot.
REFERENCES = [
    dict(source="DWN paper (Bacellar et al., ICML 2024), n=6", accuracy=0.983, luts=4082,
         tool="Vivado", part="xcvu9p (Virtex UltraScale+)", fmax=None, note="core without encoder"),
    dict(source="DWN paper, small model", accuracy=0.971, luts=692,
         tool="Vivado", part="xcvu9p (Virtex UltraScale+)", fmax=None, note="core without encoder"),
    dict(source="dwn2rtl", accuracy=0.9776, luts=3464, tool="Vivado", part="Artix-7 35T", fmax=103.8,
         note="as reported by dwn2rtl"),
]


def log(msg: str) -> None:
    print(msg, flush=True)


def _short(path: str) -> str:
    """A path below the checkout, relative to it (the log reads as the commands one would type)."""
    return os.path.relpath(path, ROOT) if os.path.isabs(path) and path.startswith(str(ROOT) + os.sep) else path


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[str, float]:
    """Run ``cmd``, echo its output, raise SystemExit naming the step when it fails."""
    shown = [_short(c) for c in cmd]
    log(f"$ {' '.join(shown)}" + (f"   (in {_short(str(cwd))})" if cwd else ""))
    rc, text, took = run_streamed(cmd, cwd, env)
    if rc != 0:
        raise SystemExit(f"mnist: '{' '.join(shown[:4])} ...' failed with exit status {rc}")
    return text, took


def dwn_hw(*args: str) -> list[str]:
    return [sys.executable, "-m", "dwn_hw.cli", *args]


def read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def write_json(path: Path, data) -> None:
    from dwn_hw.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


# ----------------------------------------------------------------------------- steps
def train(name: str, recipe: dict, work: Path, threads: int) -> dict | None:
    """Train (or continue) the checkpoint; the metrics JSON marks a finished run."""
    pt, metrics = work / f"{name}.pt", work / f"{name}.train.json"
    if metrics.exists() and pt.exists():
        log(f"[{name}] train: done before ({metrics.relative_to(work.parent)})")
        return read_json(metrics)
    with TrainLock(work / f"{name}.train.lock"):
        _train(name, recipe, pt, metrics, threads)
    return read_json(metrics)


class TrainLock:
    """One training per checkpoint: a second run writing the same file would corrupt both."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid = self.path.read_text().strip()
            if pid.isdigit() and _alive(int(pid)):
                raise SystemExit(f"mnist: {self.path} says process {pid} is training this model; wait for it "
                                 "or stop it first") from None
            self.path.unlink()  # left by a run that died
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _train(name: str, recipe: dict, pt: Path, metrics: Path, threads: int) -> None:
    if pt.exists():
        # options are recorded in the checkpoint: a resumed run takes none but the output
        run(dwn_hw("train", "-o", str(pt), "--resume", "--metrics-json", str(metrics),
                   "--threads", str(threads)))
    else:
        r = recipe
        run(dwn_hw("train", "--dataset", "mnist", "--encoder", "distributive", "--bits", "3",
                   "--layers", r["layers"], "--n", str(r["n"]), "--mapping", "learnable", "--tau", repr(r["tau"]),
                   "--epochs", str(r["epochs"]), "--batch-size", str(r["batch_size"]), "--lr", str(r["lr"]),
                   "--lr-step", str(r["lr_step"]), "--gamma", str(r["gamma"]), "--seed", str(r["seed"]),
                   "--shift", str(r.get("shift", 0)),
                   "--threads", str(threads), "-o", str(pt), "--metrics-json", str(metrics)))


def test_set_npz(work: Path) -> Path:
    """The MNIST test images as grid integers (``inputs``) with their ``labels``."""
    import numpy as np

    path = work / "mnist_test.npz"
    if not path.exists():
        from dwn_hw.datasets import load_dataset

        ds = load_dataset("mnist")
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, inputs=ds.q_test.astype(np.int64), labels=ds.y_test.astype(np.int64))
        os.replace(tmp, path)
    return path


def export_ir(name: str, ir_path: Path, work: Path) -> Path:
    """A working copy of the IR whose ``meta.test_set`` names the MNIST test set, so the export
    writes all 10,000 test images as vectors (the committed IR stays free of machine paths)."""
    from dwn_hw import ir as irmod

    ir = irmod.load(ir_path)
    npz = test_set_npz(work)
    ir.setdefault("meta", {})["test_set"] = {"npz": os.path.relpath(npz, work)}
    out = work / f"{name}.export.ir.json"
    irmod.save(ir, out, force=True)
    return out


def eval_ir(ir_path: Path) -> dict:
    text, took = run(dwn_hw("eval", str(ir_path), "--dataset", "mnist"))
    m = re.search(r"accuracy ([0-9.]+) \((\d+)/(\d+)\)", text)
    if not m:
        raise SystemExit(f"mnist: cannot read the accuracy from dwn-hw eval's output: {text!r}")
    return {"accuracy": float(m.group(1)), "correct": int(m.group(2)), "n": int(m.group(3)), "seconds": took}


def export(name: str, ir_path: Path, work: Path, boards: list[str]) -> Path:
    bundle = work / f"{name}_bundle"
    if (bundle / "bundle.json").exists():
        # `dwn-hw synth` writes a missing board's files itself; only the Xilinx primitive core
        # (bundle.json rtl_device) must come from the export
        device = json.loads((bundle / "bundle.json").read_text()).get("rtl_device") or {}
        if "arty_a7" not in boards or "xilinx" in device:
            log(f"[{name}] export: done before ({bundle.relative_to(work.parent)})")
            return bundle
    # --estimate: a per-stage yosys synth_xilinx table (encoder, LUT layers, popcount, argmax), which
    # gives the core without its encoder, the figure the DWN paper reports
    args = ["export", str(export_ir(name, ir_path, work)), "--target", "verilog", "--inputs", "features",
            "--estimate", "-o", str(bundle), "--force"]
    for b in boards:
        args += ["--board", b]
    run(dwn_hw(*args))
    return bundle


def simulate(name: str, bundle: Path, work: Path) -> dict:
    done = work / f"{name}.sim.json"
    if done.exists():
        log(f"[{name}] sim: done before ({done.relative_to(work.parent)})")
        return read_json(done)
    import numpy as np

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    text, took = run(["make", "sim", f"PYTHON={sys.executable}"], cwd=bundle, env=env)
    m = re.search(r"bit-exact:\s*(\d+)\s*/\s*(\d+)\s*\(expected from (\w+)\)", text)
    if not m:
        raise SystemExit(f"mnist: cannot read 'bit-exact: N/M' from make sim's output in {bundle}")
    matched, n = int(m.group(1)), int(m.group(2))
    with np.load(bundle / "vectors" / "vectors.npz") as v:
        classes = v["classes"]
    with np.load(test_set_npz(work)) as t:
        labels = t["labels"]
    res = {"matched": matched, "n": n, "expected_from": m.group(3), "seconds": round(took, 1),
           # the simulated hardware gave these classes on every vector (when matched == n)
           "accuracy": float(np.mean(classes == labels)) if len(classes) == len(labels) else None}
    write_json(done, res)
    return res


def synth(name: str, bundle: Path, work: Path, board: str, board_build: bool = True,
          placer: str = "heap") -> dict | None:
    done = work / f"{name}.{board}.json"
    if done.exists():
        log(f"[{name}] synth {board}: done before ({done.relative_to(work.parent)})")
        return read_json(done)
    start = time.monotonic()
    try:
        run(dwn_hw("synth", str(bundle), "--board", board, "--json", str(done),
                   "--placer", placer, *([] if board_build else ["--no-board-build"])))
    except SystemExit as exc:
        # a core that does not fit the part is a result, not a failure of the recipe
        report = read_json(bundle / "synth" / board / "report.json")
        if report is None or report.get("fits", True):
            raise
        log(f"[{name}] synth {board}: does not fit ({exc})")
        report["wall_s"] = round(time.monotonic() - start, 1)
        write_json(done, report)
        return report
    report = read_json(done)
    report["wall_s"] = round(time.monotonic() - start, 1)
    write_json(done, report)
    return report


# ----------------------------------------------------------------------------- results
def summarize(name: str, recipe: dict, trained: dict | None, ev: dict, ir_path: Path, bundle: Path, sim: dict,
              synths: dict) -> dict:
    ir = json.loads(ir_path.read_text())
    bj = json.loads((bundle / "bundle.json").read_text())
    row = {"name": name, "recipe": recipe, "luts_dwn": sum(int(v) for v in recipe["layers"].split(",")),
           # after freezing with simplification (LUTs nothing reads are gone)
           "luts_ir": sum(len(layer["mapping"]) for layer in ir["layers"]),
           "ir_bytes": ir_path.stat().st_size, "accuracy_ir": ev["accuracy"], "sim": sim,
           "latency_cycles": bj["latency"], "pipeline": bj["pipeline"], "synth": {}}
    stages = (bj.get("resources") or {}).get("stages")
    if stages:
        row["stages_xilinx"] = stages
        row["luts_without_encoder_xilinx"] = sum(v["luts"] for k, v in stages.items() if k != "encoder")
    if trained:
        row["train"] = {k: trained.get(k) for k in ("test_accuracy", "epochs", "train_seconds", "total_seconds")}
    for board, rep in synths.items():
        if rep is None:
            continue
        core = rep["core"]
        fmax = core.get("fmax_mhz")
        row["synth"][board] = {
            "part": rep["part"], "family": rep["family"], "fits": core.get("fits"),
            "core_luts": core["luts"], "core_ffs": core["ffs"], "core_carry": core.get("carry"),
            "core_fmax_mhz": fmax, "board_fmax_mhz": rep.get("fmax_mhz"),
            "latency_ns": round(1000 * bj["latency"] / fmax, 1) if fmax else None,
            # the core takes a new sample every clock: throughput is the clock rate
            "throughput_msps": fmax, "wall_s": rep.get("wall_s"), "times_s": rep.get("times_s")}
    return row


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def _num(v, unit="") -> str:
    return "–" if v is None else f"{v:,}{unit}" if isinstance(v, int) else f"{v:.1f}{unit}"


def table_md(rows: list[dict]) -> str:
    lines = ["| model | DWN LUTs | test accuracy | tool, part | LUTs | FFs | Fmax | latency | throughput | source |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = _pct(r["accuracy_ir"])
        exact = r["sim"]
        live = "" if r["luts_ir"] == r["luts_dwn"] else f" ({r['luts_ir']:,} read)"
        for board, s in r["synth"].items():
            xilinx = s["family"] == "xilinx"
            unit = "LUT1-6" if xilinx else "LUT4" + (f" + {s['core_carry']:,} carry cells" if s["core_carry"] else "")
            tool = ("yosys estimate (synth_xilinx)" if xilinx else
                    "yosys + nextpnr, core placed and routed alone" if s["fits"] else
                    f"yosys synth_{s['family']} (not placed: does not fit)")
            fmax = (f"{s['core_fmax_mhz']:.1f} MHz" if s["core_fmax_mhz"] else
                    "– (no timing from yosys)" if xilinx else "–")
            if s["core_fmax_mhz"] and s["board_fmax_mhz"]:
                fmax += f" (board build {s['board_fmax_mhz']:.1f} MHz)"
            tput = f"{s['core_fmax_mhz']:.1f} M samples/s" if s["core_fmax_mhz"] else "1 sample per clock"
            lat = f"{r['latency_cycles']} cycles" + (f" = {s['latency_ns']} ns" if s["latency_ns"] else "")
            fits = "" if s["fits"] else " (does not fit)"
            lines.append(f"| {r['name']} (this work) | {r['luts_dwn']:,}{live} | {acc} | {tool}, {s['part']} | "
                         f"{s['core_luts']:,} {unit}{fits} | {s['core_ffs']:,} | {fmax} | {lat} | {tput} | "
                         f"measured here; sim bit-exact {exact['matched']:,}/{exact['n']:,} |")
        if r.get("luts_without_encoder_xilinx") is not None:
            enc = r["stages_xilinx"].get("encoder", {}).get("luts", 0)
            lines.append(f"| {r['name']} (this work), core without encoder | {r['luts_dwn']:,}{live} | {acc} | "
                         f"yosys estimate per stage (synth_xilinx, hierarchy kept), 7-series LUT6 | "
                         f"{r['luts_without_encoder_xilinx']:,} (+ {enc:,} encoder) | – | – | – | – | "
                         f"measured here; compare with the paper's figures |")
    for ref in REFERENCES:
        fmax = f"{ref['fmax']} MHz" if ref["fmax"] else "–"
        lines.append(f"| {ref['source']} | – | {_pct(ref['accuracy'])} | {ref['tool']}, {ref['part']} | "
                     f"{ref['luts']:,} | – | {fmax} | – | – | published ({ref['note']}) |")
    return "\n".join(lines)


def stages_md(rows: list[dict]) -> str:
    lines = ["| model | stage | LUTs | FFs | CARRY4 |", "|---|---|---|---|---|"]
    for r in rows:
        for stage, c in (r.get("stages_xilinx") or {}).items():
            lines.append(f"| {r['name']} | {stage} | {c['luts']:,} | {c['flops']:,} | {c['carry4']:,} |")
    return "\n".join(lines)


def _augmentation(shift: int) -> str:
    return f"random shifts of up to {shift} px (`--shift {shift}`)" if shift else "none"


def training_md(rows: list[dict], threads: int) -> str:
    lines = ["| model | layers | n | tau | epochs | batch | lr schedule | augmentation | training time (sum of epochs) "
             "| threads |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rc, t = r["recipe"], r.get("train") or {}
        secs = t.get("train_seconds")
        wall = f"{secs / 60:.1f} min" if secs else "not trained in this run (committed IR)"
        lines.append(f"| {r['name']} | {rc['layers']} | {rc['n']} | {rc['tau']:.4g} | {rc['epochs']} | "
                     f"{rc['batch_size']} | Adam {rc['lr']}, x{rc['gamma']} every {rc['lr_step']} epochs | "
                     f"{_augmentation(rc.get('shift', 0))} | {wall} | {threads} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for ref in REFERENCES:
        ax.scatter(ref["luts"], 100 * ref["accuracy"], marker="s", color="gray")
        ax.annotate(f"{ref['source'].split(' (')[0].split(',')[0]}\n({ref['tool']}, {ref['part'].split(' ')[0]})",
                    (ref["luts"], 100 * ref["accuracy"]), textcoords="offset points", xytext=(6, -10), fontsize=7)
    markers = {"xilinx": "o", "ecp5": "^", "ice40": "v"}
    for r in rows:
        for board, s in r["synth"].items():
            if not s["fits"]:
                continue
            ax.scatter(s["core_luts"], 100 * r["accuracy_ir"], marker=markers.get(s["family"], "o"),
                       label=f"{r['name']}, {s['part']} "
                             f"({'yosys estimate' if s['family'] == 'xilinx' else 'placed and routed'})")
        if r.get("luts_without_encoder_xilinx"):
            ax.scatter(r["luts_without_encoder_xilinx"], 100 * r["accuracy_ir"], marker="o", facecolors="none",
                       edgecolors="black", label=f"{r['name']}, core without encoder (yosys estimate, LUT6)")
    ax.set_xscale("log")
    ax.set_xlim(300, 30000)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("LUTs of the core (log scale; LUT6 for Xilinx, LUT4 for ECP5/iCE40)")
    ax.set_ylabel("MNIST test accuracy (%)")
    ax.set_title("MNIST: accuracy vs LUTs (grey: published figures)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def write_docs(rows: list[dict], threads: int) -> None:
    block = "\n\n".join([BEGIN, "### Hardware (generated by `scripts/mnist.py`)", table_md(rows),
                         "### Per stage (yosys synth_xilinx estimate, `dwn-hw export --estimate`)", stages_md(rows),
                         "### Training", training_md(rows, threads), END])
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else f"# MNIST results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    from dwn_hw.fsutil import atomic_write_text

    atomic_write_text(RESULTS_MD, head + block + tail)
    plot(rows, PLOT)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mnist_small,mnist_tutorial",
                    help=f"comma-separated, from {', '.join(RECIPES)} (default: both)")
    ap.add_argument("--work", default=str(ROOT / "runs" / "mnist"), help="working folder (kept between runs)")
    ap.add_argument("--threads", type=int, default=1, help="training threads (dwn-hw train --threads)")
    ap.add_argument("--pnr", action="store_true",
                    help="also place and route on the ULX3S (ECP5-85) and, for the small model, the iCEBreaker")
    ap.add_argument("--retrain", action="store_true", help="train (or take the finished checkpoint in WORK) and "
                    "freeze even when models/<name>.ir.json exists; the new IR replaces it")
    ap.add_argument("--models-dir", default=str(MODELS_DIR), help="where the frozen IRs live")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/results.md and the plot")
    args = ap.parse_args(argv)
    names = [s for s in args.models.split(",") if s]
    for name in names:
        if name not in RECIPES:
            ap.error(f"--models: unknown model {name!r} (known: {', '.join(RECIPES)})")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    models_dir = Path(args.models_dir).resolve()
    models_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    # rows of models not rerun this time stay in the results (and the docs table)
    rows = [r for r in (read_json(work / "results.json") or {}).get("models", []) if r["name"] in RECIPES]
    for name in names:
        recipe = RECIPES[name]
        ir_path = models_dir / f"{name}.ir.json"
        trained = None
        if args.retrain or not ir_path.exists():
            trained = train(name, recipe, work, args.threads)
            run(dwn_hw("freeze", str(work / f"{name}.pt"), "-o", str(ir_path), "--force"))
        else:
            log(f"[{name}] train + freeze: using the existing {ir_path}")
            trained = read_json(work / f"{name}.train.json")
        ev = eval_ir(ir_path)
        boards = ["arty_a7"] + (["ulx3s"] + (["icebreaker"] if recipe["small"] else []) if args.pnr else [])
        bundle = export(name, ir_path, work, boards)
        sim = simulate(name, bundle, work)
        if sim["matched"] != sim["n"]:
            raise SystemExit(f"mnist: {name}: only {sim['matched']}/{sim['n']} vectors bit-exact")
        # a large model's board build (core + UART wrapper) would be a second long place-and-route
        # and nextpnr's static placer spreads its random second layer a little better for the router (on the
        # tutorial model's ECP5 core, 70k of 91k arcs were left after 160k router iterations, against 77k with heap)
        synths = {b: synth(name, bundle, work, b, board_build=recipe["small"] or b == "arty_a7",
                           placer="heap" if recipe["small"] else "static") for b in boards}
        rows = [r for r in rows if r["name"] != name] + [summarize(name, recipe, trained, ev, ir_path, bundle, sim,
                                                                   synths)]
        write_json(work / "results.json", {"models": rows, "references": REFERENCES, "threads": args.threads})

    if not args.no_docs:
        write_docs(rows, args.threads)
    log(f"\nmnist: done in {time.monotonic() - start:.0f} s; results in {work / 'results.json'}")
    for r in rows:
        if r["name"] not in names:
            continue
        log(f"  {r['name']}: {r['luts_dwn']} DWN LUTs, accuracy {r['accuracy_ir']:.4f}, "
            f"sim {r['sim']['matched']}/{r['sim']['n']} bit-exact, "
            + ", ".join(f"{b}: {s['core_luts']} LUTs" + (f" @ {s['core_fmax_mhz']} MHz" if s['core_fmax_mhz'] else "")
                        for b, s in r["synth"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
