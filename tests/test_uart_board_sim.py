"""`dwn-hw run --port sim` simulates what the board build synthesizes: the board top with its power-on
reset, the family's device core (SB_LUT4/SB_CARRY on iCE40, LUT4/PFUMX/L6MUX21/CCU2C on ECP5) with the
primitives' models read verbatim from yosys' share folder, at the real baud divisor, over every vector of
the bundle; and a flipped INIT bit in that core makes it fail."""
import re
import shutil

import pytest
from click.testing import CliRunner

from dwn_hw import ir as irmod
from dwn_hw.export import export_bundle
from dwn_hw.synth.cli import run_cmd

TINY = dict(features=6, bits_per_feature=3, input_bits=4, layers=[(24, 6), (12, 4)], k=3)
# The digits shape: 64 features on the 0..16 grid (5 bits), 10 classes.
DIGITS = dict(features=64, bits_per_feature=4, input_bits=5, layers=[(600, 6), (300, 6)], k=10)
INIT = {"ice40": re.compile(r"SB_LUT4 #\(\.LUT_INIT\(16'h([0-9a-f]{4})\)\)"),
        "ecp5": re.compile(r"LUT4 #\(\.INIT\(16'h([0-9a-f]{4})\)\)")}


def _export(tmp_path, shape, board, seed=41):
    ir = irmod.random_ir(seed, **shape)
    irmod.save(ir, tmp_path / "m.ir.json", force=True)
    export_bundle(tmp_path / "m.ir.json", tmp_path / "b", boards=(board,))
    return tmp_path / "b"


def _run(bundle, *args):
    res = CliRunner().invoke(run_cmd, ["--port", "sim", "--bundle", str(bundle), *args])
    lines = res.output.strip().splitlines()
    return res, lines


def _vectors(bundle) -> int:
    import json

    return json.loads((bundle / "bundle.json").read_text())["vectors"]


def _flip_one_init_bit(path, family, lut=-1, bit=0):
    """Flip one bit of one LUT's INIT (default: the last LUT of the core, the last layer's) in ``path``."""
    text = path.read_text()
    hits = list(INIT[family].finditer(text))
    m = hits[lut]
    value = int(m.group(1), 16) ^ (1 << bit)
    path.write_text(text[:m.start(1)] + f"{value:04x}" + text[m.end(1):])
    assert path.read_text() != text


def test_tiny_icebreaker_board_every_vector_with_the_device_core(tmp_path):
    bundle = _export(tmp_path, TINY, "icebreaker")
    n = _vectors(bundle)
    res, lines = _run(bundle, "--baud", "3000000")  # auto: the stream board, as synth builds it
    assert res.exit_code == 0, res.output
    assert f"the icebreaker board build on {n} of the bundle's {n} vectors" in lines[0]
    assert f"{n}/{n} vectors matched" in lines[1]
    assert lines[2] == ("core: build/run-sim/core/core_bits_ice40.v (the --inputs bits core of dwn.ir.json, ice40 "
                        "LUTs) with yosys ice40/cells_sim.v: SB_LUT4, SB_CARRY")
    assert "format stream" in lines[3] and "(4 clocks per bit at the icebreaker clock, 3000000 baud)" in lines[3]
    work = bundle / "build" / "run-sim"
    models = (work / "cell_models.v").read_text()
    assert "module SB_LUT4" in models and "module SB_CARRY" in models and "module SB_RAM" not in models
    assert "SB_LUT4 #" in (work / "core" / "core_bits_ice40.v").read_text()
    # The board top is the synth's, with its power-on reset; the bench's rst is not connected.
    assert "module dwn_board" in (work / "board.v").read_text()


@pytest.mark.slow
def test_planted_fault_in_the_device_core_fails(tmp_path):
    bundle = _export(tmp_path, TINY, "icebreaker")
    n = _vectors(bundle)
    res, lines = _run(bundle, "--baud", "3000000", "--uart-format", "raw")  # raw: rtl/ice40/dwn_top.v itself
    assert res.exit_code == 0, res.output
    assert lines[2] == "core: rtl/ice40/dwn_top.v (ice40 LUTs) with yosys ice40/cells_sim.v: SB_LUT4, SB_CARRY"
    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad, ignore=shutil.ignore_patterns("build"))
    _flip_one_init_bit(bad / "rtl" / "ice40" / "dwn_top.v", "ice40")
    res, lines = _run(bad, "--baud", "3000000", "--uart-format", "raw")
    assert res.exit_code == 1, res.output
    matched = int(re.search(r"(\d+)/%d vectors matched" % n, res.output).group(1))
    assert matched < n
    # The stream board holds the bits core: a fault there fails too.
    res, _ = _run(bad, "--baud", "3000000")
    assert res.exit_code == 0, res.output
    _flip_one_init_bit(bad / "build" / "run-sim" / "core" / "core_bits_ice40.v", "ice40")
    res, _ = _run(bad, "--baud", "3000000")
    assert res.exit_code == 1 and "vectors matched" in res.output, res.output


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["stream", "raw"])
def test_digits_size_icebreaker_board_at_3_mbaud(tmp_path, fmt):
    bundle = _export(tmp_path, DIGITS, "icebreaker")
    n = _vectors(bundle)
    res, lines = _run(bundle, "--baud", "3000000", "--uart-format", fmt)
    assert res.exit_code == 0, res.output
    assert f"{n}/{n} vectors matched" in lines[1]
    assert lines[2].endswith("with yosys ice40/cells_sim.v: SB_LUT4, SB_CARRY"), lines[2]
    assert "(4 clocks per bit" in lines[3]


@pytest.mark.slow
def test_digits_size_icebreaker_raw_board_at_115200_is_the_exported_board_v(tmp_path):
    """104 clocks per bit (12 MHz / 115,200); the simulated board top is the bundle's synth/icebreaker/board.v."""
    bundle = _export(tmp_path, DIGITS, "icebreaker")
    n = _vectors(bundle)
    res, lines = _run(bundle, "--uart-format", "raw")
    assert res.exit_code == 0, res.output
    assert f"{n}/{n} vectors matched" in lines[1]
    assert "(104 clocks per bit at the icebreaker clock, 115200 baud)" in lines[3]
    assert (bundle / "build" / "run-sim" / "board.v").read_text() == (bundle / "synth" / "icebreaker" / "board.v").read_text()


@pytest.mark.slow
def test_digits_size_ulx3s_board_and_a_fault(tmp_path):
    bundle = _export(tmp_path, DIGITS, "ulx3s")
    n = _vectors(bundle)
    res, lines = _run(bundle, "--baud", "1000000", "--uart-format", "raw")  # 25 MHz / 1 Mbaud = 25
    assert res.exit_code == 0, res.output
    assert f"{n}/{n} vectors matched" in lines[1]
    assert lines[2].startswith("core: rtl/ecp5/dwn_top.v (ecp5 LUTs) with yosys ecp5/common_sim.vh: LUT4, PFUMX, "
                               "L6MUX21"), lines[2]
    assert "ecp5/ccu2c_sim.vh: CCU2C" in lines[2]
    assert "(25 clocks per bit" in lines[3]
    _flip_one_init_bit(bundle / "rtl" / "ecp5" / "dwn_top.v", "ecp5")
    res, _ = _run(bundle, "--baud", "1000000", "--uart-format", "raw")
    assert res.exit_code == 1 and "vectors matched" in res.output, res.output
