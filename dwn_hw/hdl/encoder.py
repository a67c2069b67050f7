"""Thermometer encoder: one comparator per threshold that some LUT reads."""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.lut import DEVICE_STYLES, lut_verilog, native_fanin
from dwn_hw.hdl.netlist import VerilogComponent, port_list
from dwn_hw.ir.grid import grid_bounds


def compare_chain(B: int, signed: bool, t: int, qmin: int, k: int) -> list:
    """``q > t`` on B bits as a chain of LUTs of at most ``k`` inputs, from the low bits up.

    Returns [(bit positions, carry_in, table)]: each LUT reads its bits of ``q`` (and the
    previous LUT's output when ``carry_in``) and outputs ``chunk > t_chunk or (chunk == t_chunk
    and carry)``; the last LUT's output is ``q > t``. Signed values compare in offset binary
    (MSB flipped), so one unsigned chain serves both.
    """
    tu = t - qmin  # offset binary: q > t  <=>  q - qmin > t - qmin
    luts, pos = [], 0
    while pos < B:
        carry = bool(luts)
        m = min(B - pos, k - int(carry))
        bits = list(range(pos, pos + m))
        tv = (tu >> pos) & ((1 << m) - 1)
        table = 0
        for a in range(1 << (m + int(carry))):
            v = sum((((a >> l) & 1) ^ int(signed and p == B - 1)) << l for l, p in enumerate(bits))
            c = (a >> m) & 1 if carry else 0
            if v > tv or (v == tv and c):
                table |= 1 << a
        luts.append((bits, carry, table))
        pos += m
    return luts


class ThermometerEncoder(VerilogComponent):
    """Bits ``q_f > threshold`` of integer features, for a chosen list of (feature, threshold).

    Feature ``f`` is ``in_data[f*B +: B]`` (two's complement when ``signed``). A threshold at
    ``qmin - 1`` is the constant 1 and one at ``qmax`` the constant 0, so they cost nothing;
    equal (feature, threshold) pairs share one comparator. Each comparison is between a
    feature and a constant of the same width and signedness.

    Parameters
    ----------
    features : int
        Number of features F.
    input_bits : int
        Bits per feature B.
    signed : bool
        Whether features are two's complement.
    bits : list of (int, int)
        The (feature, threshold) of each output bit, in output order.
    module : str
        Verilog module name.
    style, cell : str
        LUT style (:mod:`dwn_hw.hdl.lut`). With a device style (``xilinx``, ``ice40``, ``ecp5``) each
        comparator is a chain of LUT primitives (:func:`compare_chain`), so synthesis has no
        comparator to map; otherwise it is a Verilog ``>``.

    Attributes
    ----------
    in_data : Signal(F*B), in
    bits : Signal(len(bits)), out
    """

    def __init__(self, features: int, input_bits: int, signed: bool, bits, *, module: str = "dwn_encoder",
                 style: str = "mux", cell: str = "dwn_lut"):
        if not bits:
            raise DwnHwError("ThermometerEncoder needs at least one output bit")
        self.module, self._style, self._cell = module, style, cell
        self._features, self._B, self._signed = features, input_bits, bool(signed)
        self._qmin, self._qmax = grid_bounds(input_bits, signed)
        for f, t in bits:
            if not 0 <= f < features:
                raise DwnHwError(f"ThermometerEncoder: feature {f} is out of range 0..{features - 1}")
            if not self._qmin - 1 <= t <= self._qmax:
                raise DwnHwError(f"ThermometerEncoder: threshold {t} is outside [{self._qmin - 1}, {self._qmax}]")
        self._bits = [(int(f), int(t)) for f, t in bits]
        super().__init__({"in_data": In(features * input_bits), "bits": Out(len(self._bits))})

    def verilog(self) -> str:
        B, mask = self._B, (1 << self._B) - 1
        digits = max(1, -(-B // 4))
        decls, assigns, shared = [], [], {}
        for i, (f, t) in enumerate(self._bits):
            if t <= self._qmin - 1:
                assigns.append(f"    assign bits[{i}] = 1'b1;\n")
                continue
            if t >= self._qmax:
                assigns.append(f"    assign bits[{i}] = 1'b0;\n")
                continue
            if (f, t) not in shared:
                name = f"f{f}_gt_{'m' if t < 0 else ''}{abs(t)}"
                if self._style in DEVICE_STYLES:
                    decls.append(self._chain(name, f, t))
                else:
                    q = f"in_data[{f * B + B - 1}:{f * B}]"
                    const = f"{B}'h{t & mask:0{digits}x}"
                    cmp = f"$signed({q}) > $signed({const})" if self._signed else f"{q} > {const}"
                    decls.append(f"    wire {name} = {cmp};\n")
                shared[(f, t)] = name
            assigns.append(f"    assign bits[{i}] = {shared[(f, t)]};\n")
        ports = [("input", self._features * B, "in_data"), ("output", len(self._bits), "bits")]
        return f"module {self.module} " + port_list(ports) + "".join(decls) + "".join(assigns) + "endmodule\n"

    def _chain(self, name: str, f: int, t: int) -> str:
        B = self._B
        chain = compare_chain(B, self._signed, t, self._qmin, native_fanin(self._style))
        lines, prev = [], None
        for c, (positions, carry, table) in enumerate(chain):
            out = name if c == len(chain) - 1 else f"{name}_c{c}"
            lines.append(f"    wire {out};\n")
            ins = [f"in_data[{f * B + p}]" for p in positions] + ([prev] if carry else [])
            lines.append(lut_verilog(f"{out}_u", out, ins, table, self._style, self._cell))
            prev = out
        return "".join(lines)

    def ports(self) -> dict:
        return {"in_data": ("i", "in_data"), "bits": ("o", "bits")}
