"""``dwn-hw verify``: check a bundle's Verilog against its IR, without trusting the generator.

Two checks, in their own modules:

* **LUT readback** (:func:`dwn_hw.check.readback.lut_readback`): every LUT table read back from
  the yosys gate netlist of its layer module, on all addresses.
* **Equivalence proof** (:func:`dwn_hw.check.formal.prove`): a miter of the design and a
  reference netlist written from the IR alone (:mod:`dwn_hw.check.reference`), proven by yosys
  ``sat``.

Nothing here (or in those modules) imports ``dwn_hw.hdl``. No torch here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from dwn_hw.check.formal import prove
from dwn_hw.check.readback import lut_readback
from dwn_hw.errors import DwnHwError


def load_bundle(out) -> tuple[dict, dict, list[Path]]:
    """(bundle.json, IR, Verilog sources) of an export bundle, or a DwnHwError saying what is wrong."""
    from dwn_hw import ir as irmod
    from dwn_hw.bundle import read_bundle

    out = Path(out)
    meta = read_bundle(out)
    if "inputs" not in meta:
        raise DwnHwError(f"{out / 'bundle.json'} lacks field 'inputs'; re-export the bundle")
    ir_path = out / "dwn.ir.json"
    if not ir_path.is_file():
        raise DwnHwError(f"{ir_path} is missing; re-export the bundle")
    ir = irmod.load(ir_path)
    rtl = meta.get("rtl") or [str(p.relative_to(out)) for p in sorted((out / "rtl").glob("*.v"))]
    sources = [out / p for p in rtl]
    if not sources or not all(p.is_file() for p in sources):
        raise DwnHwError(f"the bundle's Verilog ({', '.join(rtl) or 'rtl/*.v'}) is missing; re-export it")
    return meta, ir, sources


def verify_bundle(out, formal: bool = False, luts: bool = True, timeout: float | None = None,
                  workdir=None) -> dict:
    """Run the chosen checks on a bundle; return ``{"formal": prove(...), "luts": lut_readback(...)}``.

    By default only the LUT read-back (seconds to a minute); ``formal=True`` adds the equivalence
    proof (minutes: about 11 for the digits model). Work files go to ``OUT/build/verify``.
    """
    meta, ir, sources = load_bundle(out)
    workdir = Path(workdir) if workdir else Path(out) / "build" / "verify"
    result = {}
    if luts:
        result["luts"] = lut_readback(ir, sources, meta["top"], workdir / "luts", timeout,
                                      inputs=meta["inputs"])
    if formal:
        result["formal"] = prove(ir, sources, meta["top"], meta["inputs"], int(meta["latency"]),
                                 workdir / "formal", timeout)
    return result


def _plan_line(ir: dict, formal: bool, luts: bool) -> str:
    """The one line saying what runs and roughly how long."""
    n = sum(len(layer["mapping"]) for layer in ir["layers"])
    runs = []
    if luts:
        runs.append(f"LUT read-back of all {n} LUT tables from the yosys netlist (seconds to a minute)")
    if formal:
        runs.append("the formal equivalence proof against an IR reference netlist (minutes; about 11 for a "
                    "digits-sized model of 500 LUTs, longer for bigger ones)")
    line = "verify: " + " and ".join(runs)
    if not formal:
        line += "; --formal adds the equivalence proof (minutes)"
    return line


@click.command("verify")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--formal", is_flag=True,
              help="Prove the Verilog equal to a reference built from the IR (yosys; minutes: ~11 for digits).")
@click.option("--luts", is_flag=True, help="Read every LUT's table back from the synthesized netlist (fast).")
@click.option("--timeout", type=float, default=None, help="Seconds per yosys run [default: none].")
def verify_cmd(out, formal, luts, timeout):
    """Check the bundle OUT's Verilog against its IR.

    Without flags: the LUT read-back (every table read back from the synthesized netlist; fast).
    --formal: the yosys equivalence proof instead (minutes); --formal --luts: both. Exits 1 when a
    check fails.
    """
    if not formal and not luts:
        luts = True
    _, ir, _ = load_bundle(out)
    click.echo(_plan_line(ir, formal, luts), err=True)
    result = verify_bundle(out, formal=formal, luts=luts, timeout=timeout)
    failed = False
    if "luts" in result:
        r = result["luts"]
        ok = not r["problems"]
        click.echo(f"LUT readback: {r['luts'] - len(r['problems'])}/{r['luts']} LUTs match the IR on all "
                   f"{r['addresses']} addresses ({r['seconds']:.1f} s)")
        for p in r["problems"][:10]:
            click.echo(f"  {p}")
        failed |= not ok
    if "formal" in result:
        r = result["formal"]
        if r["proven"]:
            click.echo(f"formal: proven equal to the IR reference for every input sequence "
                       f"({r['method']}, {r['steps']}-step bounded proof from any state, {r['seconds']:.1f} s)")
        else:
            click.echo(f"formal: NOT equal to the IR reference ({r['seconds']:.1f} s); counterexample:")
            click.echo(r["counterexample"])
        failed |= not r["proven"]
    if failed:
        sys.exit(1)
