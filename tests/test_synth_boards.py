"""Board descriptions resolve to the right parts and pins, and bundles get their board files."""
import json

import pytest

from dwn_hw.errors import DwnHwError
from dwn_hw.synth.boards import list_boards, load_board, write_board_files

# Datasheet / schematic facts: part, clock pin and MHz, FPGA RX pin, FPGA TX pin.
EXPECTED = {
    "icebreaker": ("iCE40UP5K-SG48", "35", 12.0, "6", "9"),
    "ice40_hx8k_b_evn": ("iCE40HX8K-CT256", "J3", 12.0, "B10", "B12"),
    "ulx3s": ("LFE5U-85F-6BG381C", "G2", 25.0, "M1", "L4"),
    "arty_a7": ("xc7a35ticsg324-1L", "E3", 100.0, "A9", "D10"),
    "basys3": ("xc7a35tcpg236-1", "W5", 100.0, "B18", "A18"),
    "pynq_z2": ("xc7z020clg400-1", "H16", 125.0, "Y16", "Y19"),
}
BUNDLE = {"top": "dwn_top", "in_width": 20, "classes": 3, "score_width": 3, "latency": 2}


def test_every_required_board_is_there():
    assert set(EXPECTED) <= set(list_boards())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_part_clock_and_uart_pins(name):
    b = load_board(name)
    assert (b.part, b.clk_pin, b.clk_mhz, b.rx_pin, b.tx_pin) == EXPECTED[name]
    assert b.family in ("ice40", "ecp5", "xilinx")
    assert b.flow == ("vivado" if b.family == "xilinx" else "open")
    assert b.capacity["luts"] > 1000


def test_unknown_board_names_the_value():
    with pytest.raises(DwnHwError, match="'nosuch'.*icebreaker"):
        load_board("nosuch")


@pytest.mark.parametrize("name,cons,pin_text", [
    ("icebreaker", "board.pcf", "set_io -nowarn uart_tx 9"),
    ("ulx3s", "board.lpf", 'LOCATE COMP "uart_rx" SITE "M1";'),
    ("basys3", "board.xdc", "PACKAGE_PIN A18"),
])
def test_write_board_files(tmp_path, name, cons, pin_text):
    files = {p.name for p in write_board_files(tmp_path, name, BUNDLE, baud=9600)}
    out = tmp_path / "synth" / name
    assert cons in files and "board.v" in files and "README.md" in files
    assert pin_text in (out / cons).read_text()
    verilog = (out / "board.v").read_text()
    assert "module dwn_board(" in verilog and "dwn_top" in verilog
    desc = json.loads((out / "board.json").read_text())
    assert desc["baud"] == 9600 and desc["part"] == EXPECTED[name][0]
    if name == "basys3":
        tcl = (out / "vivado.tcl").read_text()
        assert "synth_design -top dwn_board -part xc7a35tcpg236-1" in tcl and "write_bitstream" in tcl
        assert "-mode out_of_context" in (out / "vivado_core.tcl").read_text()


def test_pynq_uart_is_on_a_stated_pmod_pair(tmp_path):
    write_board_files(tmp_path, "pynq_z2", BUNDLE)
    readme = (tmp_path / "synth" / "pynq_z2" / "README.md").read_text()
    assert "Pmod JA" in readme and "Y19" in readme and "Y16" in readme


def test_board_readme_of_an_older_bundle_states_the_grid_and_the_family_latency(tmp_path):
    """Bundles written before the input grid and per-core latencies were recorded still get board files."""
    older = dict(BUNDLE, inputs="features", features=5, input_bits=4, signed=True)
    write_board_files(tmp_path, "icebreaker", older, latency=7)
    readme = (tmp_path / "synth" / "icebreaker" / "README.md").read_text()
    assert "-8, 7)" in readme and "latency 7" in readme
    assert json.loads((tmp_path / "synth" / "icebreaker" / "board.json").read_text())["core_latency"] == 7


def test_unknown_board_suggests_a_close_name():
    with pytest.raises(DwnHwError, match=r"'ulx3' \(did you mean 'ulx3s'\?\)"):
        load_board("ulx3")
