"""Carry-chain popcount trees of the device LUT styles: explicit primitives, shape by cost model.

A popcount is a column compression: bits sit in columns by weight; each level replaces bits of
a column by the outputs of a *cell*; when every column holds at most two bits (three in the
lowest column with two or more, where the chain's carry-in takes the third) one ripple adder on
the carry chain adds the two rows. Outputs of weight ≥ the score width are never built (they
are provably 0). Cells per family (``k`` inputs at weight ``w``):

``xilinx``
    ``c7`` -- a (k;3) counter for k = 4..7 on two ``LUT6_2`` and the low half of a ``CARRY4``.
    With ``p`` the first k-2 inputs (≤ 5), ``q`` the next and ``r`` the last:
    ``cnt = r + (par(p) + q) + 2·([cnt(p) ≥ 2] + [cnt(p) ≥ 4])``. LUT A: ``O6 = par(p) ^ q``
    (``q`` on I5, so ``O5 = par(p)``), chain position 0 adds ``par(p) + q`` (S = O6, DI = O5),
    ``r`` enters on ``CYINIT``; LUT B (I5 = 1): ``O6 = ge2 ^ ge4``, ``O5 = ge2``, position 1
    adds ``ge2 + ge4``. Outputs ``O[0]``, ``O[1]``, ``CO[1]``: 2 LUTs eliminate up to 4 bits.
    ``fa`` -- a full adder, one ``LUT6_2`` (I5 = 1; ``O6 = a^b^c``, ``O5 = maj``).
    Final adder: ``LUT2`` (``a ^ b``) per position with two bits, ``DI = a``, ``CARRY4`` cascaded.
``ecp5``
    ``fa`` -- two ``LUT4`` (sum, carry). Final adder: ``CCU2C`` (``INJECT1_x = "NO"``; the
    LUT4 is ``a ^ b`` with C = D = 1, its low nibble ``a`` is the generate), one position per half.
``ice40``
    ``fa`` -- two ``SB_LUT4``. Final adder: ``SB_LUT4`` (``I1 ^ I2 ^ I3``, I3 = carry in)
    beside an ``SB_CARRY`` per position.

LUT4 families spend a LUT4 per chain position (an ECP5 ``CCU2C`` is two LUT4 of a slice, an
iCE40 ``SB_CARRY`` sits beside the LUT4 of its logic cell), so there the chain only replaces the
final adder; the cost model counts those LUTs.

Shape search (:func:`plan`): a level takes the columns from the lowest up and cuts each column
taller than its target into cells; the parameters are the smallest ``c7`` worth building (4..7
inputs; smaller chunks become a ``fa`` at 3, else stay) and whether a column of exactly three
takes a ``fa``. Every combination is planned; the cheapest in LUTs wins (then fewer levels, then
fewer carry cells). The plan is cheap (pure Python on column heights).
"""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

from dwn_hw.hdl.netlist import VerilogComponent, port_list

FAMILIES = ("xilinx", "ecp5", "ice40")
# Cells each family may use, and (LUTs, carry cells) each.
CELLS = {"xilinx": ("c7", "fa"), "ecp5": ("fa",), "ice40": ("fa",)}
COST = {("xilinx", "c7"): (2, 1), ("xilinx", "fa"): (1, 0), ("ecp5", "fa"): (2, 0), ("ice40", "fa"): (2, 0)}


def _par(a: int) -> int:
    return bin(a).count("1") & 1


def _table(n: int, f) -> int:
    return sum(1 << a for a in range(1 << n) if f([(a >> i) & 1 for i in range(n)]))


class ChainModule(VerilogComponent):
    """A generated module ``y = f(x)`` of device primitives (one popcount level or its adder)."""

    def __init__(self, module: str, in_width: int, out_width: int, body: str, luts: int, carry: int):
        self.module, self.in_width, self.body, self.luts, self.carry = module, in_width, body, luts, carry
        super().__init__({"inputs": In(in_width), "outputs": Out(out_width)})
        self.out_width = out_width

    def verilog(self) -> str:
        ports = [("input", self.in_width, "x"), ("output", self.out_width, "y")]
        return f"module {self.module} " + port_list(ports) + self.body + "endmodule\n"

    def ports(self) -> dict:
        return {"x": ("i", "inputs"), "y": ("o", "outputs")}


def _nout(kind: str, k: int, w: int, width: int) -> int:
    return min(k.bit_length(), width - w)


