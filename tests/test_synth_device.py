"""Device LUT styles (ecp5, ice40, xilinx) against yosys' own cell models.

Two checks, both with the primitives' simulation models shipped in yosys' share folder (so the
INIT bit order and the mux ports are the vendor library's, not ours):

* a LUT array of every fan-in 1..6, evaluated by yosys ``eval`` on random addresses and compared
  with the truth tables directly (``tables[j][a]``, the IR's semantics);
* whole tops (encoder chains, LUT layers of mixed n, counters) proven equivalent, for every input
  sequence, to the portable ``mux`` style (which tests/test_hdl_sim.py checks against the IR
  evaluator) with a yosys miter and a SAT induction.
"""
import random
import re
import subprocess

import pytest

from dwn_hw import tools
from dwn_hw.synth.cellmodels import library_models
from dwn_hw.hdl import build_top
from dwn_hw.hdl.lut import LUTArray
from dwn_hw.hdl.plan import plan
from dwn_hw.ir import random_ir

# The primitives' models, verbatim from yosys' share folder (only the modules a style uses: reading a
# whole library costs yosys most of a minute); the simulated board takes them from the same place.
MODELS = "models.v"
PRIMITIVE = {"ecp5": "LUT4 ", "ice40": "SB_LUT4 ", "xilinx": "LUT6 "}


