"""`make demo`: digits from training to a placed iCE40 UP5K design, as a new user would run it.

Each step is the real CLI in a subprocess (so the demo tests what users type) and fails loudly:
train -> export (with the iCEBreaker board files) -> `make sim` in the bundle ->
`dwn-hw synth --board icebreaker` -> a summary table (accuracy in PyTorch and in simulation, LUTs,
FFs, Fmax, latency). A step whose command is not available in this installation is reported as
skipped, with the reason, and the steps that need it are skipped too.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _stream import run_streamed  # scripts/ is on sys.path when the script runs

ROOT = Path(__file__).resolve().parent.parent
BOARD = "icebreaker"


def dwn_hw(*args: str) -> list[str]:
    return [sys.executable, "-m", "dwn_hw.cli", *args]


class Demo:
    def __init__(self, out: Path):
        self.out = out
        self.rows: list[tuple[str, str, float]] = []  # step, status, seconds
        self.t0 = time.monotonic()

    def available(self, command: str) -> str | None:
        """None when `dwn-hw COMMAND` exists, else the reason it does not."""
        res = subprocess.run(dwn_hw(command, "--help"), capture_output=True, text=True)
        if res.returncode != 0 or "not available in this installation" in res.stdout:
            return f"`dwn-hw {command}` is not available yet"
        return None

    def step(self, name: str, cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
        print(f"\n==> {name}: {' '.join(cmd[2:] if cmd[:2] == [sys.executable, '-m'] else cmd)}", flush=True)
        rc, text, took = run_streamed(cmd, cwd, env)
        if rc != 0:
            self.rows.append((name, f"FAILED (exit {rc})", took))
            self.table({})
            sys.exit(f"demo: step '{name}' failed with exit status {rc}")
        self.rows.append((name, "ok", took))
        return text

    def skip(self, name: str, why: str) -> None:
        print(f"\n==> {name}: SKIPPED ({why})", flush=True)
        self.rows.append((name, f"skipped: {why}", 0.0))

    def table(self, figures: dict) -> None:
        print("\n## Steps\n")
        print("| step | status | time (s) |\n|---|---|---|")
        for name, status, took in self.rows:
            print(f"| {name} | {status} | {took:.1f} |")
        print(f"\nwhole demo: {time.monotonic() - self.t0:.1f} s")
        if figures:
            print("\n## Result (digits, iCEBreaker iCE40UP5K-SG48)\n")
            print("| figure | value |\n|---|---|")
            for k, v in figures.items():
                print(f"| {k} | {v} |")


def accuracy_from(text: str) -> float | None:
    """The last percentage or 0..1 accuracy a command printed."""
    found = re.findall(r"accuracy[^0-9]*([0-9]+(?:\.[0-9]+)?)\s*(%?)", text, re.IGNORECASE)
    if not found:
        return None
    value, pct = found[-1]
    return float(value) / (100.0 if pct else 1.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo_out", help="working folder (replaced)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the trainer's)")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    demo = Demo(out)
    figures: dict[str, str] = {}
    model, bundle = out / "model.pt", out / "bundle"

    train = ["train", "-o", str(model)] + (["--epochs", str(args.epochs)] if args.epochs else [])
    text = demo.step("train (digits)", dwn_hw(*train))
    acc = accuracy_from(text)  # the trainer ends with the PyTorch test accuracy of the saved model
    figures["accuracy, PyTorch (test set)"] = f"{acc:.2%}" if acc is not None else "see the eval step"

    why = demo.available("export")
    if why:
        demo.skip("export --board icebreaker", why)
        for name in ("make sim", "synth --board icebreaker"):
            demo.skip(name, "needs the export bundle")
        demo.table(figures)
        print("\ndemo incomplete: the steps above marked skipped need commands that are not available yet")
        return 1
    demo.step("export --board icebreaker", dwn_hw("export", str(model), "--target", "verilog", "-o", str(bundle),
                                                  "--board", BOARD))
    bj = json.loads((bundle / "bundle.json").read_text())

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    text = demo.step("make sim (bit-exact check)", ["make", "sim"], cwd=bundle, env=env)
    m = re.search(r"bit-exact:\s*(\d+)\s*/\s*(\d+)", text)
    figures["simulation: bit-exact vectors"] = f"{m.group(1)}/{m.group(2)}" if m else "see the sim step"
    if m and "labels" in _vector_keys(bundle):
        figures["accuracy, simulation"] = _sim_accuracy(bundle, int(m.group(1)) == int(m.group(2)))
    elif m and m.group(1) == m.group(2) and "pytorch" in text and acc is not None:
        # The simulated hardware gave PyTorch's scores and class on every test vector.
        figures["accuracy, simulation"] = f"{acc:.2%} (PyTorch's classes on all {m.group(2)} test vectors)"

    report_path = out / "synth_report.json"
    # The core-alone place-and-route (its own Fmax) would double the nextpnr time: the demo keeps to
    # the board build, whose Fmax includes the core; `dwn-hw synth` without the flag gives both.
    demo.step("synth --board icebreaker", dwn_hw("synth", str(bundle), "--board", BOARD, "--json", str(report_path),
                                                 "--no-core-pnr"))
    rep = json.loads(report_path.read_text())
    core = rep["core"]
    figures.update({
        "core: LUT4 / FF / carry": f"{core['luts']} / {core['ffs']} / {core['carry']}",
        "board build (core + UART): LUT4 / FF": f"{rep['luts']} / {rep['ffs']} "
                                                f"({100 * rep['utilisation']['luts']:.1f} % of the UP5K)",
        "board build: Fmax (12 MHz clock)": _mhz(rep["fmax_mhz"]),
        "latency": f"{rep['latency_cycles']} cycles",
        "bitstream": os.path.relpath(rep["bitstream"], out) if rep.get("bitstream") else "none",
        "pipeline": str(bj.get("pipeline")),
    })
    demo.table(figures)
    return 0


def _mhz(v):
    return "n/a" if v is None else f"{v:.1f} MHz"


def _vector_keys(bundle: Path) -> list[str]:
    import numpy as np

    with np.load(bundle / "vectors" / "vectors.npz") as f:
        return list(f.files)


def _sim_accuracy(bundle: Path, all_exact: bool) -> str:
    """The hardware's accuracy: it computed exactly the expected classes, so theirs against the labels."""
    import numpy as np

    if not all_exact:
        return "n/a (simulation mismatches)"
    with np.load(bundle / "vectors" / "vectors.npz") as f:
        return f"{float(np.mean(f['classes'] == f['labels'])):.2%}"


if __name__ == "__main__":
    sys.exit(main())
