"""`dwn-hw synth --seeds N`: N placements (in parallel), min / median / max Fmax and each seed's P&R time, the
median in the summary; a stream-format board build of the same tiny design (the --inputs bits core inside)."""
import json

import pytest
from click.testing import CliRunner

from test_synth_flows import tiny_bundle


@pytest.mark.slow
def test_three_seeds_on_a_tiny_design(tmp_path):
    from dwn_hw.synth.cli import synth_cmd

    tiny_bundle(tmp_path / "b")
    res = CliRunner().invoke(synth_cmd, [str(tmp_path / "b"), "--board", "icebreaker", "--seeds", "3", "--jobs", "2",
                                         "--seed", "5", "--baud", "3000000", "--uart-format", "stream", "-q"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "b" / "synth" / "icebreaker" / "report.json").read_text())
    assert rep["seeds"] == [5, 6, 7]
    for seeds, fmax in ((rep["core"]["pnr_seeds"], rep["core"]["fmax_mhz"]), (rep["pnr_seeds"], rep["fmax_mhz"])):
        assert seeds["seeds"] == [5, 6, 7] and len(seeds["fmax_mhz"]) == 3 and len(seeds["pnr_s"]) == 3
        assert seeds["fmax_min_mhz"] <= seeds["fmax_median_mhz"] <= seeds["fmax_max_mhz"]
        assert fmax == seeds["fmax_median_mhz"] == sorted(seeds["fmax_mhz"])[1]
    assert f"{rep['core']['fmax_mhz']:.1f} MHz median of 3 seeds" in res.output
    assert rep["uart"]["format"] == "stream" and rep["uart"]["baud"] == 3000000
    assert rep["board_core"]["inputs"] == "bits" and rep["bitstream"]
    assert rep["wrapper"]["ffs"] == rep["ffs"] - rep["board_core"]["ffs"]


def test_a_baud_above_the_board_usb_uart_is_refused(tmp_path):
    from dwn_hw.synth.cli import synth_cmd

    tiny_bundle(tmp_path / "b")
    res = CliRunner().invoke(synth_cmd, [str(tmp_path / "b"), "--board", "ulx3s", "--baud", "3000000", "-q"])
    from dwn_hw.errors import DwnHwError

    # (the dwn-hw entry point turns this into one `error:` line and exit status 2)
    assert isinstance(res.exception, DwnHwError) and "1000000" in str(res.exception)
