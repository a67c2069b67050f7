"""Lint across shapes: default warnings report nothing, -Wall only the waived style warnings."""
import pytest

from dwn_hw.hdl import build_top
from dwn_hw.check.lint import lint
from dwn_hw.ir import random_ir

# (random_ir kwargs): fan-in 1..6, groups of 1..200 bits, k = 2..100, signed and unsigned,
# encoder and raw bits, permutation, mixed fan-in.
SHAPES = [
    dict(features=3, bits_per_feature=2, input_bits=3, layers=[(10, 1), (6, 2)], k=3),
    dict(features=5, bits_per_feature=4, input_bits=5, signed=True, layers=[(20, 3), (400, 4)], k=2),  # 200-bit groups
    dict(features=4, bits_per_feature=3, input_bits=4, layers=[(30, 5), (100, 6)], k=100),  # 1-bit groups
    dict(features=6, bits_per_feature=3, input_bits=6, layers=[(40, 6), (30, 6), (77, 6)], k=7, permute=True),
    dict(features=8, bits_per_feature=2, input_bits=2, layers=[(25, 6), (33, 5)], k=10, mixed_n=True),
    dict(features=10, bits_per_feature=1, input_bits=1, layers=[(12, 2)], k=12, encoder=False),
    dict(features=2, bits_per_feature=8, input_bits=8, signed=True, layers=[(64, 6), (130, 3)], k=13),
    # groups of 5, 5 and 3 bits: the short group's count has a high bit that is always 0
    dict(features=3, bits_per_feature=2, input_bits=4, layers=[(6, 3), (13, 2)], k=3),
]
PRESETS = ["none", "balanced", "max"]


def _cases():
    for i, shape in enumerate(SHAPES):
        for inputs in ("features", "bits"):
            if inputs == "features" and not shape.get("encoder", True):
                continue
            # Every preset on every shape would be 39 designs; rotate presets instead, and run
            # all three on the first shape.
            presets = PRESETS if i == 0 else [PRESETS[(i + (inputs == "bits")) % 3]]
            for p in presets:
                yield pytest.param(i, inputs, p, id=f"shape{i}-{inputs}-{p}")


def _wrapper(infos) -> str:
    """A top that instantiates every design with all ports on its own ports (so it adds no findings)."""
    ports, body = ["input wire clk", "input wire rst"], []
    for d, info in enumerate(infos):
        sw = info["classes"] * info["score_width"]
        ports += [f"input wire v{d}", f"input wire [{info['in_width'] - 1}:0] x{d}", f"output wire ov{d}",
                  f"output wire [{info['class_width'] - 1}:0] c{d}", f"output wire [{sw - 1}:0] s{d}"]
        body.append(f"  {info['top']} u{d} (.clk(clk), .rst(rst), .in_valid(v{d}), .in_data(x{d}), "
                    f".out_valid(ov{d}), .out_class(c{d}), .out_scores(s{d}));")
    return "module lint_all (\n  " + ",\n  ".join(ports) + "\n);\n" + "\n".join(body) + "\nendmodule\n"


def test_lint_clean_across_shapes(tmp_path):
    # All designs (prefixed) in one Verilator call per rule set, under a wrapper top.
    paths, infos = [], []
    for d, param in enumerate(_cases()):
        shape, inputs, pipeline = param.values
        ir = random_ir(shape + 10, **SHAPES[shape])
        text, info = build_top(ir, inputs=inputs, pipeline=pipeline, prefix=f"d{d}_")
        paths.append(tmp_path / f"d{d}.v")
        paths[-1].write_text(text)
        infos.append(info)
    assert len(infos) >= 14
    (tmp_path / "lint_all.v").write_text(_wrapper(infos))
    paths.append(tmp_path / "lint_all.v")
    assert lint(paths, "lint_all") == []
    assert lint(paths, "lint_all", wall=True, waivers=True) == []


def test_unread_input_bits_are_the_only_unused_signals(tmp_path):
    ir = random_ir(5, features=6, bits_per_feature=2, input_bits=4, layers=[(3, 2), (2, 2)], k=2)
    text, info = build_top(ir, pipeline="none")
    path = tmp_path / "dwn_top.v"
    path.write_text(text)
    findings = lint([path], info["top"], wall=True)
    unused = [f for f in findings if "UNUSEDSIGNAL" in f]
    assert unused, "3 LUTs of 2 inputs cannot read all 6 features"
    assert all("'in_data'" in f for f in unused), unused
    # Without the waivers, -Wall finds only the three waived kinds, and each waiver is needed.
    rules = {f.split(":")[0].split("-")[1] for f in findings}
    assert rules == {"DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL"}, rules


def test_a_flagged_problem_is_reported(tmp_path):
    """The checker itself can fail: a width mismatch in a hand-made module is a finding."""
    path = tmp_path / "bad.v"
    path.write_text("module bad(input wire [3:0] a, output wire [1:0] y);\n  assign y = a;\nendmodule\n")
    findings = lint([path], "bad")
    assert any("WIDTHTRUNC" in f for f in findings), findings


def test_dont_care_inputs_leave_no_unread_wire(tmp_path):
    """A LUT whose table ignores an input: the generator drops the input before building, so
    nothing is built for it (no comparator for a feature only that input read) and lint stays clean."""
    from dwn_hw.ir import validate

    ir = random_ir(1, features=3, bits_per_feature=1, input_bits=3, layers=[(2, 2), (2, 1)], k=2)
    ir["layers"][0]["mapping"] = [[0, 1], [0, 2]]
    ir["layers"][0]["tables"] = ["a", "6"]  # LUT 0 ignores slot 1 (feature 1); LUT 1 is an XOR
    ir["layers"][1]["mapping"] = [[0], [1]]
    ir["layers"][1]["tables"] = ["2", "1"]
    validate(ir)
    for style in ("mux", "cell"):
        text, info = build_top(ir, pipeline="none", lut_style=style)
        path = tmp_path / f"{style}.v"
        path.write_text(text)
        assert lint([path], info["top"]) == []
        assert lint([path], info["top"], wall=True, waivers=True) == []
        assert "f1_gt" not in text  # no comparator for the feature nothing depends on
