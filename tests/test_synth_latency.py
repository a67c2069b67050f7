"""synth reports the latency of the core it builds, for every family and pipeline preset.

Device LUT styles build deeper popcount trees (4-input counters), so a family's core may be
slower by some cycles than the portable ``rtl/`` core; the latency a build states must be the
built core's own (the bundle's ``rtl_device`` entry, the generator's for a regenerated core, or
the bundle's for the portable core). No nextpnr here: generation, and yosys on one small core.
"""
import json

import pytest

from dwn_hw import ir as irmod
from dwn_hw.errors import DwnHwError
from dwn_hw.hdl import build_top
from dwn_hw.hdl.lut import DEVICE_STYLES
from dwn_hw.synth import flows
from dwn_hw.synth.boards import core_latency, write_board_files
from test_synth_standin import make_bundle

FAMILIES = ("ice40", "ecp5", "xilinx")
BOARD_OF = {"ice40": "icebreaker", "ecp5": "ulx3s", "xilinx": "arty_a7"}
PRESETS = ("none", "balanced", "max")


@pytest.fixture(scope="module")
def two_layer_ir():
    """The shape of the report: 64 features, layers of 200 and 100 LUTs."""
    return irmod.random_ir(13, features=64, bits_per_feature=2, input_bits=4, layers=[(200, 6), (100, 6)], k=10)


def portable_bundle(path, ir, preset):
    """A bundle exported without --board: rtl/ is portable (mux), no rtl_device."""
    text, info = build_top(ir, inputs="features", pipeline=preset)
    bundle = make_bundle(path, ir, n_vectors=4)
    (path / "rtl" / "dwn_top.v").write_text(text)
    bundle.update(latency=info["latency"], pipeline=info["pipeline"], lut_style="mux")
    (path / "bundle.json").write_text(json.dumps(bundle))
    return bundle, info


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_regenerated_core_reports_its_own_latency(tmp_path, two_layer_ir, family, preset):
    bundle, _ = portable_bundle(tmp_path / "b", two_layer_ir, preset)
    _, own = build_top(two_layer_ir, inputs="features", pipeline=preset, lut_style=DEVICE_STYLES[family])
    core = flows.device_core(tmp_path / "b", bundle, family, tmp_path / "cache")
    assert core.latency == own["latency"] and core.lut_style == DEVICE_STYLES[family]
    assert core.origin.startswith("generated from dwn.ir.json")
    # The cache is reused, and reports the same latency without the generator.
    again = flows.device_core(tmp_path / "b", bundle, family, tmp_path / "cache")
    assert again.latency == own["latency"] and again.sources == core.sources
    # The board files of this family state that latency too.
    write_board_files(tmp_path / "b", BOARD_OF[family], bundle, latency=core.latency)
    desc = json.loads((tmp_path / "b" / "synth" / BOARD_OF[family] / "board.json").read_text())
    assert desc["core_latency"] == own["latency"]
    readme = (tmp_path / "b" / "synth" / BOARD_OF[family] / "README.md").read_text()
    assert f"latency {own['latency']}" in readme


def test_device_cores_are_deeper_somewhere(two_layer_ir):
    """The tests above are not vacuous: some family and preset differ from the portable latency."""
    differ = []
    for preset in PRESETS:
        _, portable = build_top(two_layer_ir, inputs="features", pipeline=preset)
        for family in FAMILIES:
            _, own = build_top(two_layer_ir, inputs="features", pipeline=preset, lut_style=DEVICE_STYLES[family])
            differ += [(family, preset)] if own["latency"] != portable["latency"] else []
    assert differ, "no device core differs in latency: the per-core latency is untested"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_bundles_rtl_device_latency_is_taken(tmp_path, two_layer_ir, family):
    """With --board at export, the family's core and its recorded latency are what synth uses."""
    bundle, _ = portable_bundle(tmp_path / "b", two_layer_ir, "max")
    style = DEVICE_STYLES[family]
    text, own = build_top(two_layer_ir, inputs="features", pipeline="max", lut_style=style)
    (tmp_path / "b" / "rtl" / family).mkdir()
    (tmp_path / "b" / "rtl" / family / "dwn_top.v").write_text(text)
    bundle["rtl_device"] = {family: {"rtl": f"rtl/{family}/dwn_top.v", "lut_style": style,
                                     "latency": own["latency"]}}
    core = flows.device_core(tmp_path / "b", bundle, family, tmp_path / "cache")
    assert core.sources == [tmp_path / "b" / "rtl" / family / "dwn_top.v"]
    assert core.latency == own["latency"] == core_latency(bundle, family)
    assert not (tmp_path / "cache").exists()  # nothing regenerated


def test_an_old_bare_path_entry_is_rebuilt_for_its_latency(tmp_path, two_layer_ir):
    """Bundles before per-core latencies list a bare path: the latency comes from the generator."""
    bundle, _ = portable_bundle(tmp_path / "b", two_layer_ir, "max")
    bundle["rtl_device"] = {"ice40": "rtl/ice40/dwn_top.v"}
    _, own = build_top(two_layer_ir, inputs="features", pipeline="max", lut_style="ice40")
    assert flows.device_core(tmp_path / "b", bundle, "ice40", tmp_path / "cache").latency == own["latency"]
    # Without dwn.ir.json the listed file is missing too: a one-line error that says what to do.
    (tmp_path / "b" / "dwn.ir.json").unlink()
    with pytest.raises(DwnHwError, match=r"rtl/ice40/dwn_top.v .*missing.*export the bundle again"):
        flows.device_core(tmp_path / "b", bundle, "ice40", tmp_path / "cache2")


def test_ports_must_still_match(tmp_path, two_layer_ir):
    bundle, _ = portable_bundle(tmp_path / "b", two_layer_ir, "balanced")
    bundle["score_width"] += 1
    with pytest.raises(DwnHwError, match="score_width"):
        flows.device_core(tmp_path / "b", bundle, "ecp5", tmp_path / "cache")


def test_portable_rtl_keeps_the_bundles_latency(tmp_path, two_layer_ir):
    bundle, portable = portable_bundle(tmp_path / "b", two_layer_ir, "max")
    (tmp_path / "b" / "dwn.ir.json").unlink()
    core = flows.device_core(tmp_path / "b", bundle, "ice40", tmp_path / "cache")
    assert core.latency == portable["latency"] and "no dwn.ir.json" in core.origin


def test_synth_of_the_two_layer_model_reports_the_device_latency(tmp_path, two_layer_ir):
    """Through yosys (no nextpnr): the report, the summary line and `dwn-hw report` agree."""
    from click.testing import CliRunner

    from dwn_hw.synth.cli import report_cmd, summary_line

    bundle, portable = portable_bundle(tmp_path / "b", two_layer_ir, "max")
    _, own = build_top(two_layer_ir, inputs="features", pipeline="max", lut_style="ice40")
    assert own["latency"] != portable["latency"]  # the case of the report
    rep = flows.synth(tmp_path / "b", "icebreaker", core_pnr=False, board_build=False, quiet=True)
    assert rep["latency_cycles"] == rep["core"]["latency_cycles"] == own["latency"]
    assert rep["portable_latency_cycles"] == portable["latency"] and rep["core"]["luts"] > 0
    assert f"latency {own['latency']} cycles" in summary_line(rep)
    res = CliRunner().invoke(report_cmd, [str(tmp_path / "b"), "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    row = next(ln for ln in (tmp_path / "r" / "report.md").read_text().splitlines() if "| icebreaker |" in ln)
    assert f"| {own['latency']} | yes |" in row
