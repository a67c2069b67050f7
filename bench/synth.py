"""Benchmark: `dwn-hw synth` of an MNIST-shaped core (3,000 LUTs, 784 8-bit features) on the ULX3S (ECP5-85).

Prints JSON: the whole flow's wall time (core yosys, core out-of-context place-and-route, board
build with the UART wrapper, ecppack) as the figure; as the baseline, measured in the same run, a
bare `yosys synth_ecp5` + `nextpnr-ecp5 --out-of-context` of the same core with no dwn-hw flow
around it (on the same core Verilog the flow read); and their ratio. The issue's budget is 600 s
on 2 cores. `--small` runs a digits-shaped core instead (minutes less). The core comes from
`dwn_hw.hdl.build_top` on a random IR of the given shape; the bundle holds `dwn.ir.json`, so the
flow synthesizes the ECP5-primitive core it generates from it. `--portable` leaves the IR out, so
the flow reads the portable `mux` core as before the device styles (about 14 minutes of yosys).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dwn_hw import ir as irmod
from dwn_hw import tools
from dwn_hw.hdl import build_top
from dwn_hw.synth.flows import synth

SHAPES = {
    "mnist": dict(features=784, bits_per_feature=3, input_bits=8, layers=[(2000, 6), (1000, 6)], k=10),
    "digits": dict(features=64, bits_per_feature=3, input_bits=5, layers=[(500, 4)], k=10),
}

def make_bundle(path: Path, shape: str, portable: bool = False) -> dict:
    ir = irmod.random_ir(0, **SHAPES[shape])
    text, info = build_top(ir, inputs="features", pipeline="balanced")
    (path / "rtl").mkdir(parents=True)
    (path / "rtl" / "dwn_top.v").write_text(text)
    if not portable:
        irmod.save(ir, path / "dwn.ir.json")
    enc = ir["encoder"]
    bundle = {"top": info["top"], "latency": info["latency"], "in_width": info["in_width"],
              "features": enc["features"], "input_bits": enc["input_bits"], "signed": enc["signed"],
              "classes": info["classes"], "score_width": info["score_width"], "inputs": "features",
              "expected_from": "ir", "pipeline": info["pipeline"], "lut_style": info["lut_style"]}
    (path / "bundle.json").write_text(json.dumps(bundle))
    return bundle

def bare_flow(bundle_dir: Path, top: str, core: Path) -> float:
    """yosys + nextpnr out of context on the core alone, nothing else."""
    build = bundle_dir / "bare"
    build.mkdir()
    start = time.monotonic()
    subprocess.run(tools.yosys_cmd() + ["-q", "-p", f"read_verilog -sv {core}; synth_ecp5 -top {top} "
                                        "-json core.json"], cwd=build, check=True)
    subprocess.run(tools.nextpnr_cmd("ecp5") + ["--85k", "--package", "CABGA381", "--out-of-context", "--json",
                                                "core.json", "--timing-allow-fail", "--freq", "150", "-q"],
                   cwd=build, check=True)
    return time.monotonic() - start

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="digits-shaped core instead of MNIST-shaped")
    ap.add_argument("--portable", action="store_true", help="synthesize the portable mux core (the old flow)")
    args = ap.parse_args(argv)
    shape = "digits" if args.small else "mnist"
    with tempfile.TemporaryDirectory() as tmp:
        bdir = Path(tmp) / "bundle"
        bundle = make_bundle(bdir, shape, args.portable)
        start = time.monotonic()
        rep = synth(bdir, "ulx3s", quiet=True)
        flow_s = time.monotonic() - start
        build = bdir / "synth" / "ulx3s" / "build"
        core = build / "core_ecp5.v" if (build / "core_ecp5.v").is_file() else bdir / "rtl" / "dwn_top.v"
        base_s = bare_flow(bdir, bundle["top"], "../" + core.resolve().relative_to(bdir.resolve()).as_posix())
    print(json.dumps({
        "bench": "synth_ulx3s", "shape": shape, "core_rtl": rep["core"]["rtl"], "figure": "dwn-hw synth wall seconds",
        "value": round(flow_s, 1), "baseline": "bare yosys + nextpnr out-of-context of the core (s)",
        "baseline_value": round(base_s, 1), "ratio": round(flow_s / base_s, 2), "budget_s": 600,
        "within_budget": flow_s <= 600, "times_s": {k: round(v, 1) for k, v in rep["times_s"].items()},
        "core": {k: rep["core"][k] for k in ("luts", "ffs", "carry", "fmax_mhz")},
        "board": {k: rep[k] for k in ("luts", "ffs", "fmax_mhz", "fits")},
    }, indent=1))
    return 0

if __name__ == "__main__":
    sys.exit(main())
