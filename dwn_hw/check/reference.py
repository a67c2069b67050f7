"""The reference netlist of a DWN, written from the IR alone, and the IR's own fold rules.

Plain behavioural Verilog (:func:`reference_verilog`, and the network / GroupSum / argmax parts
the split proof uses) plus :func:`fold_constants` and :func:`live_indices`, which say what a
generator builds. Nothing here imports ``dwn_hw.hdl``: the checks must not trust the generator.
No torch here.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.errors import DwnHwError, show
from dwn_hw.ir import class_width, grid_range, input_width, layer_tables, num_input_bits, score_width

# Independent copy on purpose: the fold rules below repeat the IR passes' rule, so the checks stay independent of the generator.

def _const(width: int, value: int) -> str:
    return f"{width}'h{value & ((1 << width) - 1):x}"


def _encoder_lines(ir: dict, inputs: str) -> list[str]:
    """``b0``: the thermometer bits, either compared from features or read from in_data."""
    nb = num_input_bits(ir)
    lines = [f"  wire [{nb - 1}:0] b0;"]
    enc = ir["encoder"]
    if inputs == "bits":
        lines.append("  assign b0 = in_data;")
        return lines
    B = int(enc["input_bits"])
    qmin, qmax = grid_range(enc)  # independent copy on purpose of the IR's off-grid fold rule
    T = int(enc["bits_per_feature"])
    cmp = "$signed(x{f}) > $signed({c})" if enc["signed"] else "x{f} > {c}"
    for f, row in enumerate(enc["thresholds"]):
        lines.append(f"  wire [{B - 1}:0] x{f} = in_data[{f * B + B - 1}:{f * B}];")
        for t, th in enumerate(row):
            i = f * T + t
            if th < qmin:
                rhs = "1'b1"            # below the grid: every value is greater
            elif th >= qmax:
                rhs = "1'b0"            # at the top of the grid: no value is greater
            else:
                rhs = cmp.format(f=f, c=_const(B, th))
            lines.append(f"  assign b0[{i}] = {rhs};")
    return lines


def _layer_lines(ir: dict, index: int, layer: dict, src: str, dst: str) -> list[str]:
    rows = layer["mapping"]
    lines = [f"  wire [{len(rows) - 1}:0] {dst};"]
    for j, (row, table) in enumerate(zip(rows, layer_tables(layer))):
        if not row:
            lines.append(f"  assign {dst}[{j}] = 1'b{int(table[0])};")
            continue
        value = int.from_bytes(np.packbits(table, bitorder="little").tobytes(), "little")
        size = 1 << len(row)
        addr = ", ".join(f"{src}[{s}]" for s in reversed(row))   # slot 0 is the LSB
        lines.append(f"  wire [{size - 1}:0] t{index}_{j} = {_const(size, value)};")
        lines.append(f"  assign {dst}[{j}] = t{index}_{j}[{{{addr}}}];")
    return lines


def _groupsum_lines(ir: dict, src: str) -> list[str]:
    k = int(ir["groupsum"]["k"])
    n_out = len(ir["layers"][-1]["mapping"])
    perm = ir["groupsum"].get("permutation")
    order = list(perm) if perm is not None else list(range(n_out))
    g = -(-n_out // k)
    W, CW = score_width(ir), class_width(ir)
    lines = []
    for c in range(k):
        members = [order[i] for i in range(c * g, min((c + 1) * g, n_out))]
        terms = " + ".join(f"{{{W - 1}'d0, {src}[{m}]}}" if W > 1 else f"{src}[{m}]" for m in members)
        lines.append(f"  wire [{W - 1}:0] s{c} = {terms or _const(W, 0)};")
    lines += _argmax_lines(k, W, CW)
    scores = ", ".join(f"s{c}" for c in reversed(range(k)))
    lines.append(f"  wire [{k * W - 1}:0] comb_scores = {{{scores}}};")
    lines.append(f"  wire [{CW - 1}:0] comb_class = bc{k - 1};")
    return lines


def _argmax_lines(k: int, W: int, CW: int) -> list[str]:
    """``bc{k-1}``: the lowest index among the highest of ``s0 .. s{k-1}`` (a later class wins
    only when strictly greater)."""
    lines = [f"  wire [{W - 1}:0] bv0 = s0;", f"  wire [{CW - 1}:0] bc0 = {_const(CW, 0)};"]
    for c in range(1, k):
        lines.append(f"  wire g{c} = s{c} > bv{c - 1};")
        lines.append(f"  wire [{W - 1}:0] bv{c} = g{c} ? s{c} : bv{c - 1};")
        lines.append(f"  wire [{CW - 1}:0] bc{c} = g{c} ? {_const(CW, c)} : bc{c - 1};")
    return lines


def reference_argmax_verilog(k: int, W: int, CW: int, name: str) -> str:
    """Combinational argmax of ``k`` packed scores (class c at ``[c·W +: W]``)."""
    out = _header(name, [f"input wire [{k * W - 1}:0] scores", f"output wire [{CW - 1}:0] cls"])
    out += [f"  wire [{W - 1}:0] s{c} = scores[{c * W + W - 1}:{c * W}];" for c in range(k)]
    out += _argmax_lines(k, W, CW) + [f"  assign cls = bc{k - 1};", "endmodule", ""]
    return "\n".join(out)


def _header(name: str, ports: list[str]) -> list[str]:
    return [f"module {name} ("] + [f"  {p}," for p in ports[:-1]] + [f"  {ports[-1]}", ");"]


def _delay_lines(latency: int, data: list[tuple[str, int, str]], valid: int | None) -> list[str]:
    """``data`` (output, width, source) delayed by ``latency`` ≥ 0 register stages; with ``valid``
    stages, ``out_valid`` is ``in_valid`` delayed and cleared by ``rst``."""
    out = []
    for dst, width, src in data:
        if latency == 0:
            out.append(f"  assign {dst} = {src};")
            continue
        out += [f"  reg [{width - 1}:0] {dst}_q [0:{latency - 1}];", "  always @(posedge clk) begin",
                f"    {dst}_q[0] <= {src};"]
        out += [f"    {dst}_q[{i}] <= {dst}_q[{i - 1}];" for i in range(1, latency)]
        out += ["  end", f"  assign {dst} = {dst}_q[{latency - 1}];"]
    if valid:
        shift = "{v_q[" + str(valid - 2) + ":0], in_valid}" if valid > 1 else "in_valid"
        out += [f"  reg [{valid - 1}:0] v_q;", "  always @(posedge clk)",
                f"    v_q <= rst ? {_const(valid, 0)} : {shift};", f"  assign out_valid = v_q[{valid - 1}];"]
    return out


def _network_lines(ir: dict, inputs: str) -> tuple[list[str], str]:
    lines = _encoder_lines(ir, inputs)
    src = "b0"
    for i, layer in enumerate(ir["layers"], start=1):
        lines += _layer_lines(ir, i, layer, src, f"b{i}")
        src = f"b{i}"
    return lines, src


def reference_verilog(ir: dict, inputs: str = "features", latency: int = 1, name: str = "dwn_ref") -> str:
    """The IR as a plain behavioural Verilog module with the top-level port contract of docs/design.md.

    Parameters
    ----------
    ir : dict
        A validated IR.
    inputs : {"features", "bits"}
        What ``in_data`` carries.
    latency : int
        Register stages after the (purely combinational) network, ≥ 1; the valid pipeline
        has the same depth and is cleared by ``rst``.
    name : str
        Module name.
    """
    if latency < 1:
        raise DwnHwError(f"latency must be at least 1, not {show(latency)}")
    if inputs == "features" and ir["encoder"]["kind"] == "none":
        raise DwnHwError("--inputs features needs a thermometer encoder; this IR has encoder.kind 'none'")
    W_in = input_width(ir, inputs)
    K, W, CW = int(ir["groupsum"]["k"]), score_width(ir), class_width(ir)
    out = _header(name, ["input wire clk", "input wire rst", "input wire in_valid",
                         f"input wire [{W_in - 1}:0] in_data", "output wire out_valid",
                         f"output wire [{CW - 1}:0] out_class", f"output wire [{K * W - 1}:0] out_scores"])
    lines, last = _network_lines(ir, inputs)
    out += lines + _groupsum_lines(ir, last)
    out += _delay_lines(latency, [("out_scores", K * W, "comb_scores"), ("out_class", CW, "comb_class")], latency)
    return "\n".join(out + ["endmodule", ""])


def reference_network_verilog(ir: dict, inputs: str, delay: int, name: str) -> str:
    """Only the LUT network: ``h`` (the last layer's outputs) from ``in_data``, ``delay`` stages later."""
    n_out = len(ir["layers"][-1]["mapping"])
    out = _header(name, ["input wire clk", f"input wire [{input_width(ir, inputs) - 1}:0] in_data",
                         f"output wire [{n_out - 1}:0] h"])
    lines, last = _network_lines(ir, inputs)
    out += lines + _delay_lines(delay, [("h", n_out, last)], None)
    return "\n".join(out + ["endmodule", ""])


def reference_groupsum_verilog(ir: dict, delay: int, latency: int, name: str) -> str:
    """Only GroupSum and argmax: scores and class of ``h``, ``delay`` stages later; ``out_valid``
    is ``in_valid`` ``latency`` stages later."""
    n_out = len(ir["layers"][-1]["mapping"])
    K, W, CW = int(ir["groupsum"]["k"]), score_width(ir), class_width(ir)
    out = _header(name, ["input wire clk", "input wire rst", "input wire in_valid",
                         f"input wire [{n_out - 1}:0] h", "output wire out_valid",
                         f"output wire [{CW - 1}:0] out_class", f"output wire [{K * W - 1}:0] out_scores"])
    out += [f"  wire [{n_out - 1}:0] hh = h;"] + _groupsum_lines(ir, "hh")
    out += _delay_lines(delay, [("out_scores", K * W, "comb_scores"), ("out_class", CW, "comb_class")], latency)
    return "\n".join(out + ["endmodule", ""])



def read_sources_of(layer: dict, j: int) -> set:
    """The inputs LUT ``j`` really reads: those of the address slots its table depends on."""
    row = layer["mapping"][j]
    table = int(layer["tables"][j], 16)
    m = len(row)
    used = set()
    for slot in range(m):
        if any(((table >> a) ^ (table >> (a | 1 << slot))) & 1 for a in range(1 << m) if not (a >> slot) & 1):
            used.add(row[slot])
    return used


def fold_constants(ir: dict, inputs: str = "features") -> dict:
    """The IR with constant inputs substituted into the tables, as generators build it.

    Encoder bits whose threshold lies off the grid (with ``inputs="features"``) and LUTs whose
    table is constant are constants; a reader of one has that address slot fixed and dropped.
    The function is unchanged; read-back compares the netlist with these folded tables. Written
    here from the IR semantics alone, not taken from the generator.
    """
    const: dict = {}
    enc = ir["encoder"]
    if inputs == "features" and enc["kind"] == "thermometer":
        qmin, qmax = grid_range(enc)
        T = int(enc["bits_per_feature"])
        const = {f * T + k: int(t <= qmin - 1) for f, row in enumerate(enc["thresholds"])
                 for k, t in enumerate(row) if t <= qmin - 1 or t >= qmax}
    layers = []
    for layer in ir["layers"]:
        rows, tabs, nxt = [], [], {}
        for j, (row, hex_table) in enumerate(zip(layer["mapping"], layer["tables"])):
            row, table = list(row), int(hex_table, 16)
            for slot in reversed(range(len(row))):
                if row[slot] in const:
                    kept = [a for a in range(1 << len(row)) if (a >> slot) & 1 == const[row[slot]]]
                    table = sum(((table >> a) & 1) << i for i, a in enumerate(kept))
                    row = row[:slot] + row[slot + 1:]
            if table in (0, (1 << (1 << len(row))) - 1):
                nxt[j] = table & 1
            rows.append(row)
            tabs.append(format(table, f"0{max(1, -(-(1 << len(row)) // 4))}x"))
        layers.append({**layer, "mapping": rows, "tables": tabs})
        const = nxt
    return {**ir, "layers": layers}


def live_indices(ir: dict) -> tuple[list[int], list[list[int]]]:
    """Sorted indices of the input bits and of each layer's LUTs that reach a class score.

    A generator builds only these (dead LUTs and inputs a table ignores are pruned), in this order.
    """
    layers = ir["layers"]
    perm = ir["groupsum"].get("permutation")
    live = [None] * len(layers)
    live[-1] = sorted(set(perm) if perm is not None else range(len(layers[-1]["mapping"])))
    for i in range(len(layers) - 1, 0, -1):
        live[i - 1] = sorted({s for j in live[i] for s in read_sources_of(layers[i], j)})
    live_in = sorted({s for j in live[0] for s in read_sources_of(layers[0], j)})
    return live_in, live
