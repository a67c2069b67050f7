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

``--section models`` measures whole cores (``bench/results/qor_models.json`` and ``qor_models.md``): per
family and per IR model (every ``models/mnist_fr*.ir.json`` and the two random models of
``bench/same_function.py``, ``same_small`` and ``same_mnist``; ``--models`` picks some, and the rows
are merged into the output, the others kept), the LUTs, FFs and carry cells per stage of

* ``device``: the core ``dwn-hw synth --board B`` reads (``build_top(ir, lut_style=<family>)``:
  carry-chain popcount, shared encoder, the family's LUT primitives),
* ``baseline``: the same IR in the portable ``mux`` style (the generator's structures before the
  device-specific popcount and encoder), in the same run with the same scripts,

each synthesized twice with the family's flow script: with the hierarchy kept (every stage is its
own module; cells summed per stage with :func:`dwn_hw.hdl.estimate.stage_of`) and with ``-flatten``
(the total the flow reports), and the ratios device / baseline per stage and in total.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw import tools
from dwn_hw.fsutil import atomic_write_text
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


def _yosys_stat(text: str, top: str, script: str, timeout: int) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "d.v").write_text(text)
        (tmp / "run.ys").write_text(f"read_verilog -sv d.v\n{script} -top {top}\ntee -q -o stat.json stat -json\n")
        t0 = time.monotonic()
        subprocess.run(tools.yosys_cmd() + ["-q", "-l", "yosys.log", "run.ys"], cwd=tmp, check=True,
                       capture_output=True, timeout=timeout)
        return json.loads((tmp / "stat.json").read_text()), round(time.monotonic() - t0, 1)


def _counts(cells: dict, family: str) -> dict:
    c = cell_counts(cells, family)
    out = {"luts": c["luts"], "ffs": c["ffs"], "carry": c["carry"]}
    if family == "ecp5":
        out["carry_luts"] = 2 * c["carry"]  # a CCU2C is two LUT4 of a slice
    out["luts_total"] = out["luts"] + out.get("carry_luts", 0)
    return out


def measure(size: int, groups: int, structure: str, family: str, every: int = 0) -> dict:
    stat, _ = _yosys_stat(popcount_verilog(size, groups, structure, family, every), "pop_top", FAMILIES[family], 900)
    out = _counts(stat_design(stat), family)
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
    stat, _ = _yosys_stat(text, top, FAMILIES[family], 900)
    out = _counts(stat_design(stat), family)
    del out["ffs"]  # an encoder is combinational: its rows never had an FF column
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


# ---- --section models -------------------------------------------------------------------------------------
# The flow's own scripts (dwn_hw.synth.flows: the core alone; synth_ecp5 and synth_ice40 flatten by default).
MODEL_SCRIPTS = {
    "xilinx": {"flat": "synth_xilinx -family xc7 -flatten -noiopad", "hier": "synth_xilinx -family xc7 -noiopad"},
    "ecp5": {"flat": "synth_ecp5", "hier": "synth_ecp5 -noflatten"},
    "ice40": {"flat": "synth_ice40", "hier": "synth_ice40 -noflatten"},
}
MODEL_PARTS = {"xilinx": "xc7 (yosys maps per family; the arty_a7 flow's part is xc7a35t)",
               "ecp5": "ECP5 (yosys maps per family; LUT4 + CCU2C)",
               "ice40": "iCE40 (yosys maps per family; the icebreaker flow's part is UP5K)"}
SAME_FUNCTION = ("same_small", "same_mnist")
MODELS_OUT = ROOT / "bench" / "results" / "qor_models.json"


