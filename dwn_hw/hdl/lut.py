"""LUT arrays: the LUT layers and the popcount counters, one Verilog module each.

Amaranth's netlist builder costs about 3 ms per LUT (13 s for a 3,000-LUT model, minutes for
100,000), so an array of LUTs is written as plain Verilog (:mod:`dwn_hw.hdl.netlist`).

How a LUT is written decides how long synthesis takes, not what it computes (``bench/export.py``
measures it; docs/hardware.md has the figures):

``mux`` (default)
    the table as nested ``?:`` on the address bits (constant halves folded). Simulates
    anywhere; yosys maps it quickly.
``cell``
    an instance of one small parameterised module (``<top>_lut``, emitted once per top) with
    the table as its ``INIT`` parameter. Simulates anywhere; slow in yosys (one derived
    module per distinct table).
``expr``
    ``assign y = T[{address}]`` with the table as a local parameter. Simulates anywhere.
``xilinx``
    Xilinx ``LUT1``..``LUT6`` primitives (yosys ``synth_xilinx`` or Vivado; simulate with the
    vendor's unisim models).
``ice40``
    iCE40 ``SB_LUT4`` primitives (yosys ``synth_ice40``; simulate with yosys'
    ``ice40/cells_sim.v``). A 5-input LUT is two ``SB_LUT4`` and a third one as a 2:1 mux,
    a 6-input LUT two of those and a mux (7 ``SB_LUT4``).
``ecp5``
    ECP5 ``LUT4`` primitives; a 5-input LUT is two ``LUT4`` into a ``PFUMX``, a 6-input LUT two
    of those into an ``L6MUX21`` (the slice structure yosys' own ``synth_ecp5`` maps to, which
    nextpnr packs into one slice pair). Simulate with yosys' ``ecp5/cells_sim.v``.

The device styles leave yosys nothing to map in the LUT layers, the counters and (through
:func:`compare_chain <dwn_hw.hdl.encoder.compare_chain>`) the encoder's comparators.
"""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.netlist import VerilogComponent, port_list

LUT_STYLES = ("mux", "cell", "expr", "xilinx", "ice40", "ecp5")
# Styles whose Verilog simulates with nothing but the emitted file (Verilator, cocotb).
SIMULATABLE_STYLES = ("mux", "cell", "expr")
# Styles made of a device family's primitives, keyed by the family whose flows read them.
DEVICE_STYLES = {"xilinx": "xilinx", "ice40": "ice40", "ecp5": "ecp5"}
# Largest LUT each style writes as one primitive: encoder chains and popcount counters are cut to it.
NATIVE_FANIN = {"ice40": 4, "ecp5": 4}


def native_fanin(style: str) -> int:
    """Inputs of the style's native LUT (4 for ``SB_LUT4``/``LUT4``, else 6)."""
    return NATIVE_FANIN.get(style, 6)


def cell_verilog(name: str) -> str:
    """Plain Verilog of the parameterised LUT cell used by the ``cell`` style."""
    return (
        f"// One LUT: o = INIT[a]; N inputs (1..6), INIT holds the 2**N table bits.\n"
        f"module {name} #(\n"
        f"    parameter integer N = 6,\n"
        f"    parameter [(1 << N) - 1:0] INIT = 0\n"
        f") (\n"
        f"    input wire [N - 1:0] a,\n"
        f"    output wire o\n"
        f");\n"
        f"    assign o = INIT[a];\n"
        f"endmodule\n"
    )


def check_style(style: str, max_fanin: int) -> str:
    if style not in LUT_STYLES:
        raise DwnHwError(f"unknown LUT style {style!r}; expected one of {', '.join(LUT_STYLES)}")
    if max_fanin > 6:
        raise DwnHwError(f"LUT style {style!r} supports fan-in <= 6, but this model has LUTs with n = {max_fanin}")
    return style


def mux_expr(table: int, names: list) -> str:
    """The LUT as nested ``?:`` on its address bits (Shannon expansion, MSB first), with
    constant halves folded and equal halves merged, so it is at most 2**n - 1 muxes."""
    n = len(names)
    size = 1 << n
    if table == 0:
        return "1'b0"
    if table == (1 << size) - 1:
        return "1'b1"
    if n == 1:
        return names[0] if table == 0b10 else f"~{names[0]}"
    half = size // 2
    lo, hi = table & ((1 << half) - 1), table >> half
    if lo == hi:
        return mux_expr(lo, names[:-1])
    return f"({names[-1]} ? {mux_expr(hi, names[:-1])} : {mux_expr(lo, names[:-1])})"


