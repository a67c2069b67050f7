"""Every core of a bundle records its own latency, decided by build_top alone (export and synth agree).

Device cores (``--board`` of a family with LUT primitives) build popcount trees of 4-input counters,
so their latency can differ from the portable core's; bundle.json keeps each one.
"""
import re

import pytest

from dwn_hw.bundle import device_core, read_bundle
from dwn_hw.export import export_bundle
from dwn_hw.hdl import build_top
from dwn_hw.hdl.lut import DEVICE_STYLES
from dwn_hw.ir import random_ir, save

boards_mod = pytest.importorskip("dwn_hw.synth.boards")
FAMILIES = ("xilinx", "ice40", "ecp5")
# a digits-like shape: 64 features x 3 thresholds, two layers of 200 and 100 LUTs, 10 classes
IR = random_ir(3, features=64, bits_per_feature=3, input_bits=5, layers=[(200, 6), (100, 6)], k=10)


def _board_of(family):
    return next(b for b in boards_mod.list_boards() if boards_mod.load_board(b).family == family)


@pytest.fixture(scope="module")
def ir_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dl") / "digits_like.json"
    save(IR, path)
    return path


@pytest.mark.parametrize("preset", ["none", "balanced", "max"])
def test_each_core_records_its_own_latency(ir_file, tmp_path, preset):
    out = tmp_path / "b"
    info = export_bundle(ir_file, out, pipeline=preset, boards=[_board_of(f) for f in FAMILIES])
    bundle = read_bundle(out)
    assert bundle == info
    assert bundle["latency"] == build_top(IR, pipeline=preset)[1]["latency"]
    assert sorted(bundle["rtl_device"]) == sorted(FAMILIES)
    for family in FAMILIES:
        core = device_core(bundle, family)
        style = DEVICE_STYLES[family]
        expected = build_top(IR, pipeline=preset, lut_style=style)[1]["latency"]
        assert core == {"rtl": f"rtl/{family}/dwn_top.v", "lut_style": style, "latency": expected}
        text = (out / core["rtl"]).read_text()
        # the file's own header says the same latency
        assert re.search(rf"^// Latency {expected} clock\(s\)", text, re.M), family
        board_readme = (out / "synth" / _board_of(family) / "README.md").read_text()
        assert f"latency {expected} clock(s) in the {family} core" in board_readme


def test_device_latency_can_differ_from_the_portable_core():
    """The reason for per-core latencies (the issue's case: one layer of 100 LUTs, balanced)."""
    ir = random_ir(5, features=16, bits_per_feature=2, input_bits=4, layers=[(100, 6)], k=10)
    portable = build_top(ir, pipeline="balanced")[1]["latency"]
    device = {f: build_top(ir, pipeline="balanced", lut_style=DEVICE_STYLES[f])[1]["latency"] for f in FAMILIES}
    assert any(lat != portable for lat in device.values()), (portable, device)