def _same_function():
    spec = importlib.util.spec_from_file_location("same_function", Path(__file__).with_name("same_function.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def default_models() -> list[str]:
    return sorted((p.name[:-len(".ir.json")] for p in (ROOT / "models").glob("mnist_fr*.ir.json")),
                  key=lambda n: (len(n), n)) + list(SAME_FUNCTION)


def load_model(name: str) -> tuple[str, dict, str]:
    """(row key, IR, where it comes from) for a name under models/, a path, or same_small / same_mnist."""
    from dwn_hw import ir as irmod
    if name in SAME_FUNCTION:
        shape = name[len("same_"):]
        sf = _same_function()
        s = sf.SHAPES[shape]
        desc = (f"bench/same_function.py make_ir({shape!r}, seed=0): random_ir, {s['features']}x{s['bits']} -> "
                + " -> ".join(str(N) for N, _ in s["layers"]) + f", n=6, k={s['k']}")
        return name, sf.make_ir(shape, 0), desc
    path = Path(name)
    if not path.is_file():
        path = ROOT / "models" / (name if name.endswith(".ir.json") else f"{name}.ir.json")
    key = path.name[:-len(".ir.json")] if path.name.endswith(".ir.json") else path.stem
    try:
        where = str(path.resolve().relative_to(ROOT))
    except ValueError:
        where = str(path)
    return key, irmod.load(path), where


def stage_cells(stat: dict, top: str) -> dict:
    """{stage: leaf cells} of a hierarchical ``stat -json``: every cell under a child instance of ``top`` goes
    to that child's stage (:func:`dwn_hw.hdl.estimate.stage_of`), times its instance count; ``top``'s own
    cells go to the top's stage (registers, glue)."""
    from dwn_hw.hdl.estimate import stage_of
    mods = {name.lstrip("\\"): {k: int(v) for k, v in m.get("num_cells_by_type", {}).items()}
            for name, m in stat["modules"].items()}
    memo: dict = {}

    def leaves(mod: str) -> dict:
        if mod not in memo:
            out: dict = {}
            for cell, n in mods[mod].items():
                sub = leaves(cell) if cell in mods else {cell: 1}
                for k, v in sub.items():
                    out[k] = out.get(k, 0) + n * v
            memo[mod] = out
        return memo[mod]

    stages: dict = {}
    for cell, n in mods[top].items():
        stage, sub = (stage_of(cell, top), leaves(cell)) if cell in mods else (stage_of(top, top), {cell: 1})
        dst = stages.setdefault(stage, {})
        for k, v in sub.items():
            dst[k] = dst.get(k, 0) + n * v
    return stages


def _stage_order(name: str):
    order = ["encoder", "layer", "popcount", "argmax"]
    head = name.split(" ")[0]
    return (order.index(head) if head in order else len(order), int(name.split(" ")[1]) if head == "layer" else 0)


def measure_core(ir: dict, family: str, style: str, flat: bool = True, timeout: int = 7200) -> dict:
    """One core of ``ir`` in ``style`` through ``family``'s scripts: per-stage and hierarchical counts (hierarchy
    kept) and, with ``flat``, the flat total."""
    from dwn_hw.hdl import build_top
    text, info = build_top(ir, lut_style=style)
    top = info["top"]
    scripts = MODEL_SCRIPTS[family]
    stat, secs = _yosys_stat(text, top, scripts["hier"], timeout)
    cells = stage_cells(stat, top)
    stages = {s: _counts(cells[s], family) for s in sorted(cells, key=_stage_order)}
    row = {"lut_style": style, "latency": info["latency"], "pipeline": info["pipeline"], "stages": stages,
           "hier_total": _counts(stat_design(stat), family), "yosys_s": {"hier": secs}}
    if flat:
        stat, secs = _yosys_stat(text, top, scripts["flat"], timeout)
        row["flat_total"] = _counts(stat_design(stat), family)
        row["flat_cells"] = cell_counts(stat_design(stat), family)["cells"]
        row["yosys_s"]["flat"] = secs
    return row


def _ratio(a: dict, b: dict) -> float | None:
    return round(a["luts_total"] / b["luts_total"], 3) if b and b.get("luts_total") else None


def model_row(ir: dict, family: str, flat: bool = True, timeout: int = 7200) -> dict:
    row = {"device": measure_core(ir, family, family, flat, timeout),
           "baseline": measure_core(ir, family, "mux", flat, timeout)}
    dev, base = row["device"], row["baseline"]
    ratio = {s: _ratio(dev["stages"][s], base["stages"].get(s)) for s in dev["stages"]}
    ratio["hier_total"] = _ratio(dev["hier_total"], base["hier_total"])
    if flat:
        ratio["flat_total"] = _ratio(dev["flat_total"], base["flat_total"])
    row["ratio_luts"] = ratio
    return row


def _load() -> str:
    la = os.getloadavg()
    return f"load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} on {os.cpu_count()} cores"


def models_section(families, names, out: Path, md: Path, version: str, timeout: int = 7200) -> dict:
    result = {}
    if out.exists():
        result = json.loads(out.read_text())
    result.update({
        "section": "models", "tool": version,
        "note": "yosys cell counts, not Vivado/Diamond/iCEcube; dwn2rtl's own calibration puts yosys at about half "
                "of Vivado on encoders",
        "accounting": "core with encoder (inputs=features, pipeline balanced, top dwn_top), no board wrapper, no IO "
                      "buffers",
        "baseline": "the same IR with lut_style='mux' (portable: LUT-counter popcount tree, per-threshold "
                    "comparators), the same scripts, in the same run",
        "luts": "xilinx LUT1..LUT6 (LUT6_2 once); ecp5 LUT4 plus carry_luts = 2 per CCU2C (luts_total); ice40 "
                "SB_LUT4 (an SB_CARRY sits beside a LUT4 counted already); ratios are luts_total device/baseline",
        "stages": "hierarchy kept (the hier script), cells under each child instance of the top summed per stage "
                  "(dwn_hw.hdl.estimate.stage_of); the flat total is the flat script on the same design",
    })
    fams = result.setdefault("families", {})
    for family in families:
        fam = fams.setdefault(family, {})
        fam.update({"scripts": MODEL_SCRIPTS[family], "part": MODEL_PARTS[family]})
        rows = fam.setdefault("models", {})
        for name in names:
            key, ir, where = load_model(name)
            t0 = time.monotonic()
            print(f"[{time.strftime('%H:%M:%S')}] {family} {key}: start ({_load()})", file=sys.stderr, flush=True)
            row = {"source": where, "date": time.strftime("%Y-%m-%d", time.gmtime()), "load_at_start": _load()}
            row.update(model_row(ir, family, timeout=timeout))
            row["load_at_end"] = _load()
            row["seconds"] = round(time.monotonic() - t0, 1)
            rows[key] = row
            atomic_write_text(out, json.dumps(result, indent=1) + "\n")
            atomic_write_text(md, models_markdown(result))
            d, b = row["device"]["flat_total"], row["baseline"]["flat_total"]
            print(f"[{time.strftime('%H:%M:%S')}] {family} {key}: device {d['luts_total']} LUT / {d['ffs']} FF / "
                  f"{d['carry']} carry, baseline {b['luts_total']} / {b['ffs']} / {b['carry']} "
                  f"(ratio {row['ratio_luts']['flat_total']}), {row['seconds']} s", file=sys.stderr, flush=True)
    return result


def models_markdown(result: dict) -> str:
    lines = ["# Whole cores per stage: device style against the portable baseline (yosys)", "",
             "Generated by `bench/qor.py --section models` (with the JSON beside it, `qor_models.json`); do not "
             "edit.", "",
             f"Tool: {result.get('tool', '?')}. Accounting: {result.get('accounting', '')}.", "",
             "**These are yosys counts, not Vivado** (nor Diamond or iCEcube): dwn2rtl's own calibration puts yosys "
             "at about half of Vivado on encoders, so compare them with published Vivado figures with that in mind.",
             "", f"Baseline: {result.get('baseline', '')}. LUTs: {result.get('luts', '')}. "
             f"Stages: {result.get('stages', '')}. Stage sums (hierarchy kept) differ from the flat total: "
             "flattening lets yosys optimise across stages.", ""]
    for family, fam in result.get("families", {}).items():
        sc = fam.get("scripts", {})
        lines += [f"## {family}", "", f"Scripts: `{sc.get('hier')}` (per stage) and `{sc.get('flat')}` (flat "
                  f"total), then `stat -json`; {fam.get('part', '')}.", ""]
        lut = "LUT4 (+2/CCU2C)" if family == "ecp5" else "LUT"
        lines += [f"| model | stage | device {lut} | FF | carry | baseline {lut} | FF | carry | ratio LUT |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for key, row in fam.get("models", {}).items():
            dev, base = row["device"], row["baseline"]
            entries = [(s, dev["stages"][s], base["stages"].get(s), row["ratio_luts"].get(s)) for s in dev["stages"]]
            entries += [(s, base["stages"][s], None, None) for s in base["stages"] if s not in dev["stages"]]
            entries += [("**sum of stages**", dev["hier_total"], base["hier_total"], row["ratio_luts"]["hier_total"])]
            if "flat_total" in dev:
                entries += [("**flat total**", dev["flat_total"], base["flat_total"], row["ratio_luts"]["flat_total"])]
            for i, (s, d, b, r) in enumerate(entries):
                cell = lambda m: (f"{m['luts_total']:,} | {m['ffs']:,} | {m['carry']:,}" if m else "- | - | -")  # noqa: E731
                lines.append(f"| {key if i == 0 else ''} | {s} | {cell(d)} | {cell(b)} | "
                             f"{'-' if r is None else f'{r:.3f}'} |")
        lines.append("")
        dates = sorted({row.get("date", "?") for row in fam.get("models", {}).values()})
        loads = "; ".join(f"{k}: {row.get('load_at_start', '?')}" for k, row in fam.get("models", {}).items())
        lines += [f"Measured {', '.join(dates)}; machine load at each model's start: {loads}.", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", choices=("popcount", "encoder", "models"), default="popcount")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--sizes", default="16,50,100,200,1000")
    ap.add_argument("--groups", type=int, default=10, help="GroupSum of this many 100-bit groups (0: none)")
    ap.add_argument("--pipeline", type=int, default=0, help="a register every M popcount levels (0: none)")
    ap.add_argument("--models", default="", help="models section: names under models/, paths, same_small, "
                    "same_mnist (comma-separated; default every models/mnist_fr*.ir.json and both same_*)")
    ap.add_argument("--out", type=Path, default=MODELS_OUT, help="models section: JSON to merge the rows into")
    ap.add_argument("--md", type=Path, default=None, help="models section: markdown table (default: --out with .md)")
    ap.add_argument("--timeout", type=int, default=7200, help="models section: seconds per yosys run")
    args = ap.parse_args(argv)
    version = subprocess.run(tools.yosys_cmd() + ["-V"], capture_output=True, text=True).stdout.strip()
    result = {"tool": version, "note": "yosys cell counts, not Vivado/Diamond/iCEcube", "families": {}}
    if args.section == "models":
        names = [n for n in args.models.split(",") if n] or default_models()
        md = args.md or args.out.with_suffix(".md")
        models_section(args.families.split(","), names, args.out, md, version, args.timeout)
        return 0
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
