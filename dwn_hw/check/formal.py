"""Formal equivalence of a generated design and the IR's reference netlist (yosys miter + ``sat``).

:func:`prove` writes a reference netlist *from the IR alone* (:mod:`dwn_hw.check.reference`,
plain behavioural Verilog; nothing here imports ``dwn_hw.hdl``), and yosys ``sat`` proves a
miter of the two designs. Pipeline registers are handled by a bounded proof of depth ``L + 1``
from a *free* initial state with the first ``L`` steps skipped: the designs are feed-forward, so
at any step ``t ≥ L`` their outputs are a function of the inputs of steps ``t − L .. t``, and an
unconstrained start state covers every reachable one. To keep the SAT problems small the proof
is cut at the last LUT layer (see :func:`prove`); scores and class are compared only when
``out_valid`` is 1. No torch here.
"""
from __future__ import annotations

import time
from pathlib import Path

from dwn_hw.check.reference import (reference_argmax_verilog, reference_groupsum_verilog,
                                    reference_network_verilog, reference_verilog)
from dwn_hw.ir import class_width, input_width, score_width
from dwn_hw.tools import ToolFailed, run_yosys, yosys_reads


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
    script = yosys_reads(files, workdir) + "design -save src\n"
    for top in miter_tops:
        script += (f"design -load src\nhierarchy -top {top}\nproc\nflatten\n"
                   # initial values must not constrain the proof: it starts from any state
                   "setattr -unset init\nopt -fast\n"
                   f"sat -seq {steps} -prove-skip {skip} -prove ok 1 -verify -show-inputs -show-outputs\n")
    try:
        run_yosys(script, workdir, timeout)
        return True, None
    except ToolFailed as exc:
        if "SAT proof finished - model found" not in exc.output:
            raise
        return False, _counterexample(exc.output)


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
