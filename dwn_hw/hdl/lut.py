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
    iCE40 ``SB_LUT4`` primitives (fan-in ≤ 4; yosys ``synth_ice40``; simulate with yosys'
    ``ice40/cells_sim.v``).
"""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.netlist import VerilogComponent, port_list

LUT_STYLES = ("mux", "cell", "expr", "xilinx", "ice40")
# Styles whose Verilog simulates with nothing but the emitted file (Verilator, cocotb).
SIMULATABLE_STYLES = ("mux", "cell", "expr")


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
    if style == "ice40" and max_fanin > 4:
        raise DwnHwError(f"LUT style 'ice40' (SB_LUT4) needs fan-in <= 4, but this model has LUTs with n = {max_fanin}")
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
    if style == "ice40":
        # Unused SB_LUT4 inputs are tied low; repeating the table makes them don't-cares anyway.
        rep = 0
        for k in range(16 // size):
            rep |= table << (k * size)
        pins = "".join(f", .I{l}({w})" for l, w in enumerate(list(inputs) + ["1'b0"] * (4 - n)))
        return f"    SB_LUT4 #(.LUT_INIT(16'h{rep:04x})) {name} (.O({out}){pins});\n"
    raise DwnHwError(f"unknown LUT style {style!r}")  # pragma: no cover - check_style guards this


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
