"""The thermometer encoder of every style, proven against its semantics with yosys' primitive models.

Reference (written from the IR semantics, not from the generator): output bit i is ``q_f > t`` for
its (feature, threshold), ``q_f`` two's complement when signed; a threshold at ``qmin - 1`` is 1 and
one at ``qmax`` is 0. Both sides become BDDs (tests/test_synth_device.py: yosys flattens the
encoder with the vendor's LUT models into an and-inverter graph), which are canonical, so equal
BDDs are a proof for every input. A wrapper XORs each output with one extra input so that no
output is a constant (write_aiger leaves constant outputs unnamed).
"""
import json
import random
import re
from pathlib import Path

import pytest

from dwn_hw.hdl.encoder import ThermometerEncoder
from dwn_hw.ir.grid import grid_bounds
from test_synth_device import _BDD, _aig_bdds, _yosys, MODELS

ROOT = Path(__file__).resolve().parents[1]


def _compare_bdd(bdd, var0: int, B: int, signed: bool, t: int):
    """``q > t`` over variables var0 .. var0+B-1 (bit 0 first), from the definition of the order."""
    qmin, _ = grid_bounds(B, signed)

    def value(bits):  # the integer the bits stand for
        v = sum(b << p for p, b in enumerate(bits))
        return v - (1 << B) if signed and bits[-1] else v

    # Variables are decided from bit 0 up; the node after bits 0..p-1 depends only on whether
    # q > t is already settled by them at equal high bits, i.e. on q's low part vs t's low part.
    tu = t - qmin  # offset binary keeps the order: q > t <=> q - qmin > t - qmin
    memo = {}

    def node(p, low_greater):
        if p == B:
            return int(low_greater)
        key = (p, low_greater)
        if key not in memo:
            kids = []
            for x in (0, 1):
                u = x ^ int(signed and p == B - 1)  # offset-binary bit
                tb = (tu >> p) & 1
                kids.append(node(p + 1, u > tb or (u == tb and low_greater)))
            memo[key] = bdd.mk(var0 + p, kids[0], kids[1])
        return memo[key]

    # Cross-check the construction on a few values (cheap, independent of the encoder).
    for q in (qmin, qmin + (1 << B) - 1, t, t + 1):
        if qmin <= q < qmin + (1 << B):
            bits = [((q - qmin) >> p) & 1 ^ int(signed and p == B - 1) for p in range(B)]
            assert value(bits) == q
    return node(0, False)


def _wrapped(enc: ThermometerEncoder, F: int, B: int, n: int) -> str:
    w = F * B
    return enc.verilog() + (
        f"module gate(input wire [{w}:0] x, output wire [{n - 1}:0] y);\n"
        f"    wire [{n - 1}:0] b;\n    {enc.module} e (.in_data(x[{w - 1}:0]), .bits(b));\n"
        f"    assign y = b ^ {{{n}{{x[{w}]}}}};\nendmodule\n")


def encoder_differs(tmp_path, F, B, signed, bits, style, text=None, ref_bits=None) -> list:
    """Output bits of the encoder (or of ``text``, its Verilog) that differ from the reference."""
    enc = ThermometerEncoder(F, B, signed, bits, module="enc", style=style)
    gate = _wrapped(enc, F, B, len(bits)) if text is None else text
    (tmp_path / "gate.v").write_text(gate)
    script = (f"read_verilog -sv gate.v\nread_verilog {MODELS}\nhierarchy -check -top gate\nproc\nflatten\n"
              "opt_clean\ntechmap\nopt -fast\naigmap\nopt_clean\nwrite_aiger -ascii -map map.txt gate.aag\n")
    run = _yosys(tmp_path, script, style if style != "mux" else "xilinx")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    bdd = _BDD()
    got, zeros = _aig_bdds(bdd, (tmp_path / "gate.aag").read_text(), (tmp_path / "map.txt").read_text())
    assert zeros == 0 and set(got) == {("y", i) for i in range(len(bits))}
    k = bdd.mk(F * B, 0, 1)
    qmin, qmax = grid_bounds(B, signed)
    bad = []
    for i, (f, t) in enumerate(ref_bits or bits):
        ref = 1 if t <= qmin - 1 else 0 if t >= qmax else _compare_bdd(bdd, f * B, B, signed, t)
        if got["y", i] != bdd.apply("xor", ref, k):
            bad.append(i)
    return bad