def lut_verilog(name: str, out: str, inputs: list, table: int, style: str, cell: str) -> str:
    """Verilog lines of one LUT: ``out = table[{inputs[n-1], ..., inputs[0]}]``.

    ``name`` names the instance (or the local table parameter); ``out`` and ``inputs`` are
    Verilog expressions (``y[3]``, ``x[17]``).
    """
    n = len(inputs)
    if n == 0:
        return f"    assign {out} = 1'b{table & 1};\n"
    if style == "mux":
        return f"    assign {out} = {mux_expr(table, inputs)};\n"
    size = 1 << n
    init = f"{size}'h{table:0{max(1, size // 4)}x}"
    if style == "cell":
        addr = ", ".join(reversed(inputs))
        return f"    {cell} #(.N({n}), .INIT({init})) {name} (.a({{{addr}}}), .o({out}));\n"
    if style == "expr":
        addr = ", ".join(reversed(inputs))
        return f"    localparam [{size - 1}:0] {name}_T = {init};\n    assign {out} = {name}_T[{{{addr}}}];\n"
    if style == "xilinx":
        pins = "".join(f", .I{l}({w})" for l, w in enumerate(inputs))
        return f"    LUT{n} #(.INIT({init})) {name} (.O({out}){pins});\n"
    if style == "ecp5" and n > 4:
        inputs, table = mux_select_order(list(inputs), table)
    if style in ("ice40", "ecp5"):
        return _lut4_tree(name, out, list(inputs), table, style)
    raise DwnHwError(f"unknown LUT style {style!r}")  # pragma: no cover - check_style guards this


def depends(table: int, n: int, k: int) -> bool:
    """Whether the ``n``-input ``table`` depends on its address bit ``k``."""
    low = _LOW_MASK[n][k]
    return (table & low) != ((table >> (1 << k)) & low)


# _LOW_MASK[n][k]: the table bits at addresses whose bit k is 0.
_LOW_MASK = {n: [sum(1 << a for a in range(1 << n) if not (a >> k) & 1) for k in range(n)] for n in range(1, 7)}


def permute_table(table: int, n: int, order) -> int:
    """The table of the same LUT with its inputs reordered: new slot ``s`` reads old slot ``order[s]``."""
    order = tuple(order)
    sources = _SOURCES.get(order)
    if sources is None:
        sources = _SOURCES[order] = [sum(((a >> s) & 1) << o for s, o in enumerate(order)) for a in range(1 << n)]
    out = 0
    for a, src in enumerate(sources):
        if (table >> src) & 1:
            out |= 1 << a
    return out


_SOURCES: dict = {}  # order -> the old address each new address reads


def lut4_pins(table: int, n: int) -> int:
    """Input pins the LUT4s of an ``n``-input LUT's Shannon tree (top ``n - 4`` bits as selects) really use:
    for each value of the selects, the inputs its 16-bit cofactor depends on (yosys' ``opt_lut_ins``
    disconnects the others, so they cost no routing)."""
    if n <= 4:
        return sum(depends(table, n, k) for k in range(n))
    return sum(depends((table >> (16 * i)) & 0xFFFF, 4, k) for i in range(1 << (n - 4)) for k in range(4))


def mux_select_order(inputs: list, table: int) -> tuple[list, int]:
    """The ECP5 order of a 5- or 6-input LUT's inputs: which of them drive the ``PFUMX``/``L6MUX21``
    selects (the last ``n - 4`` slots) and which the four (or two) ``LUT4`` (the first four).

    Each select pin is one routed arc whatever its input, but every input of the LUT4s is an arc per
    LUT4 that depends on it: the selects are the inputs whose cofactors leave the LUT4s the fewest
    inputs (:func:`lut4_pins`). Ties keep the given order (a table that no choice improves is written as
    before); the chosen inputs keep their relative order within the selects and within the LUT4s.
    Returns ``(inputs, table)`` reordered together, the same function of the same signals.
    """
    n = len(inputs)
    if n <= 4:
        return inputs, table
    best, best_cost = None, lut4_pins(table, n)
    for order in _SELECT_ORDERS[n]:
        cost = lut4_pins(permute_table(table, n, order), n)
        if cost < best_cost:
            best, best_cost = order, cost
    if best is None:
        return inputs, table
    return [inputs[o] for o in best], permute_table(table, n, best)


def _select_orders(n: int) -> list:
    from itertools import combinations
    out = []
    for sel in combinations(range(n), n - 4):
        order = [k for k in range(n) if k not in sel] + list(sel)
        if order != list(range(n)):
            out.append(tuple(order))
    return out


_SELECT_ORDERS = {n: _select_orders(n) for n in (5, 6)}


def lut4_cell(name: str, out: str, inputs: list, table: int, style: str) -> str:
    """One 4-input primitive of ``inputs`` (≤ 4; slot 0 = LSB of the address)."""
    n = len(inputs)
    # Unused inputs are tied low; repeating the table makes them don't-cares anyway.
    rep = 0
    for k in range(16 >> n):
        rep |= table << (k << n)
    pins = list(inputs) + ["1'b0"] * (4 - n)
    if style == "ice40":
        conns = "".join(f", .I{l}({w})" for l, w in enumerate(pins))
        return f"    SB_LUT4 #(.LUT_INIT(16'h{rep:04x})) {name} (.O({out}){conns});\n"
    # ECP5 LUT4: Z = INIT[{D, C, B, A}].
    conns = "".join(f", .{p}({w})" for p, w in zip("ABCD", pins))
    return f"    LUT4 #(.INIT(16'h{rep:04x})) {name} ({conns[2:]}, .Z({out}));\n"


