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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--sizes", default="16,50,100,200,1000")
    ap.add_argument("--groups", type=int, default=10, help="GroupSum of this many 100-bit groups (0: none)")
    ap.add_argument("--pipeline", type=int, default=0, help="a register every M popcount levels (0: none)")
    args = ap.parse_args(argv)
    version = subprocess.run(tools.yosys_cmd() + ["-V"], capture_output=True, text=True).stdout.strip()
    result = {"tool": version, "note": "yosys cell counts, not Vivado/Diamond/iCEcube", "families": {}}
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
