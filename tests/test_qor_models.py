"""bench/qor.py --section models: per-stage cells of a whole core add up to yosys' hierarchical total."""
from __future__ import annotations

from conftest import load_script
from dwn_hw.hdl.plan import plan
from dwn_hw.ir import random_ir, validate


def _qor():
    return load_script("bench/qor.py")


def test_stages_sum_to_hierarchical_total():
    qor = _qor()
    # A tiny core: 4 features x 3 thresholds -> 12 LUT6 -> 8 LUT4, 2 classes (about 20 LUTs).
    ir = validate(random_ir(3, features=4, bits_per_feature=3, input_bits=4, layers=[(12, 6), (8, 4)], k=2))
    row = qor.measure_core(ir, "xilinx", "xilinx", flat=False, timeout=300)
    stages, total = row["stages"], row["hier_total"]
    assert list(stages) == ["encoder", "layer 0", "layer 1", "popcount", "argmax", "top (registers, glue)"]
    for field in ("luts", "ffs", "carry", "luts_total"):
        assert sum(s[field] for s in stages.values()) == total[field], field
    # The Xilinx style writes each live LUT as one primitive: a layer costs exactly its live LUTs.
    live = [len(rows) for rows, _ in plan(ir, "features").layers]
    assert [stages[f"layer {i}"]["luts"] for i in range(2)] == live
    assert stages["popcount"]["carry"] > 0  # the carry-chain popcount
    assert total["luts"] > 0 and stages["top (registers, glue)"]["luts"] == 0
    # The table shows the stage rows and the sum row.
    md = qor.models_markdown({"families": {"xilinx": {"scripts": qor.MODEL_SCRIPTS["xilinx"], "models": {
        "tiny": {"device": row, "baseline": row, "ratio_luts": {s: 1.0 for s in [*stages, "hier_total"]}}}}}})
    assert "| tiny | encoder |" in md and "**sum of stages**" in md


def test_stage_cells_multiplies_instances():
    qor = _qor()
    stat = {"modules": {
        "\\t": {"num_cells_by_type": {"FDRE": 3, "t_pop0": 1, "t_layer0": 1, "t.argmax": 1}},
        "\\t_pop0": {"num_cells_by_type": {"t_pop0_l1": 2, "LUT3": 1}},
        "\\t_pop0_l1": {"num_cells_by_type": {"CARRY4": 1, "LUT6_2": 2}},
        "\\t_layer0": {"num_cells_by_type": {"LUT6": 5}},
        "\\t.argmax": {"num_cells_by_type": {"LUT4": 1, "FDRE": 2}},
    }}
    cells = qor.stage_cells(stat, "t")
    assert cells == {"top (registers, glue)": {"FDRE": 3}, "popcount": {"CARRY4": 2, "LUT6_2": 4, "LUT3": 1},
                     "layer 0": {"LUT6": 5}, "argmax": {"LUT4": 1, "FDRE": 2}}