def _final_ok(family, cols) -> bool:
    """Columns the final adder takes: ≤ 2 bits each, 3 in the lowest column with ≥ 2 on Xilinx (CYINIT)."""
    low = next((c for c in cols if len(c) >= 2), None) if family == "xilinx" else None
    return all(len(c) <= 2 or (c is low and len(c) == 3) for c in cols)


def _level(family, cols, width, min_c7, fa3, new_id):
    """One level: the cells ``(kind, w, ins, outs)`` and the columns after it."""
    new = [[] for _ in range(width)]
    cells = []
    low_seen = False
    for w, col in enumerate(cols):
        target = 2
        if family == "xilinx" and not low_seen and len(col) >= 2:
            target, low_seen = 3, True
        if len(col) <= target:
            new[w].extend(col)
            continue
        rest = list(col)
        while len(rest) > target:
            k = min(7 if "c7" in CELLS[family] else 3, len(rest))
            if "c7" in CELLS[family] and k >= min_c7:
                kind = "c7"
            elif len(rest) >= 3 and (len(rest) > 3 or fa3 or target < 3):
                kind, k = "fa", 3
            else:
                break
            ins, rest = rest[:k], rest[k:]
            outs = [new_id() for _ in range(_nout(kind, k, w, width))]
            cells.append((kind, w, ins, outs))
            for b, o in enumerate(outs):
                new[w + b].append(o)
        new[w].extend(rest)
    return cells, new


def _search(family, size, width, new_id=None):
    best = None
    for min_c7 in ((4, 5, 6, 7) if "c7" in CELLS[family] else (8,)):
        for fa3 in (True, False):
            counter = iter(range(1 << 30))
            nid = new_id or (lambda: ("t", next(counter)))
            cols = [[("b", i) for i in range(size)]] + [[] for _ in range(width - 1)]
            levels = []
            while not _final_ok(family, cols):
                cells, new = _level(family, cols, width, min_c7, fa3, nid)
                if not cells:  # cannot happen with fa available; guard against an endless loop
                    raise AssertionError(f"popcount plan stuck at {[len(c) for c in cols]}")
                levels.append(cells)
                cols = new
            luts = sum(COST[family, kind][0] for cells in levels for kind, *_ in cells)
            carry = sum(COST[family, kind][1] for cells in levels for kind, *_ in cells)
            fl, fc = _final_cost(family, cols, width)
            key = (luts + fl, len(levels), carry + fc)
            if best is None or key < best[0]:
                best = (key, (min_c7, fa3), levels, cols)
    return best


def plan(family: str, size: int, width: int):
    """``(levels, final columns, (luts, levels, carry), params)`` of the cheapest shape found."""
    key, params, levels, cols = _search(family, size, width)
    return levels, cols, key, params


def _positions(cols):
    low = next((w for w, c in enumerate(cols) if len(c) >= 2), None)
    return low


