"""LUT read-back: every LUT's truth table, read from the synthesized netlist, on all addresses.

yosys synthesizes each LUT-layer module (``<top>_layer<i>``) to gates (:class:`Netlist`, the
gate netlist reader); every LUT output is then evaluated from that netlist on all 2ⁿ addresses
of its IR row (bit-parallel, one integer bit per address), its inputs must be a subset of the
row, and the table must equal the IR's, folded by :mod:`dwn_hw.check.reference` (not by the
generator). No torch here.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dwn_hw.check.reference import fold_constants, live_indices
from dwn_hw.errors import DwnHwError
from dwn_hw.ir import layer_tables
from dwn_hw.tools import run_yosys, yosys_reads


_GATES = {
    "$_BUF_": lambda m, a: a["A"],
    "$_NOT_": lambda m, a: ~a["A"] & m,
    "$_AND_": lambda m, a: a["A"] & a["B"],
    "$_NAND_": lambda m, a: ~(a["A"] & a["B"]) & m,
    "$_OR_": lambda m, a: a["A"] | a["B"],
    "$_NOR_": lambda m, a: ~(a["A"] | a["B"]) & m,
    "$_XOR_": lambda m, a: a["A"] ^ a["B"],
    "$_XNOR_": lambda m, a: ~(a["A"] ^ a["B"]) & m,
    "$_ANDNOT_": lambda m, a: a["A"] & ~a["B"] & m,
    "$_ORNOT_": lambda m, a: (a["A"] | ~a["B"]) & m,
    "$_MUX_": lambda m, a: (a["B"] & a["S"]) | (a["A"] & ~a["S"] & m),
    "$_NMUX_": lambda m, a: ~((a["B"] & a["S"]) | (a["A"] & ~a["S"])) & m,
    "$_AOI3_": lambda m, a: ~((a["A"] & a["B"]) | a["C"]) & m,
    "$_OAI3_": lambda m, a: ~((a["A"] | a["B"]) & a["C"]) & m,
    "$_AOI4_": lambda m, a: ~((a["A"] & a["B"]) | (a["C"] & a["D"])) & m,
    "$_OAI4_": lambda m, a: ~((a["A"] | a["B"]) & (a["C"] | a["D"])) & m,
}


class Netlist:
    """One synthesized module (yosys JSON) evaluated bit-parallel: one int bit per address."""

    def __init__(self, module: dict, name: str):
        self.name = name
        self.ports = {p: d["bits"] for p, d in module["ports"].items()}
        self.driver = {}
        for cname, cell in module["cells"].items():
            kind = cell["type"]
            if kind == "$scopeinfo":        # hierarchy bookkeeping left by flatten, no logic
                continue
            if kind not in _GATES and kind != "$lut":
                raise DwnHwError(f"LUT readback: module {name} has a {kind} cell ({cname}); "
                                 "only combinational gates are expected in a LUT layer")
            outs = [p for p, d in cell["port_directions"].items() if d == "output"]
            for bit in cell["connections"][outs[0]]:
                self.driver[bit] = cell

    def eval(self, bit, leaves: dict, mask: int, memo: dict) -> int:
        if bit in ("0", "1"):
            return mask if bit == "1" else 0
        if bit in memo:
            return memo[bit]
        if bit in leaves:
            return leaves[bit]
        cell = self.driver.get(bit)
        if cell is None:
            raise _Unexpected(bit)
        conn = cell["connections"]
        if cell["type"] == "$lut":
            table = cell["parameters"]["LUT"]
            table = int(table, 2) if isinstance(table, str) else int(table)
            ins = [self.eval(b, leaves, mask, memo) for b in conn["A"]]
            out = 0
            for a in range(1 << len(ins)):
                if (table >> a) & 1:
                    term = mask
                    for l, v in enumerate(ins):
                        term &= v if (a >> l) & 1 else ~v & mask
                    out |= term
        else:
            args = {p: self.eval(b[0], leaves, mask, memo) for p, b in conn.items() if p != "Y"}
            out = _GATES[cell["type"]](mask, args)
        memo[bit] = out
        return out


class _Unexpected(Exception):
    """A LUT output depends on a net that is not one of its IR inputs."""


def _address_patterns(m: int) -> list[int]:
    """Bit-parallel patterns: bit a of pattern l is bit l of address a (a = 0 .. 2^m − 1)."""
    size = 1 << m
    return [sum(1 << a for a in range(size) if (a >> l) & 1) for l in range(m)]


def check_layer_netlist(netlist: Netlist, ir_layer: dict, live_out: list[int], live_prev: list[int]) -> list[str]:
    """Compare each live LUT of one IR layer with the netlist; return problems (empty: all match)."""
    x, y = netlist.ports.get("x", []), netlist.ports["y"]
    problems = []
    if len(y) != len(live_out):
        return [f"{netlist.name}: {len(y)} outputs, but the IR layer has {len(live_out)} live LUTs"]
    prev_pos = {s: p for p, s in enumerate(live_prev)}
    tables = layer_tables(ir_layer)
    for pos, j in enumerate(live_out):
        row = ir_layer["mapping"][j]
        m = len(row)
        mask = (1 << (1 << m)) - 1
        pats = _address_patterns(m)
        leaves, feasible = {}, mask
        for l, src in enumerate(row):
            if src not in prev_pos:     # an input the table ignores is not built; the table must not care
                continue
            bit = x[prev_pos[src]]
            if bit in leaves:           # a row reading one input twice: those address bits agree
                feasible &= ~(leaves[bit] ^ pats[l]) & mask
            else:
                leaves[bit] = pats[l]
        try:
            got = netlist.eval(y[pos], leaves, mask, {})
        except _Unexpected:
            problems.append(f"LUT {j}: its output depends on an input outside its IR row {row}")
            continue
        want = int.from_bytes(np.packbits(tables[j], bitorder="little").tobytes(), "little") & mask
        if (got ^ want) & feasible:
            diff = (got ^ want) & feasible
            a = (diff & -diff).bit_length() - 1
            problems.append(f"LUT {j}: netlist gives {(got >> a) & 1} at address {a}, the IR {(want >> a) & 1}")
    return problems


def lut_readback(ir: dict, sources, top: str, workdir, timeout: float | None = None,
                 inputs: str = "features") -> dict:
    """Synthesize each LUT layer module (``<top>_layer<i>``) with yosys and compare every table.

    Returns ``{"luts": checked, "addresses": total addresses compared, "problems": [...],
    "seconds": float}``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    text = "".join(Path(p).read_text() for p in sources)
    ir = fold_constants(ir, inputs)
    live_in, live = live_indices(ir)
    # a layer with no live LUT (every later LUT is a constant) has no hardware to read back
    layers = [i for i in range(len(ir["layers"])) if live[i]]
    modules = {i: f"{top}_layer{i}" for i in layers}
    missing = [m for m in modules.values() if f"module {m}" not in text and f"module \\{m}" not in text]
    if missing:
        raise DwnHwError(f"LUT readback: no module {missing[0]} in the design; expected one module "
                         f"<top>_layer<i> per IR layer (LUT style 'cell' or 'expr')")
    script = yosys_reads(sources, workdir) + "design -save src\n"
    for i, mod in modules.items():
        script += (f"design -load src\nhierarchy -top {mod}\nsynth -flatten -top {mod}\n"
                   f"opt_clean\nwrite_json layer{i}.json\n")
    t0 = time.perf_counter()
    run_yosys(script, workdir, timeout)
    problems, luts, addresses = [], 0, 0
    for i, mod in modules.items():
        data = json.loads((workdir / f"layer{i}.json").read_text())
        netlist = Netlist(data["modules"][mod], mod)
        prev = live_in if i == 0 else live[i - 1]
        problems += [f"layer {i} {p}" for p in check_layer_netlist(netlist, ir["layers"][i], live[i], prev)]
        luts += len(live[i])
        addresses += sum(1 << len(ir["layers"][i]["mapping"][j]) for j in live[i])
    return {"luts": luts, "addresses": addresses, "problems": problems, "seconds": time.perf_counter() - t0}
