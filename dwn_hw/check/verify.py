"""Exhaustive and formal checks of a generated design against its IR (``dwn-hw verify``).

Two checks, neither of which trusts the hardware generator:

* **LUT readback** (:func:`lut_readback`): yosys synthesizes each LUT-layer module
  (``<top>_layer<i>``) to gates; every LUT output is then evaluated from that netlist on all 2ⁿ
  addresses of its IR row (bit-parallel, one integer bit per address), its inputs must be a
  subset of the row, and the table must equal the IR's.
* **Equivalence proof** (:func:`prove`): a reference netlist is written *from the IR alone*
  (:func:`reference_verilog`, plain behavioural Verilog; nothing here imports ``dwn_hw.hdl``),
  and yosys ``sat`` proves a miter of the two designs. Pipeline registers are handled by a
  bounded proof of depth ``L + 1`` from a *free* initial state with the first ``L`` steps
  skipped: the designs are feed-forward, so at any step ``t ≥ L`` their outputs are a function
  of the inputs of steps ``t − L .. t``, and an unconstrained start state covers every
  reachable one. To keep the SAT problems small the proof is cut at the last LUT layer (see
  :func:`prove`); scores and class are compared only when ``out_valid`` is 1.

No torch here.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from dwn_hw.errors import DwnHwError, show
from dwn_hw.ir import class_width, grid_range, input_width, layer_tables, num_input_bits, score_width


# --------------------------------------------------------------------------------------------
# Reference netlist: the IR written as plain Verilog, independent of dwn_hw.hdl.
# --------------------------------------------------------------------------------------------

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
    qmin, qmax = grid_range(enc)
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
    """The IR as a plain behavioural Verilog module with the top-level port contract of DESIGN.md.

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


# --------------------------------------------------------------------------------------------
# Running yosys
# --------------------------------------------------------------------------------------------

def _yosys(script: str, workdir: Path, timeout: float | None = None) -> str:
    """Run a yosys script in ``workdir``; return its log, or raise DwnHwError with the error line."""
    import subprocess

    from dwn_hw import tools

    (workdir / "run.ys").write_text(script)
    try:
        proc = subprocess.run(tools.yosys_cmd() + ["-q", "-l", "yosys.log", "run.ys"], cwd=workdir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise DwnHwError(f"yosys did not finish within {timeout:.0f} s (see {workdir / 'yosys.log'}); "
                         "raise --timeout or try a smaller design") from exc
    log = (workdir / "yosys.log").read_text(errors="replace") if (workdir / "yosys.log").exists() else ""
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr + "\n" + log).splitlines() if "ERROR" in l]
        raise _YosysFailed(lines[0].strip() if lines else f"yosys exited with {proc.returncode}", log)
    return log


class _YosysFailed(DwnHwError):
    def __init__(self, message: str, log: str):
        super().__init__(message)
        self.log = log


def _read_sources(paths, workdir: Path) -> str:
    """``read_verilog`` lines; sources are copied into ``workdir`` (YoWASP sees only that folder)."""
    import shutil

    names = []
    for i, p in enumerate(paths):
        p = Path(p)
        local = workdir / p.name
        if p.resolve() != local.resolve():
            local = workdir / f"src{i}_{p.name}"
            shutil.copyfile(p, local)
        names.append(local.name)
    return "".join(f"read_verilog -sv -defer {n}\n" for n in names)


# --------------------------------------------------------------------------------------------
# Formal equivalence: miter of generated design and reference, bounded from a free state.
# --------------------------------------------------------------------------------------------

def _find_module(text: str, name: str) -> tuple[int, int] | None:
    """(start, end) of ``module <name> ... endmodule`` in ``text``."""
    import re

    m = re.search(rf"^module \\?{re.escape(name)}\s*\(", text, re.M)
    if not m:
        return None
    end = text.find("endmodule", m.end())
    return (m.start(), end) if end >= 0 else None


def cut_at_last_layer(text: str, top: str, layer_module: str, width: int, mode: str) -> str | None:
    """The generated top with its last LUT layer's output made visible (``mode="observe"``: an
    extra output ``__cut_h``) or cut off (``mode="cut"``: the layer's consumers read an extra
    input ``__cut_h`` instead). None when the design does not have that shape.

    Only the port list and one connection change; the logic around the cut is untouched.
    """
    span = _find_module(text, top)
    if span is None:
        return None
    body = text[span[0]:span[1]]
    at = body.find(f"{layer_module} ")
    y = body.find(".y(", at) if at >= 0 else -1
    if y < 0:
        return None
    depth, i = 0, y + 2
    while i < len(body):                  # the connection may be a concatenation: match parentheses
        depth += {"(": 1, ")": -1}.get(body[i], 0)
        if depth == 0:
            break
        i += 1
    expr = body[y + 3:i]
    header_end = body.find(");")
    header = body[:header_end] + ", __cut_h" + body[header_end:body.find("\n", header_end) + 1]
    rest = body[body.find("\n", header_end) + 1:]
    rest_y = rest.find(".y(" + expr + ")")
    if rest_y < 0:
        return None
    if mode == "observe":
        decl = f"  output [{width - 1}:0] __cut_h;\n  assign __cut_h = {expr};\n"
    else:
        decl = (f"  input [{width - 1}:0] __cut_h;\n  wire [{width - 1}:0] __cut_unused;\n"
                f"  assign {expr} = __cut_h;\n")
        rest = rest[:rest_y] + ".y(__cut_unused)" + rest[rest_y + len(expr) + 4:]
    return text[:span[0]] + header + decl + rest + text[span[1]:]