def random_bits(seed, F, B, signed, per_feature, placed_k=None):
    rng = random.Random(seed)
    qmin, qmax = grid_bounds(B, signed)
    bits = []
    for f in range(F):
        for _ in range(rng.randint(1, per_feature)):
            t = rng.randint(qmin - 1, qmax)
            if placed_k is not None:  # t + 1 - qmin a multiple of 2**(B - k): reads the top k bits
                step = 1 << (B - placed_k)
                t = min(qmax, ((t + 1 - qmin) // step) * step + qmin - 1)
            bits.append((f, t))
    bits += [(0, qmin - 1), (F - 1, qmax), bits[0]]  # constants and a repeated pair
    return bits


CASES = [  # (seed, F, B, signed, thresholds per feature, placed)
    (1, 6, 8, False, 5, None), (2, 5, 6, True, 4, None), (3, 4, 4, True, 6, None), (4, 4, 3, False, 3, None),
    (5, 6, 8, False, 4, 5), (6, 5, 8, True, 3, 3), (7, 3, 7, False, 9, None), (8, 4, 1, False, 2, None),
]


@pytest.mark.parametrize("style", ["xilinx", "ecp5", "ice40", "mux"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"s{c[0]}B{c[2]}{'s' if c[3] else 'u'}")
def test_encoder_is_its_semantics(tmp_path, style, case):
    seed, F, B, signed, per, placed = case
    bits = random_bits(seed, F, B, signed, per, placed)
    assert encoder_differs(tmp_path, F, B, signed, bits, style) == []


def _flip_one_init(text: str, prim: str, which: int = 0) -> str:
    matches = list(re.finditer(rf"{prim} #\(\.(?:LUT_)?INIT\((\d+)'h([0-9a-f]+)\)", text))
    assert matches, f"no {prim}"
    m = matches[which % len(matches)]
    value = int(m.group(2), 16) ^ (1 | (1 << 32 if prim == "LUT6_2" else 0))
    new = m.group(0).replace(f"'h{m.group(2)}", f"'h{value:0{len(m.group(2))}x}")
    return text[:m.start()] + new + text[m.end():]


@pytest.mark.parametrize("style,prim", [("xilinx", "LUT6_2"), ("xilinx", "LUT6"), ("ecp5", "LUT4"),
                                        ("ice40", "SB_LUT4")])
def test_the_encoder_proof_catches_a_flipped_init_bit(tmp_path, style, prim):
    F, B, signed = 6, 8, False
    bits = random_bits(1, F, B, signed, 5)
    enc = ThermometerEncoder(F, B, signed, bits, module="enc", style=style)
    text = _wrapped(enc, F, B, len(bits))
    for which in range(3):
        bad = _flip_one_init(text, prim, which)
        assert bad != text
        assert encoder_differs(tmp_path, F, B, signed, bits, style, text=bad) != []


@pytest.mark.parametrize("style", ["xilinx", "ecp5", "ice40"])
def test_the_encoder_proof_catches_a_threshold_off_by_one(tmp_path, style):
    F, B, signed = 5, 6, True
    bits = random_bits(2, F, B, signed, 4)
    qmin, qmax = grid_bounds(B, signed)
    i = next(i for i, (f, t) in enumerate(bits) if qmin <= t < qmax - 1)
    wrong = list(bits)
    wrong[i] = (bits[i][0], bits[i][1] + 1)
    assert i in encoder_differs(tmp_path, F, B, signed, wrong, style, ref_bits=bits)


@pytest.mark.slow
@pytest.mark.parametrize("style", ["xilinx", "ecp5"])
def test_mnist_encoder_is_its_semantics(tmp_path, style):
    from dwn_hw.hdl.plan import plan
    ir = json.loads((ROOT / "models" / "mnist_small.ir.json").read_text())
    enc = ir["encoder"]
    bits = plan(ir, "features").sources
    assert encoder_differs(tmp_path, enc["features"], enc["input_bits"], enc["signed"], bits, style) == []
