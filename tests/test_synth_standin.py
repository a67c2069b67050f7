"""A minimal stand-in for ``dwn_hw.hdl.build_top`` used by the synth and UART tests.

It writes plain Verilog straight from an IR (comparators, constant tables, adders, an argmax
chain, registered outputs: latency 1) with the ports of docs/design.md, so the synthesis flows and the
UART wrapper can be tested whether or not the real generator is installed. ``core_top`` picks the
real ``build_top`` when it exists.
"""
from __future__ import annotations

import numpy as np

from dwn_hw import ir as irmod


def standin_top(ir: dict, inputs: str = "features", name: str = "dwn_top") -> tuple[str, dict]:
    enc = ir["encoder"]
    in_w = irmod.input_width(ir, inputs)
    K = int(ir["groupsum"]["k"])
    sw = irmod.score_width(ir)
    cw = irmod.class_width(ir)
    lines = [f"module {name}(input clk, input rst, input in_valid, input [{in_w - 1}:0] in_data,",
             f"  output reg out_valid, output reg [{cw - 1}:0] out_class, output reg [{K * sw - 1}:0] out_scores);"]
    nb = irmod.num_input_bits(ir)
    lines.append(f"wire [{nb - 1}:0] b0;")
    if inputs == "bits":
        lines.append("assign b0 = in_data;")
    else:
        B, T = int(enc["input_bits"]), int(enc["bits_per_feature"])
        for f, row in enumerate(enc["thresholds"]):
            for t, th in enumerate(row):
                x = f"in_data[{f * B + B - 1}:{f * B}]"
                if enc["signed"]:
                    cmp = f"($signed({x}) > $signed({B + 1}'sd{th}))" if th >= 0 else \
                        f"($signed({x}) > -{B + 1}'sd{-th})"
                else:
                    cmp = f"({{1'b0, {x}}} > {B + 1}'d{th})" if th >= 0 else "1'b1"
                lines.append(f"assign b0[{f * T + t}] = {cmp};")
    prev = "b0"
    for i, layer in enumerate(ir["layers"]):
        N = len(layer["mapping"])
        cur = f"l{i + 1}"
        lines.append(f"wire [{N - 1}:0] {cur};")
        for j, (row, bits) in enumerate(zip(layer["mapping"], irmod.layer_tables(layer))):
            if not row:
                lines.append(f"assign {cur}[{j}] = 1'b{int(bits[0])};")
                continue
            init = "".join(str(int(v)) for v in bits[::-1])
            addr = ", ".join(f"{prev}[{m}]" for m in reversed(row))
            lines.append(f"wire [{len(bits) - 1}:0] t{i}_{j} = {len(bits)}'b{init};")
            lines.append(f"assign {cur}[{j}] = t{i}_{j}[{{{addr}}}];")
        prev = cur
    last = len(ir["layers"][-1]["mapping"])
    perm = ir["groupsum"].get("permutation") or list(range(last))
    g = irmod.group_size(ir)
    for c in range(K):
        members = [perm[i] for i in range(c * g, min((c + 1) * g, last))]
        terms = " + ".join(f"{sw}'d0 + {prev}[{m}]" for m in members) or f"{sw}'d0"
        lines.append(f"wire [{sw - 1}:0] s{c} = {terms};")
    lines.append(f"wire [{cw - 1}:0] c0 = 0; wire [{sw - 1}:0] m0 = s0;")
    for c in range(1, K):
        lines.append(f"wire [{cw - 1}:0] c{c} = (s{c} > m{c - 1}) ? {cw}'d{c} : c{c - 1};")
        lines.append(f"wire [{sw - 1}:0] m{c} = (s{c} > m{c - 1}) ? s{c} : m{c - 1};")
    scores = ", ".join(f"s{c}" for c in reversed(range(K)))
    lines += ["always @(posedge clk) begin",
              "  out_valid <= rst ? 1'b0 : in_valid;",
              f"  out_class <= c{K - 1};",
              f"  out_scores <= {{{scores}}};",
              "end", "endmodule", ""]
    info = {"latency": 1, "in_width": in_w, "score_width": sw, "classes": K}
    return "\n".join(lines), info


def core_top(ir: dict, inputs: str = "features", name: str = "dwn_top") -> tuple[str, dict]:
    """The real generator when it is there, else the stand-in."""
    try:
        from dwn_hw.hdl import build_top
    except ImportError:
        return standin_top(ir, inputs, name)
    return build_top(ir, inputs=inputs, pipeline="balanced", name=name)


def make_bundle(path, ir: dict, inputs: str = "features", n_vectors: int = 16, seed: int = 0,
                use_real: bool = True) -> dict:
    """A minimal export bundle (rtl/, dwn.ir.json, bundle.json, vectors/) for the tests."""
    import json

    path.mkdir(parents=True, exist_ok=True)
    verilog, info = (core_top if use_real else standin_top)(ir, inputs, "dwn_top")
    (path / "rtl").mkdir(exist_ok=True)
    (path / "rtl" / "dwn_top.v").write_text(verilog)
    irmod.save(ir, path / "dwn.ir.json", force=True)
    rng = np.random.default_rng(seed)
    enc = ir["encoder"]
    if inputs == "features":
        qmin, qmax = irmod.grid_range(enc)
        q = rng.integers(qmin, qmax + 1, size=(n_vectors, int(enc["features"])), dtype=np.int64)
        scores, classes = irmod.evaluate(ir, q)
    else:
        q = rng.integers(0, 2, size=(n_vectors, irmod.num_input_bits(ir))).astype(np.uint8)
        scores, classes = irmod.evaluate_bits(ir, q)
    (path / "vectors").mkdir(exist_ok=True)
    np.savez(path / "vectors" / "vectors.npz", inputs=q, scores=scores, classes=classes,
             labels=classes.copy())
    bundle = {"top": "dwn_top", "latency": int(info["latency"]), "in_width": int(info["in_width"]),
              "features": int(enc["features"]), "input_bits": int(enc["input_bits"]),
              "signed": bool(enc["signed"]), "classes": int(info["classes"]),
              "qmin": int(irmod.grid_range(enc)[0]) if inputs == "features" else 0,
              "qmax": int(irmod.grid_range(enc)[1]) if inputs == "features" else 1,
              "score_width": int(info["score_width"]), "inputs": inputs, "expected_from": "ir",
              "vectors": n_vectors, "pipeline": "balanced", "dwn_hw_version": "test"}
    (path / "bundle.json").write_text(json.dumps(bundle, indent=1))
    return bundle


def test_standin_has_the_design_ports():
    ir = irmod.random_ir(3, features=3, bits_per_feature=2, input_bits=3, signed=True, layers=[(6, 3)], k=3)
    text, info = standin_top(ir)
    for port in ("clk", "rst", "in_valid", "in_data", "out_valid", "out_class", "out_scores"):
        assert port in text
    assert info["in_width"] == 9 and info["classes"] == 3
