"""Benchmark: LUT/FF/carry cells of the popcount stage per FPGA family (yosys figures, not Vivado).

Prints JSON: per family (``xilinx``: ``synth_xilinx -flatten -abc9``; ``ecp5``: ``synth_ecp5
-abc9``; ``ice40``: ``synth_ice40 -abc9``) and per popcount size, the LUTs, flip-flops and carry
cells of one popcount, for

* ``chain``: the carry-chain tree the device LUT styles now write (:mod:`dwn_hw.hdl.popcount`),
* ``tree``: the LUT-counter compressor tree (``chain=False``) in the portable ``mux`` style, which
  yosys maps freely (the structure every style wrote before the carry chain), in the same run,
* ``behavioural``: ``assign count = a[0] + a[1] + ...``, left to yosys,

and the ratios ``chain / tree`` and ``chain / behavioural``; plus a 10 x 100 GroupSum (ten such
popcounts side by side, as a 10-class top has). ``luts`` counts LUT1..LUT6 (Xilinx) or LUT4
(ECP5, iCE40 -- an ECP5 CCU2C counts as its two LUT4 under ``carry_luts``, an iCE40 SB_CARRY
sits beside a LUT4 that is counted already). ``--pipeline M`` puts a register every M levels.

``--section encoder`` measures the thermometer encoder instead (``bench/results/qor_encoder.json``):
per family and per threshold set (the used thresholds of the committed models, the same rounded so
that each comparison reads the top 5 bits (:func:`place`: ``t + 1`` to the nearest multiple of 8; on
MNIST this moves mnist_small from 97.87 % to 97.83 %, no retraining) -- and random ones),
the LUTs and carry cells of

* ``shared``: the per-feature shared comparators the device styles now write (:mod:`dwn_hw.hdl.encplan`),
* ``chain``: the generator before it (one ``compare_chain`` per threshold), in the same run,
* ``behavioural``: ``assign b = (x > t)`` (the portable style), left to yosys,

per used threshold (output bit of the plan, the issue's denominator) and per distinct comparator.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw import tools
from dwn_hw.hdl.lut import native_fanin
from dwn_hw.hdl.popcount import Popcount
from dwn_hw.synth.parse import cell_counts, stat_design

FAMILIES = {"xilinx": "synth_xilinx -flatten -abc9", "ecp5": "synth_ecp5 -abc9", "ice40": "synth_ice40 -abc9"}


class _Group(wiring.Component):
    """``groups`` popcounts of ``size`` bits side by side (a GroupSum), registered in and out."""

    def __init__(self, size: int, groups: int, pops):
        self.size, self.groups, self.pops = size, groups, pops
        self.width = pops[0].width
        super().__init__({"bits": In(size * groups), "count": Out(self.width * groups)})

    def elaborate(self, platform):
        m = Module()
        outs = []
        for g, pop in enumerate(self.pops):
            m.submodules[f"pop{g}"] = pop
            m.d.comb += pop.bits.eq(self.bits[g * self.size:(g + 1) * self.size])
            outs.append(pop.count)
        m.d.comb += self.count.eq(Cat(*outs))
        return m


def popcount_verilog(size: int, groups: int, structure: str, family: str, every: int = 0) -> str:
    width = size.bit_length()
    if structure == "behavioural":
        lines = [f"module pop_top (input wire clk, input wire [{size * groups - 1}:0] bits, "
                 f"output wire [{width * groups - 1}:0] count);"]
        for g in range(groups):
            terms = " + ".join(f"{width}'(bits[{g * size + i}])" for i in range(size))
            lines.append(f"    assign count[{g * width} +: {width}] = {terms};")
        return "\n".join(lines) + "\nendmodule\n"
    style = family if structure == "chain" else "mux"
    pops = [Popcount(size, width, every=every, module=f"p{g}", style=style, max_counter=native_fanin(family))
            for g in range(groups)]
    top = _Group(size, groups, pops)
    text = amaranth_verilog.convert(top, name="pop_top", emit_src=False)
    return text + "".join(t for p in pops for t in p.verilog_modules())


def measure(size: int, groups: int, structure: str, family: str, every: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "pop.v").write_text(popcount_verilog(size, groups, structure, family, every))
        script = f"read_verilog -sv pop.v\n{FAMILIES[family]} -top pop_top\ntee -q -o stat.json stat -json\n"
        (tmp / "run.ys").write_text(script)
        subprocess.run(tools.yosys_cmd() + ["-q", "run.ys"], cwd=tmp, check=True, capture_output=True, timeout=900)
        counts = cell_counts(stat_design(json.loads((tmp / "stat.json").read_text())), family)
    out = {"luts": counts["luts"], "ffs": counts["ffs"], "carry": counts["carry"]}
    if family == "ecp5":
        out["carry_luts"] = 2 * counts["carry"]  # a CCU2C is two LUT4 of a slice
    out["luts_total"] = out["luts"] + out.get("carry_luts", 0)
    out["lut_per_bit"] = round(out["luts_total"] / (size * groups), 3)
    return out


ROOT = Path(__file__).resolve().parents[1]
ENCODER_MODELS = ("mnist_small", "mnist_tutorial")


def place(t: int, B: int, qmin: int, qmax: int, k: int = 5) -> int:
    """``t`` moved to the nearest threshold whose comparison reads the top ``k`` bits: ``t + 1 - qmin`` a
    multiple of ``2**(B - k)``, at least one step (a threshold is not rounded into a constant)."""
    step = 1 << max(0, B - k)
    c = max(step, (t + 1 - qmin + step // 2) // step * step)
    return min(qmax, c + qmin - 1)


def encoder_sets(models=ENCODER_MODELS, seed: int = 0) -> dict:
    """{name: (features, input_bits, signed, bits)}: each model's plan sources, the same placed on a
    5-bit grid, and random thresholds (784 features x 1..3, 8 bits)."""
    import random

    from dwn_hw.hdl.plan import plan
    from dwn_hw.ir.grid import grid_bounds
    out = {}
    for name in models:
        ir = json.loads((ROOT / "models" / f"{name}.ir.json").read_text())
        enc = ir["encoder"]
        F, B, signed = int(enc["features"]), int(enc["input_bits"]), bool(enc["signed"])
        qmin, qmax = grid_bounds(B, signed)
        bits = plan(ir, "features").sources
        out[name] = (F, B, signed, bits)
        placed = [(f, place(t, B, qmin, qmax)) for f, t in bits]
        out[f"{name}_placed5"] = (F, B, signed, placed)
    rng = random.Random(seed)
    out["random_784x1-3"] = (784, 8, False, [(f, rng.randint(0, 254)) for f in range(784)
                                             for _ in range(rng.randint(1, 3))])
    return out


def encoder_verilog(F, B, signed, bits, structure: str, family: str) -> str:
    from dwn_hw.hdl.encoder import ThermometerEncoder
    style, struct = ("mux", "chain") if structure == "behavioural" else (family, structure)
    return ThermometerEncoder(F, B, signed, bits, module="enc_top", style=style, structure=struct).verilog()


def measure_text(text: str, top: str, family: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "d.v").write_text(text)
        (tmp / "run.ys").write_text(f"read_verilog -sv d.v\n{FAMILIES[family]} -top {top}\ntee -q -o stat.json stat -json\n")
        subprocess.run(tools.yosys_cmd() + ["-q", "run.ys"], cwd=tmp, check=True, capture_output=True, timeout=900)
        counts = cell_counts(stat_design(json.loads((tmp / "stat.json").read_text())), family)
    out = {"luts": counts["luts"], "carry": counts["carry"]}
    if family == "ecp5":
        out["carry_luts"] = 2 * counts["carry"]  # a CCU2C is two LUT4 of a slice
    out["luts_total"] = out["luts"] + out.get("carry_luts", 0)
    return out


def encoder_section(families, sets) -> dict:
    from dwn_hw.ir.grid import grid_bounds
    result = {}
    for family in families:
        fam = result[family] = {"script": FAMILIES[family], "sets": {}}
        for name, (F, B, signed, bits) in sets.items():
            qmin, qmax = grid_bounds(B, signed)
            distinct = len({(f, t) for f, t in bits if qmin - 1 < t < qmax})
            row = {"used": len(bits), "distinct": distinct}
            for structure in ("shared", "chain", "behavioural"):
                m = measure_text(encoder_verilog(F, B, signed, bits, structure, family), "enc_top", family)
                m["lut_per_used"] = round(m["luts_total"] / len(bits), 3)
                m["lut_per_distinct"] = round(m["luts_total"] / max(1, distinct), 3)
                row[structure] = m
            for base in ("chain", "behavioural"):
                row[f"shared/{base}"] = round(row["shared"]["luts_total"] / max(1, row[base]["luts_total"]), 3)
            fam["sets"][name] = row
            print(f"{family} {name}: " + ", ".join(f"{s} {row[s]['luts_total']} LUT ({row[s]['carry']} carry, "
                                                   f"{row[s]['lut_per_used']}/used)"
                                                   for s in ("shared", "chain", "behavioural")), file=sys.stderr)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", choices=("popcount", "encoder"), default="popcount")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--sizes", default="16,50,100,200,1000")
    ap.add_argument("--groups", type=int, default=10, help="GroupSum of this many 100-bit groups (0: none)")
    ap.add_argument("--pipeline", type=int, default=0, help="a register every M popcount levels (0: none)")
    args = ap.parse_args(argv)
    version = subprocess.run(tools.yosys_cmd() + ["-V"], capture_output=True, text=True).stdout.strip()
    result = {"tool": version, "note": "yosys cell counts, not Vivado/Diamond/iCEcube", "families": {}}
    if args.section == "encoder":
        result["section"] = "encoder"
        result["families"] = encoder_section(args.families.split(","), encoder_sets())
        json.dump(result, sys.stdout, indent=1)
        print()
        return 0
    for family in args.families.split(","):
        fam = result["families"][family] = {"script": FAMILIES[family], "sizes": {}}
        cases = [(int(s), 1) for s in args.sizes.split(",") if s] + ([(100, args.groups)] if args.groups else [])
        for size, groups in cases:
            key = str(size) if groups == 1 else f"{groups}x{size}"
            row = {s: measure(size, groups, s, family, args.pipeline) for s in ("chain", "tree", "behavioural")}
            for base in ("tree", "behavioural"):
                row[f"chain/{base}"] = round(row["chain"]["luts_total"] / max(1, row[base]["luts_total"]), 3)
            fam["sizes"][key] = row
            print(f"{family} {key}: " + ", ".join(f"{s} {row[s]['luts_total']} LUT ({row[s]['carry']} carry)"
                                                 for s in ("chain", "tree", "behavioural")), file=sys.stderr)
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