# An SB_LUT4 used as a 2:1 mux: O = I2 ? I1 : I0 (I3 unused).
_ICE40_MUX = sum(1 << a for a in range(8) if (a >> ((a >> 2) & 1)) & 1)


def _mux2(name: str, out: str, lo: str, hi: str, sel: str, style: str, level: int) -> str:
    """``out = sel ? hi : lo``: PFUMX / L6MUX21 on ECP5 (by ``level``), an SB_LUT4 on iCE40."""
    if style == "ice40":
        return lut4_cell(name, out, [lo, hi, sel], _ICE40_MUX, style)
    if level == 5:
        return f"    PFUMX {name} (.ALUT({hi}), .BLUT({lo}), .C0({sel}), .Z({out}));\n"
    return f"    L6MUX21 {name} (.D0({lo}), .D1({hi}), .SD({sel}), .Z({out}));\n"


def _lut4_tree(name: str, out: str, inputs: list, table: int, style: str) -> str:
    """A LUT of up to 6 inputs from 4-input primitives: Shannon expansion on the top bits.

    Internal wires are ``<name>_t<i>`` (the LUT4s, by the value of the top address bits) and
    ``<name>_m<i>`` (the 5-input halves of a 6-input LUT).
    """
    n = len(inputs)
    if n <= 4:
        return lut4_cell(name, out, inputs, table, style)
    parts = 1 << (n - 4)
    mask = (1 << 16) - 1
    lines = [f"    wire " + ", ".join(f"{name}_t{i}" for i in range(parts)) + ";\n"]
    lines += [lut4_cell(f"{name}_l{i}", f"{name}_t{i}", inputs[:4], (table >> (16 * i)) & mask, style)
              for i in range(parts)]
    if n == 5:
        lines.append(_mux2(f"{name}_x", out, f"{name}_t0", f"{name}_t1", inputs[4], style, 5))
        return "".join(lines)
    lines.append(f"    wire {name}_m0, {name}_m1;\n")
    for h in range(2):
        lines.append(_mux2(f"{name}_x{h}", f"{name}_m{h}", f"{name}_t{2 * h}", f"{name}_t{2 * h + 1}", inputs[4],
                           style, 5))
    lines.append(_mux2(f"{name}_x", out, f"{name}_m0", f"{name}_m1", inputs[5], style, 6))
    return "".join(lines)


def _lut_line(j: int, row, table: int, style: str, cell: str) -> str:
    return lut_verilog(f"u{j}", f"y[{j}]", [f"x[{i}]" for i in row], table, style, cell)


class LUTArray(VerilogComponent):
    """An array of LUTs: output ``j`` is ``tables[j][a]`` with ``a = Σ_l inputs[rows[j][l]] << l``.

    The array is a Verilog module of its own (:meth:`verilog`), instantiated here; a LUT layer
    is one array, each level of a popcount tree another.

    Parameters
    ----------
    module : str
        Verilog module name of the array.
    in_width : int
        Width of ``inputs``; every input bit should be read by some LUT (lint).
    rows : list of list of int
        Address bits of each LUT, as indices into ``inputs``; slot 0 is the least significant.
        An empty row is a constant LUT.
    tables : list of int
        Truth table of each LUT: bit ``a`` is the output at address ``a``.
    style : str
        How a LUT is written (see the module docstring).
    cell : str
        Module name of the LUT cell (``cell`` style).

    Attributes
    ----------
    inputs : Signal(in_width), in
    outputs : Signal(len(rows)), out
    """

    def __init__(self, module: str, in_width: int, rows, tables, *, style: str = "mux", cell: str = "dwn_lut"):
        if len(rows) != len(tables):
            raise DwnHwError(f"LUTArray {module}: {len(rows)} rows but {len(tables)} tables")
        if not rows:
            raise DwnHwError(f"LUTArray {module} needs at least one LUT")
        for j, row in enumerate(rows):
            if any(not 0 <= i < in_width for i in row):
                raise DwnHwError(f"LUTArray {module}: LUT {j} reads {list(row)}, outside inputs 0..{in_width - 1}")
        self.module, self.in_width = module, in_width
        self.rows, self.tables, self.style, self.cell = rows, tables, style, cell
        members = {"outputs": Out(len(rows))}
        if in_width:
            members["inputs"] = In(in_width)
        super().__init__(members)

    def verilog(self) -> str:
        """The array's module as Verilog text."""
        ports = [("output", len(self.rows), "y")]
        if self.in_width:
            ports.insert(0, ("input", self.in_width, "x"))
        body = "".join(_lut_line(j, row, table, self.style, self.cell)
                       for j, (row, table) in enumerate(zip(self.rows, self.tables)))
        return f"module {self.module} " + port_list(ports) + body + "endmodule\n"

    def ports(self) -> dict:
        ports = {"y": ("o", "outputs")}
        if self.in_width:
            ports["x"] = ("i", "inputs")
        return ports


# A LUT layer is exactly a LUT array; the name says what it is in a DWN.
LUTLayer = LUTArray
