"""Thermometer encoder: the thresholds some LUT reads, per feature in shared comparator logic.

``structure="shared"`` (default; device styles) builds each feature's comparators together (:mod:`dwn_hw.hdl.encplan`:
only the significant bits compared, a region code of the low bits shared by a group of thresholds,
two LUTs per ``LUT6_2`` in the ``xilinx`` style); ``structure="chain"`` is the generator before it
(one :func:`compare_chain` per threshold in the device styles, a Verilog ``>`` otherwise), kept as the
baseline ``bench/qor.py`` measures against. The portable styles write a Verilog ``>`` either way.
"""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.encplan import feature_nodes, pack_pairs, pair_across
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
        LUT style (:mod:`dwn_hw.hdl.lut`). With a device style (``xilinx``, ``ice40``, ``ecp5``) the
        comparators are LUT primitives (shared per feature, see ``structure``), so synthesis has no
        comparator to map; otherwise each is a Verilog ``>``.
    structure : str
        ``"shared"`` (:mod:`dwn_hw.hdl.encplan`) or ``"chain"`` (one :func:`compare_chain` per
        threshold: the generator before the shared one, kept as a baseline).

    Attributes
    ----------
    in_data : Signal(F*B), in
    bits : Signal(len(bits)), out
    """

    def __init__(self, features: int, input_bits: int, signed: bool, bits, *, module: str = "dwn_encoder",
                 style: str = "mux", cell: str = "dwn_lut", structure: str = "shared"):
        if structure not in ("shared", "chain"):
            raise DwnHwError(f"ThermometerEncoder: structure {structure!r} is not 'shared' or 'chain'")
        self._structure = structure
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
        # The portable styles keep the Verilog ``>``: written as shared LUT logic it maps to the same
        # LUT6 count in synth_xilinx (1,352 vs 1,357 for mnist_small) and 3x worse in synth_ecp5.
        if self._structure == "shared" and self._style in DEVICE_STYLES:
            return self._shared_verilog()
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

    def _shared_verilog(self) -> str:
        B, style = self._B, self._style
        K = native_fanin(style)
        pair = style == "xilinx"
        per_feature, consts = {}, {}
        for f, t in self._bits:
            if t <= self._qmin - 1:
                consts[(f, t)] = "1'b1"
            elif t >= self._qmax:
                consts[(f, t)] = "1'b0"
            else:
                per_feature.setdefault(f, set()).add(t + 1 - self._qmin)
        flip = B - 1 if self._signed else -1
        name_of, lines, leftovers = dict(consts), [], []
        for f in sorted(per_feature):
            nodes, out = feature_nodes(f"f{f}", sorted(per_feature[f]), B, K, pair)
            for c, wire in out.items():
                name_of[(f, c - 1 + self._qmin)] = wire
            exprs = lambda n, f=f: [f"in_data[{f * B + v}]" if k == "x" else v for k, v in n.inputs]
            # The sign bit of a signed feature enters the tables inverted (offset binary).
            for n in nodes:
                n.table = _flip_inputs(n.table, len(n.inputs), [l for l, (k, v) in enumerate(n.inputs) if k == "x" and v == flip])
            lines += [f"    wire {n.name};\n" for n in nodes]
            if not pair:
                lines += [lut_verilog(f"{n.name}_u", n.name, exprs(n), n.table, style, self._cell) for n in nodes]
                continue
            pairs, singles = pack_pairs(nodes, key=exprs)
            lines += [_lut6_2(nodes[a], nodes[b], exprs(nodes[a]), exprs(nodes[b])) for a, b in pairs]
            leftovers += [(nodes[i], exprs(nodes[i])) for i in singles]
        if pair:
            cross = pair_across([len(e) if len(e) <= 5 else 6 for _, e in leftovers])
            done = set()
            for a, b in cross:
                lines.append(_lut6_2(leftovers[a][0], leftovers[b][0], leftovers[a][1], leftovers[b][1]))
                done |= {a, b}
            lines += [lut_verilog(f"{n.name}_u", n.name, e, n.table, style, self._cell)
                      for i, (n, e) in enumerate(leftovers) if i not in done]
        assigns = [f"    assign bits[{i}] = {name_of[(f, t)]};\n" for i, (f, t) in enumerate(self._bits)]
        ports = [("input", self._features * B, "in_data"), ("output", len(self._bits), "bits")]
        return f"module {self.module} " + port_list(ports) + "".join(lines) + "".join(assigns) + "endmodule\n"

    def ports(self) -> dict:
        return {"in_data": ("i", "in_data"), "bits": ("o", "bits")}


def _flip_inputs(table: int, n: int, slots: list) -> int:
    """``table`` of ``n`` inputs with the address bits ``slots`` inverted."""
    if not slots:
        return table
    mask = sum(1 << s for s in slots)
    return sum(1 << (a ^ mask) for a in range(1 << n) if (table >> a) & 1)


def _spread(table: int, ins: list, pins: list) -> int:
    """A table over ``ins`` re-indexed to a 5-input table over ``pins`` (ins a subset of pins)."""
    slot = [pins.index(w) for w in ins]
    out = 0
    for a in range(32):
        addr = sum(((a >> s) & 1) << l for l, s in enumerate(slot))
        if (table >> addr) & 1:
            out |= 1 << a
    return out


def _lut6_2(a, b, ins_a: list, ins_b: list) -> str:
    """Nodes ``a`` (on O6) and ``b`` (on O5) in one ``LUT6_2``: I5 = 1, O6 = INIT[63:32], O5 = INIT[31:0]."""
    pins = list(dict.fromkeys(ins_a + ins_b))
    assert len(pins) <= 5
    init = (_spread(a.table, ins_a, pins) << 32) | _spread(b.table, ins_b, pins)
    conns = "".join(f", .I{l}({w})" for l, w in enumerate(pins + ["1'b0"] * (5 - len(pins))))
    return (f"    LUT6_2 #(.INIT(64'h{init:016x})) {a.name}_u (.O6({a.name}), .O5({b.name}){conns}, "
            f".I5(1'b1));\n")