def _yosys(tmp_path, script: str, style: str) -> subprocess.CompletedProcess:
    (tmp_path / "run.ys").write_text(script)
    (tmp_path / MODELS).write_text(library_models(style))
    return subprocess.run(tools.yosys_cmd() + ["-q", "run.ys"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("style", ["ecp5", "ice40"])
def test_every_fanin_matches_its_truth_table(tmp_path, style):
    rng = random.Random(11)
    rows, tables = [], []
    for n in range(1, 7):
        for _ in range(4):
            rows.append(rng.sample(range(8), n))
            tables.append(rng.getrandbits(1 << n))
    text = LUTArray("arr", 8, rows, tables, style=style).verilog()
    assert PRIMITIVE[style] in text and "?" not in text  # primitives only, no behavioural logic
    if style == "ecp5":
        assert "PFUMX " in text and "L6MUX21 " in text
    (tmp_path / "arr.v").write_text(text)
    vectors = [rng.getrandbits(8) for _ in range(24)]
    script = ["read_verilog arr.v", f"read_verilog {MODELS}", "hierarchy -top arr", "proc", "flatten",
              "opt_clean"]
    script += [f"tee -o eval{i}.txt eval -set x 8'd{v} -show y arr" for i, v in enumerate(vectors)]
    run = _yosys(tmp_path, "\n".join(script) + "\n", style)
    assert run.returncode == 0, run.stderr[-2000:]
    for i, v in enumerate(vectors):
        got = _eval_value(tmp_path / f"eval{i}.txt", len(rows))
        want = sum(((t >> sum(((v >> s) & 1) << l for l, s in enumerate(row))) & 1) << j
                   for j, (row, t) in enumerate(zip(rows, tables)))
        assert got == want, f"x = {v:#04x}: got {got:#x}, tables say {want:#x}"


def _eval_value(path, width: int) -> int:
    """The value of ``y`` from a yosys ``eval -show y`` log (``Eval result: \\y = <width>'<bits>.``)."""
    for line in path.read_text().splitlines():
        if line.startswith("Eval result: \\y = "):
            size, bits = line.split(" = ")[1].rstrip(".").split("'")
            assert int(size) == width, line
            return int(bits, 2)
    raise AssertionError(f"no value of y in {path.read_text()[-500:]}")


CASES = [  # (seed, shape, inputs, style)
    (5, dict(features=5, bits_per_feature=3, input_bits=6, signed=True, layers=[(30, 6), (20, 5)], k=3,
             mixed_n=True), "features", "ecp5"),
    (6, dict(features=4, bits_per_feature=2, input_bits=3, layers=[(24, 6), (30, 4)], k=5, permute=True),
     "features", "ecp5"),
    (7, dict(features=6, bits_per_feature=2, input_bits=4, layers=[(20, 5), (12, 6)], k=2), "bits", "ecp5"),
    (5, dict(features=5, bits_per_feature=3, input_bits=6, signed=True, layers=[(30, 6), (20, 5)], k=3,
             mixed_n=True), "features", "ice40"),
    (8, dict(features=4, bits_per_feature=3, input_bits=5, layers=[(16, 6), (10, 5)], k=2), "features", "xilinx"),
]


def _prove_equivalent(tmp_path, ir, inputs, style):
    gold, gold_info = build_top(ir, inputs=inputs, pipeline="none", prefix="gold_")
    gate, gate_info = build_top(ir, inputs=inputs, pipeline="none", prefix="gate_", lut_style=style)
    assert gate_info["latency"] == gold_info["latency"] and gate_info["in_width"] == gold_info["in_width"]
    (tmp_path / "gold.v").write_text(gold)
    (tmp_path / "gate.v").write_text(gate)
    script = [
        "read_verilog -sv gold.v gate.v", f"read_verilog {MODELS}", "hierarchy -check", "proc", "flatten",
        "opt_clean", f"miter -equiv -flatten -make_assert {gold_info['top']} {gate_info['top']} miter",
        "hierarchy -top miter", "opt -fast",
        # Registers start equal (zero); induction then covers every input sequence.
        "sat -verify -prove-asserts -tempinduct -set-init-zero -seq 1 miter",
    ]
    run = _yosys(tmp_path, "\n".join(script) + "\n", style)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]


@pytest.mark.parametrize("seed,shape,inputs,style", CASES)
def test_device_tops_are_equivalent_to_the_portable_one(tmp_path, seed, shape, inputs, style):
    ir = random_ir(seed, **shape)
    if style != "xilinx":
        fanins = {len(r) for rows, _ in plan(ir, inputs).layers for r in rows}
        assert fanins & {5, 6}, fanins  # the 4-input trees are exercised
    _prove_equivalent(tmp_path, ir, inputs, style)


def test_constant_encoder_bits_are_folded_into_the_tables(tmp_path):
    """Thresholds off the grid make constant encoder bits (and constant LUTs after them); the plan
    folds them into the tables, so no primitive sees a constant input (yosys would fold an ECP5
    PFUMX with a constant select and leave an L6MUX21 nextpnr cannot pack), and nothing changes."""
    ir = random_ir(9, features=4, bits_per_feature=3, input_bits=4, layers=[(24, 6), (12, 6)], k=2)
    thresholds = ir["encoder"]["thresholds"]
    for f in range(4):
        thresholds[f][0], thresholds[f][2] = -1, 15  # below the grid: always 1; at its top: always 0
    p = plan(ir, "features")
    assert all(0 <= t < 15 for _, t in p.sources), p.sources
    assert all(row for rows, _ in p.layers for row in rows)  # no constant LUT is left in a layer
    gate, _ = build_top(ir, pipeline="none", lut_style="ecp5")
    assert "L6MUX21 " in gate  # 6-input trees are in the proof
    _prove_equivalent(tmp_path, ir, "features", "ecp5")


def test_the_miter_catches_a_swapped_mux(tmp_path):
    """The equivalence check above is not vacuous: one PFUMX with its inputs swapped fails it."""
    ir = random_ir(6, **CASES[1][1])
    gold, gold_info = build_top(ir, pipeline="none", prefix="gold_")
    gate, gate_info = build_top(ir, pipeline="none", prefix="gate_", lut_style="ecp5")
    line = next(ln for ln in gate.splitlines() if ln.strip().startswith("PFUMX "))
    alut, blut = line.split(".ALUT(")[1].split(")")[0], line.split(".BLUT(")[1].split(")")[0]
    bad = line.replace(f".ALUT({alut})", ".ALUT(@)").replace(f".BLUT({blut})", f".BLUT({alut})")
    gate = gate.replace(line, bad.replace(".ALUT(@)", f".ALUT({blut})"), 1)
    (tmp_path / "gold.v").write_text(gold)
    (tmp_path / "gate.v").write_text(gate)
    script = ["read_verilog -sv gold.v gate.v", f"read_verilog {MODELS}", "hierarchy -check", "proc",
              "flatten", "opt_clean",
              f"miter -equiv -flatten -make_assert {gold_info['top']} {gate_info['top']} miter",
              "hierarchy -top miter", "opt -fast", "sat -verify -prove-asserts -tempinduct -set-init-zero -seq 1 miter"]
    run = _yosys(tmp_path, "\n".join(script) + "\n", "ecp5")
    assert run.returncode != 0 and "proof did fail" in (run.stdout + run.stderr)


# --- The carry-chain popcount of the device styles, proven against the popcount's semantics ----------
#
# A SAT miter of two differently shaped adder trees blows up past ~50 inputs, so the proof here is by
# BDDs, which are canonical: yosys reads the popcount with the vendor primitives' models above,
# flattens it to an and-inverter graph (write_aiger), and each output bit's BDD is compared with the
# BDD of "bit b of the number of ones among the inputs", built directly from that definition.


class _BDD:
    """A small reduced ordered BDD (no complement edges): nodes 0 and 1, then (var, lo, hi)."""

    def __init__(self):
        self.nodes, self.unique, self.memo = [None, None], {}, {}

    def mk(self, v, lo, hi):
        if lo == hi:
            return lo
        key = (v, lo, hi)
        node = self.unique.get(key)
        if node is None:
            node = self.unique[key] = len(self.nodes)
            self.nodes.append(key)
        return node

    def apply(self, op, u, w):
        if op == "and":
            if u == 0 or w == 0:
                return 0
            if u == 1 or u == w:
                return w
            if w == 1:
                return u
        else:  # xor
            if u == 0:
                return w
            if w == 0:
                return u
            if u == w:
                return 0
        u, w = min(u, w), max(u, w)
        key = (op, u, w)
        if key not in self.memo:
            vu = self.nodes[u][0] if u > 1 else 1 << 30
            vw = self.nodes[w][0] if w > 1 else 1 << 30
            v = min(vu, vw)
            ul, uh = self.nodes[u][1:] if vu == v else (u, u)
            wl, wh = self.nodes[w][1:] if vw == v else (w, w)
            self.memo[key] = self.mk(v, self.apply(op, ul, wl), self.apply(op, uh, wh))
        return self.memo[key]


def _aig_bdds(bdd, aag: str, mapping: str):
    """BDDs of the outputs of an ASCII AIGER graph: ``{(port, bit): node}``; input bit i is variable i."""
    lines = aag.splitlines()
    _, _, n_in, n_latch, n_out, n_and = (int(x) if x.isdigit() else x for x in lines[0].split()[:6])
    assert n_latch == 0, "the popcount is combinational"
    names = [ln.split() for ln in mapping.splitlines()]
    in_bit = {int(r[1]): int(r[2]) for r in names if r[0] == "input"}
    out_name = {int(r[1]): (r[3], int(r[2])) for r in names if r[0] == "output"}
    value = {0: 0}

    def lit(x):
        node = value[x & ~1]
        return bdd.apply("xor", node, 1) if x & 1 else node

    for k in range(n_in):
        value[int(lines[1 + k])] = bdd.mk(in_bit[k], 0, 1)
    for ln in lines[1 + n_in + n_out:1 + n_in + n_out + n_and]:
        a, x, y = map(int, ln.split())
        value[a] = bdd.apply("and", lit(x), lit(y))
    outs = {out_name[k]: lit(int(lines[1 + n_in + k])) for k in range(n_out) if k in out_name}
    # write_aiger leaves constant outputs out of its map: they must all be 0 (then which is which
    # does not matter), and they stand for the port bits the map does not name.
    unnamed = [lit(int(lines[1 + n_in + k])) for k in range(n_out) if k not in out_name]
    assert all(node == 0 for node in unnamed), "an unnamed constant output is 1"
    return outs, len(unnamed)


def _popcount_bdd(bdd, size: int, bit: int):
    """Bit ``bit`` of the number of ones among variables 0..size-1 (the definition, as a BDD)."""
    layer = {c: (c >> bit) & 1 for c in range(size + 1)}  # after all variables: c ones seen
    for i in range(size - 1, -1, -1):
        layer = {c: bdd.mk(i, layer[c], layer[c + 1]) for c in range(i + 1)}
    return layer[0]


def _popcount_gate(style: str, size: int, width: int) -> str:
    from amaranth.back import verilog
    from dwn_hw.hdl.popcount import Popcount
    pop = Popcount(size, width, style=style, module="gp")
    assert pop.chain
    return verilog.convert(pop, name="gate", emit_src=False) + "".join(pop.verilog_modules())


def _popcount_differs(tmp_path, style: str, size: int, width: int, gate: str) -> list:
    """Output bits of ``gate`` that differ from the popcount of its ``size`` inputs (empty: proven)."""
    (tmp_path / "gate.v").write_text(gate)
    script = (f"read_verilog -sv gate.v\nread_verilog {MODELS}\nhierarchy -check -top gate\nproc\nflatten\n"
              "opt_clean\ntechmap\nopt -fast\naigmap\nopt_clean\nwrite_aiger -ascii -map map.txt gate.aag\n")
    run = _yosys(tmp_path, script, style)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    bdd = _BDD()
    got, zeros = _aig_bdds(bdd, (tmp_path / "gate.aag").read_text(), (tmp_path / "map.txt").read_text())
    missing = {("count", b) for b in range(width)} - set(got)
    assert len(missing) == zeros and set(got) <= {("count", b) for b in range(width)}, sorted(got)
    got.update(dict.fromkeys(missing, 0))
    return [b for b in range(width) if got["count", b] != _popcount_bdd(bdd, size, b)]


CHAIN_SIZES = [("xilinx", 1), ("xilinx", 7), ("xilinx", 16), ("xilinx", 37), ("xilinx", 100),
               ("ecp5", 3), ("ecp5", 16), ("ecp5", 37), ("ice40", 5), ("ice40", 16), ("ice40", 37)]


@pytest.mark.parametrize("style,size", CHAIN_SIZES)
def test_chain_popcount_is_the_popcount(tmp_path, style, size):
    width = size.bit_length()
    gate = _popcount_gate(style, size, width)
    if size >= 16:
        carry = {"xilinx": "CARRY4 ", "ecp5": "CCU2C ", "ice40": "SB_CARRY "}[style]
        assert carry in gate and "+" not in gate.split("module gp_l1")[1]  # primitives only
    assert _popcount_differs(tmp_path, style, size, width, gate) == []


@pytest.mark.slow
@pytest.mark.parametrize("style,size", [("xilinx", 200), ("ecp5", 100), ("ice40", 100)])
def test_chain_popcount_is_the_popcount_large(tmp_path, style, size):
    width = size.bit_length()
    assert _popcount_differs(tmp_path, style, size, width, _popcount_gate(style, size, width)) == []


def test_chain_popcount_in_a_wider_score(tmp_path):
    """A group smaller than the score width (the top's width is the largest group's)."""
    assert _popcount_differs(tmp_path, "xilinx", 20, 7, _popcount_gate("xilinx", 20, 7)) == []


def _flip_init(gate: str, prim: str) -> str:
    """``gate`` with the lowest INIT bit of the first ``prim`` in a counter level inverted."""
    head, body = gate.split("module gp_l1", 1)
    match = re.search(rf"{prim} #\(\.(?:LUT_)?INIT0?\((\d+)'h([0-9a-f]+)\)", body)
    assert match, f"no {prim} in level 1"
    bits, value = int(match.group(1)), int(match.group(2), 16) ^ 1
    new = match.group(0).replace(f"{bits}'h{match.group(2)}", f"{bits}'h{value:0{len(match.group(2))}x}")
    return head + "module gp_l1" + body.replace(match.group(0), new, 1)


@pytest.mark.parametrize("style,fault", [("xilinx", "init"), ("xilinx", "carry"), ("ecp5", "init"),
                                         ("ecp5", "carry"), ("ice40", "init"), ("ice40", "carry")])
def test_the_popcount_proof_catches_a_planted_fault(tmp_path, style, fault):
    size = 16
    gate = _popcount_gate(style, size, 5)
    if fault == "init":
        gate = _flip_init(gate, {"xilinx": "LUT6_2", "ecp5": "LUT4", "ice40": "SB_LUT4"}[style])
    elif style == "xilinx":  # the DI of the first counter's position 1 swapped with its S
        line = next(ln for ln in gate.splitlines() if ln.strip().startswith("CARRY4 g0_c"))
        gate = gate.replace(line, line.replace("g0_b5, g0_a5}", "g0_b6, g0_a5}").replace(
            "g0_b6, g0_a6}", "g0_b5, g0_a6}"))
        assert line not in gate
    elif style == "ecp5":  # the final adder's first carry in tied high
        assert "assign f_c[0] = 1'b0;" in gate
        gate = gate.replace("assign f_c[0] = 1'b0;", "assign f_c[0] = 1'b1;")
    else:  # one SB_CARRY reads its chain's carry in place of an operand
        line = next(ln for ln in gate.splitlines() if ln.strip().startswith("SB_CARRY f_k1"))
        gate = gate.replace(line, re.sub(r"\.I0\([^)]*\)", ".I0(f_c[1])", line))
        assert line not in gate
    assert _popcount_differs(tmp_path, style, size, 5, gate) != []


@pytest.mark.parametrize("style,every,align", [("xilinx", 1, "leaves"), ("xilinx", 2, "leaves"),
                                               ("ecp5", 1, "leaves"), ("ice40", 3, "leaves"), ("ecp5", 4, "root"),
                                               ("ecp5", 5, "root"), ("ice40", 4, "root")])
def test_pipelined_chain_popcount_is_the_delayed_popcount(tmp_path, style, every, align):
    """Registers every ``every`` levels: the count is the popcount ``registers()`` cycles late, the
    latency a top accounts for (``popcount_levels // every``), wherever ``align`` puts them."""
    from amaranth.back import verilog
    from dwn_hw.hdl.popcount import Popcount, popcount_levels
    size, width = 23, 5
    pop = Popcount(size, width, every=every, style=style, module="gp", align=align)
    assert pop.levels == popcount_levels(size, width, style=style)
    delay = pop.registers()
    assert delay == pop.levels // every >= 1
    if align == "root":  # the cases where it differs from "leaves": the last level's result is registered
        assert pop.levels % every
        text = verilog.convert(pop, name="g", emit_src=False, ports=[pop.bits, pop.count])
        assert re.search(rf"\br{pop.levels}\b", text) and not re.search(rf"\br{every}\b", text)
    gate = verilog.convert(pop, name="gate", emit_src=False, ports=[pop.bits, pop.count]) + "".join(
        pop.verilog_modules())
    terms = " + ".join(f"{width}'(bits[{i}])" for i in range(size))
    regs = "".join(f"    reg [{width - 1}:0] d{i} = 0;\n    always @(posedge clk) d{i} <= {'sum' if i == 0 else f'd{i - 1}'};\n"
                   for i in range(delay))
    gold = (f"module gold(input wire clk, input wire rst, input wire [{size - 1}:0] bits, output wire [{width - 1}:0] count);\n"
            f"    wire [{width - 1}:0] sum = {terms};\n{regs}    assign count = d{delay - 1};\nendmodule\n")
    (tmp_path / "gate.v").write_text(gate)
    (tmp_path / "gold.v").write_text(gold)
    script = ["read_verilog -sv gold.v gate.v", f"read_verilog {MODELS}", "setattr -mod -unset top *",
              "hierarchy -check", "proc", "flatten", "opt_clean", "miter -equiv -flatten -make_assert -ignore_gold_x gold gate miter",
              "hierarchy -top miter", "opt -fast", "sat -verify -prove-asserts -set-init-zero -seq 8 miter"]
    run = _yosys(tmp_path, "\n".join(script) + "\n", style)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