def _miter(name: str, gen: str, gen_extra: str, ref: str, ref_ports: str, W_in: int, K: int, W: int,
           CW: int, h_width: int, compare: str) -> str:
    return "\n".join([
        f"module {name} (input wire clk, input wire rst, input wire in_valid,",
        f"                input wire [{W_in - 1}:0] in_data, input wire [{h_width - 1}:0] h_free, output wire ok);",
        "  wire g_v, r_v;", f"  wire [{CW - 1}:0] g_c, r_c;", f"  wire [{K * W - 1}:0] g_s, r_s;",
        f"  wire [{h_width - 1}:0] g_h, r_h;",
        f"  {gen} gen (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data), .out_valid(g_v), "
        f".out_class(g_c), .out_scores(g_s){gen_extra});",
        f"  {ref} ref ({ref_ports});",
        f"  assign ok = {compare};",
        "endmodule", ""])


def _sat(miter_tops, files: list, steps: int, skip: int, workdir: Path, timeout) -> tuple[bool, str | None]:
    """Prove output ``ok`` of each miter in turn (sources read once); stop at the first that fails."""
    if isinstance(miter_tops, str):
        miter_tops = [miter_tops]
    script = _read_sources(files, workdir) + "design -save src\n"
    for top in miter_tops:
        script += (f"design -load src\nhierarchy -top {top}\nproc\nflatten\n"
                   # initial values must not constrain the proof: it starts from any state
                   "setattr -unset init\nopt -fast\n"
                   f"sat -seq {steps} -prove-skip {skip} -prove ok 1 -verify -show-inputs -show-outputs\n")
    try:
        _yosys(script, workdir, timeout)
        return True, None
    except _YosysFailed as exc:
        if "SAT proof finished - model found" not in exc.log:
            raise
        return False, _counterexample(exc.log)