def _final_cost(family, cols, width):
    low = _positions(cols)
    if low is None:
        return 0, 0
    npos = width - low
    if family == "xilinx":
        return sum(1 for c in cols[low:] if len(c) >= 2), -(-npos // 4)
    if family == "ecp5":
        return 2 * -(-npos // 2), -(-npos // 2)  # a CCU2C: two LUT4 (counted here as LUTs)
    return npos, npos


# ---------------------------------------------------------------------------------------------
# Verilog of the cells


def _xilinx_cell(name, kind, ins, outs):
    lines = []
    if kind == "fa":
        a = list(ins) + ["1'b0"] * (5 - len(ins))
        lo = _table(5, lambda v: v[0] + v[1] + v[2] >= 2)
        hi = _table(5, lambda v: (v[0] ^ v[1] ^ v[2]))
        init = (hi << 32) | lo
        o6, o5 = (outs + [None, None])[:2]
        lines.append(f"    wire {name}_o6, {name}_o5;\n")
        pins = "".join(f", .I{i}({x})" for i, x in enumerate(a))
        lines.append(f"    LUT6_2 #(.INIT(64'h{init:016x})) {name} (.O6({name}_o6), .O5({name}_o5){pins}, .I5(1'b1));\n")
        if o6 is not None:
            lines.append(f"    assign {o6} = {name}_o6;\n")
        if o5 is not None:
            lines.append(f"    assign {o5} = {name}_o5;\n")
        return "".join(lines)
    # c7: r on CYINIT, q on I5 of LUT A, p (≤ 5) on I0..I4 of both LUTs
    r, q, p = ins[-1], ins[-2], list(ins[:-2])
    pa = p + ["1'b0"] * (5 - len(p))
    lines.append(f"    wire {name}_a6, {name}_a5, {name}_b6, {name}_b5;\n    wire [3:0] {name}_o, {name}_co;\n")
    init_a = _table(6, lambda v: sum(v) & 1)  # O6 = par(p) ^ q, O5 = par(p)
    pins = "".join(f", .I{i}({x})" for i, x in enumerate(pa))
    lines.append(f"    LUT6_2 #(.INIT(64'h{init_a:016x})) {name}_a (.O6({name}_a6), .O5({name}_a5){pins}, .I5({q}));\n")
    if len(p) >= 2:
        lo = _table(5, lambda v: sum(v) >= 2)
        hi = _table(5, lambda v: (sum(v) >= 2) ^ (sum(v) >= 4))
        lines.append(f"    LUT6_2 #(.INIT(64'h{(hi << 32) | lo:016x})) {name}_b (.O6({name}_b6), .O5({name}_b5){pins}, "
                     f".I5(1'b1));\n")
    else:
        lines.append(f"    assign {name}_b6 = 1'b0;\n    assign {name}_b5 = 1'b0;\n")
    lines.append(f"    CARRY4 {name}_c (.CO({name}_co), .O({name}_o), .CI(1'b0), .CYINIT({r}), "
                 f".DI({{2'b00, {name}_b5, {name}_a5}}), .S({{2'b00, {name}_b6, {name}_a6}}));\n")
    for o, src in zip(outs, [f"{name}_o[0]", f"{name}_o[1]", f"{name}_co[1]"]):
        lines.append(f"    assign {o} = {src};\n")
    return "".join(lines)


def _lut4(family, name, out, ins, table):
    """A 4-input LUT primitive (``ins`` ≤ 4, slot 0 the address LSB), unused inputs tied low."""
    from dwn_hw.hdl.lut import lut4_cell as lut4
    return lut4(name, out, list(ins), table, family)


def _lut4_cell(family, name, kind, ins, outs):
    assert kind == "fa"
    lines = []
    funcs = [lambda v: v[0] ^ v[1] ^ v[2], lambda v: v[0] + v[1] + v[2] >= 2]
    for b, o in enumerate(outs):
        lines.append(_lut4(family, f"{name}_{b}", o, ins, _table(3, funcs[b])))
    return "".join(lines)


def _final_verilog(family, name, cols, width, bit):
    """The final adder: ``y = Σ_w 2**w · Σ cols[w]`` (a ripple adder on the carry chain)."""
    lines = []
    low = _positions(cols)
    top = width if low is None else low
    for w in range(top):
        lines.append(f"    assign y[{w}] = {bit(cols[w][0]) if cols[w] else chr(39).join(['1', 'b0'])};\n")
    if low is None:
        return "".join(lines), 0, 0
    npos = width - low
    if family == "xilinx":
        nc = -(-npos // 4)
        s, di = [], []
        luts = 0
        for j in range(4 * nc):
            w = low + j
            col = cols[w] if w < width else []
            if len(col) >= 2:
                a, b = bit(col[0]), bit(col[1])
                lines.append(f"    wire {name}_s{j};\n    LUT2 #(.INIT(4'h6)) {name}_x{j} (.O({name}_s{j}), .I0({a}), "
                             f".I1({b}));\n")
                s.append(f"{name}_s{j}")
                di.append(a)
                luts += 1
            elif len(col) == 1:
                s.append(bit(col[0]))
                di.append("1'b0")
            else:
                s.append("1'b0")
                di.append("1'b0")
        cin = bit(cols[low][2]) if len(cols[low]) == 3 else "1'b0"
        lines.append(f"    wire [{4 * nc - 1}:0] {name}_o, {name}_co;\n")
        for c in range(nc):
            ci = "1'b0" if c == 0 else f"{name}_co[{4 * c - 1}]"
            yinit = cin if c == 0 else "1'b0"
            lines.append(f"    CARRY4 {name}_c{c} (.CO({name}_co[{4 * c + 3}:{4 * c}]), .O({name}_o[{4 * c + 3}:{4 * c}]), "
                         f".CI({ci}), .CYINIT({yinit}), .DI({{{', '.join(reversed(di[4 * c:4 * c + 4]))}}}), "
                         f".S({{{', '.join(reversed(s[4 * c:4 * c + 4]))}}}));\n")
        lines.append(f"    assign y[{width - 1}:{low}] = {name}_o[{npos - 1}:0];\n")
        return "".join(lines), luts, nc
    rows = []
    for j in range(npos):
        col = cols[low + j]
        rows.append([bit(x) for x in col] + ["1'b0"] * (2 - len(col)))
    if family == "ecp5":
        nc = -(-npos // 2)
        # LUT4 address {D, C, B, A}: with C = D = 1 the propagate a ^ b, the low nibble (C = D = 0) a.
        init = _table(4, lambda v: (v[0] ^ v[1]) if v[2] and v[3] else v[0])
        lines.append(f"    wire [{nc}:0] {name}_c;\n    wire [{2 * nc - 1}:0] {name}_s;\n    assign {name}_c[0] = 1'b0;\n")
        for c in range(nc):
            pair = [rows[2 * c + h] if 2 * c + h < npos else ["1'b0", "1'b0"] for h in range(2)]
            lines.append(f"    CCU2C #(.INIT0(16'h{init:04x}), .INIT1(16'h{init:04x}), .INJECT1_0(\"NO\"), "
                         f".INJECT1_1(\"NO\")) {name}_u{c} (.CIN({name}_c[{c}]), "
                         f".A0({pair[0][0]}), .B0({pair[0][1]}), .C0(1'b1), .D0(1'b1), "
                         f".A1({pair[1][0]}), .B1({pair[1][1]}), .C1(1'b1), .D1(1'b1), "
                         f".S0({name}_s[{2 * c}]), .S1({name}_s[{2 * c + 1}]), .COUT({name}_c[{c + 1}]));\n")
        lines.append(f"    assign y[{width - 1}:{low}] = {name}_s[{npos - 1}:0];\n")
        return "".join(lines), 2 * nc, nc
    # ice40: SB_LUT4 O = I1 ^ I2 ^ I3 (I3 = carry in), SB_CARRY CO = maj(I1, I2, CI) -- pins shared
    init = _table(4, lambda v: v[1] ^ v[2] ^ v[3])
    lines.append(f"    wire [{npos}:0] {name}_c;\n    assign {name}_c[0] = 1'b0;\n")
    for j in range(npos):
        a, b = rows[j]
        lines.append(f"    SB_LUT4 #(.LUT_INIT(16'h{init:04x})) {name}_l{j} (.O(y[{low + j}]), .I0(1'b0), .I1({a}), "
                     f".I2({b}), .I3({name}_c[{j}]));\n")
        if j < npos - 1:
            lines.append(f"    SB_CARRY {name}_k{j} (.CO({name}_c[{j + 1}]), .I0({a}), .I1({b}), .CI({name}_c[{j}]));\n")
    return "".join(lines), npos, npos - 1


def build(family: str, size: int, width: int, module: str):
    """The levels of a :class:`~dwn_hw.hdl.popcount.Popcount` in ``family``'s primitives.

    Returns ``(plan, final columns, adder)``: ``plan`` is a list of ``(ChainModule, in_ids,
    out_ids, columns after the level)`` as the popcount's elaboration expects, ``adder`` the
    :class:`ChainModule` of the final adder (its ``inputs`` are the final columns, flattened).
    """
    levels, _, _, params = plan(family, size, width)
    # Re-plan with the real ids: the same deterministic shape.
    min_c7, fa3 = params
    cols = [[("b", i) for i in range(size)]] + [[] for _ in range(width - 1)]
    out = []
    for lv in range(1, len(levels) + 1):
        count = iter(range(1 << 30))
        cells, cols = _level(family, cols, width, min_c7, fa3, lambda: ("c", lv, next(count)))
        in_ids = [i for _, _, ins, _ in cells for i in ins]
        out_ids = [o for *_, outs in cells for o in outs]
        pos = {i: k for k, i in enumerate(in_ids)}
        opos = {o: k for k, o in enumerate(out_ids)}
        body, luts, carry = [], 0, 0
        for n, (kind, w, ins, outs) in enumerate(cells):
            vin = [f"x[{pos[i]}]" for i in ins]
            vout = [f"y[{opos[o]}]" for o in outs]
            if family == "xilinx":
                body.append(_xilinx_cell(f"g{n}", kind, vin, vout))
            else:
                body.append(_lut4_cell(family, f"g{n}", kind, vin, vout))
            luts += COST[family, kind][0]
            carry += COST[family, kind][1]
        mod = ChainModule(f"{module}_l{lv}", len(in_ids), len(out_ids), "".join(body), luts, carry)
        out.append((mod, in_ids, out_ids, cols))
    flat = [i for col in cols for i in col]
    fpos = {i: k for k, i in enumerate(flat)}
    body, luts, carry = _final_verilog(family, "f", cols, width, lambda i: f"x[{fpos[i]}]")
    adder = ChainModule(f"{module}_add", max(1, len(flat)), width, body, luts, carry)
    return out, cols, adder