def prove(ir: dict, sources, top: str, inputs: str, latency: int, workdir, timeout: float | None = None,
          split: bool = True) -> dict:
    """Prove the generated design ``top`` (in ``sources``) equal to the IR's reference netlist.

    With ``split`` (and a design whose last LUT layer is a module ``<top>_layer<i>``) the proof
    is cut at the last layer's outputs, which keeps the SAT problems small: (1) the generated
    network's output equals the reference network's, ``d`` stages later (``d`` is searched), and
    (2) with those outputs as free inputs, the generated scores, class and ``out_valid`` equal the
    reference GroupSum's. Together they give the whole design; otherwise one miter of the whole
    design is proven.

    Returns ``{"proven", "seconds", "steps", "method", "counterexample"}``. A failed proof is a
    result, not an exception; tool failures raise :class:`DwnHwError`.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    W_in = input_width(ir, inputs)
    K, W, CW = int(ir["groupsum"]["k"]), score_width(ir), class_width(ir)
    n_out = len(ir["layers"][-1]["mapping"])
    last = len(ir["layers"]) - 1
    texts = [Path(p).read_text() for p in sources]
    cut = obs = None
    if split:
        for i, text in enumerate(texts):
            if _find_module(text, top):
                c = cut_at_last_layer(text, top, f"{top}_layer{last}", n_out, "cut")
                o = cut_at_last_layer(text, top, f"{top}_layer{last}", n_out, "observe")
                if c and o:
                    cut = texts[:i] + [c] + texts[i + 1:]
                    obs = texts[:i] + [o] + texts[i + 1:]
    valid_ok = "(g_v == r_v) && (!r_v || (g_s == r_s && g_c == r_c))"
    ref_out = ".out_valid(r_v), .out_class(r_c), .out_scores(r_s)"
    if cut is None:
        (workdir / "reference.v").write_text(reference_verilog(ir, inputs, latency, f"{top}__ref"))
        (workdir / "miter.v").write_text(_miter(
            f"{top}__miter", top, "", f"{top}__ref",
            f".clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_data), {ref_out}",
            W_in, K, W, CW, 1, valid_ok))
        ok, cex = _sat(f"{top}__miter", list(sources) + [workdir / "reference.v", workdir / "miter.v"],
                       latency + 1, latency, workdir, timeout)
        return {"proven": ok, "seconds": time.perf_counter() - t0, "steps": latency + 1, "method": "whole",
                "counterexample": cex}
    # (1) the network, at the cut: find the register depth d at which the outputs agree
    (workdir / "gen_observe.v").write_text("".join(obs))
    (workdir / "gen_cut.v").write_text("".join(cut))
    cex1 = None
    for d in range(latency):
        part = workdir / f"net_d{d}"
        part.mkdir(exist_ok=True)
        (part / "ref_net.v").write_text(reference_network_verilog(ir, inputs, d, f"{top}__refnet"))
        (part / "miter.v").write_text(_miter(
            f"{top}__miter1", top, ", .__cut_h(g_h)", f"{top}__refnet", ".clk(clk), .in_data(in_data), .h(r_h)",
            W_in, K, W, CW, n_out, "g_h == r_h"))
        ok, cex = _sat(f"{top}__miter1", [workdir / "gen_observe.v", part / "ref_net.v", part / "miter.v"],
                       d + 1, d, part, timeout)
        if ok:
            break
        cex1 = cex1 or cex
    else:
        return {"proven": False, "seconds": time.perf_counter() - t0, "steps": latency + 1, "method": "split",
                "counterexample": "the last LUT layer's outputs differ from the IR's at every depth:\n" + (cex1 or "")}
    # (2) GroupSum and argmax, fed by free values at the cut, one output at a time: out_valid,
    # each class score, and the class as the argmax of the design's own scores (so the class
    # proof does not have to redo the popcounts). Together: valid, scores and class all equal.
    part = workdir / "groupsum"
    part.mkdir(exist_ok=True)
    (part / "ref_gs.v").write_text(reference_groupsum_verilog(ir, latency - d, latency, f"{top}__refgs")
                                   + reference_argmax_verilog(K, W, CW, f"{top}__refarg"))
    checks = {"valid": "g_v == r_v", "class": "!g_v || g_c == a_c"}
    for c in range(K):
        checks[f"score{c}"] = f"!r_v || g_s[{c * W + W - 1}:{c * W}] == r_s[{c * W + W - 1}:{c * W}]"
    miters = []
    for tag, compare in checks.items():
        text = _miter(f"{top}__m2_{tag}", top, ", .__cut_h(h_free)", f"{top}__refgs",
                      f".clk(clk), .rst(rst), .in_valid(in_valid), .h(h_free), {ref_out}",
                      W_in, K, W, CW, n_out, compare)
        text = text.replace("  assign ok", f"  wire [{CW - 1}:0] a_c;\n  {top}__refarg arg (.scores(g_s), .cls(a_c));\n  assign ok")
        miters.append(text)
    (part / "miter.v").write_text("".join(miters))
    ok, cex = _sat([f"{top}__m2_{tag}" for tag in checks], [workdir / "gen_cut.v", part / "ref_gs.v", part / "miter.v"],
                   latency + 1, latency, part, timeout)
    return {"proven": ok, "seconds": time.perf_counter() - t0, "steps": latency + 1, "method": f"split at the last layer (d={d})",
            "counterexample": cex}


def _counterexample(log: str, limit: int = 40) -> str:
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "model found" in line:
            return "\n".join(lines[i: i + limit])
    return ""


# --------------------------------------------------------------------------------------------
# LUT readback: every LUT's truth table, read from the synthesized netlist, on all addresses.
# --------------------------------------------------------------------------------------------

def _read_sources_of(layer: dict, j: int) -> set:
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
        live[i - 1] = sorted({s for j in live[i] for s in _read_sources_of(layers[i], j)})
    live_in = sorted({s for j in live[0] for s in _read_sources_of(layers[0], j)})
    return live_in, live


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


class _Netlist:
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


def check_layer_netlist(netlist: _Netlist, ir_layer: dict, live_out: list[int], live_prev: list[int]) -> list[str]:
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
    script = _read_sources(sources, workdir) + "design -save src\n"
    for i, mod in modules.items():
        script += (f"design -load src\nhierarchy -top {mod}\nsynth -flatten -top {mod}\n"
                   f"opt_clean\nwrite_json layer{i}.json\n")
    t0 = time.perf_counter()
    _yosys(script, workdir, timeout)
    problems, luts, addresses = [], 0, 0
    for i, mod in modules.items():
        data = json.loads((workdir / f"layer{i}.json").read_text())
        netlist = _Netlist(data["modules"][mod], mod)
        prev = live_in if i == 0 else live[i - 1]
        problems += [f"layer {i} {p}" for p in check_layer_netlist(netlist, ir["layers"][i], live[i], prev)]
        luts += len(live[i])
        addresses += sum(1 << len(ir["layers"][i]["mapping"][j]) for j in live[i])
    return {"luts": luts, "addresses": addresses, "problems": problems, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# dwn-hw verify
# --------------------------------------------------------------------------------------------

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
