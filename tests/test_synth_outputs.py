"""What synth, run and report may overwrite, and their one-line errors for bad input.

A tool-owned output that dwn-hw wrote (it carries the mark of dwn_hw.outputs) is replaced; any
other existing file is refused in one line unless --force. No nextpnr here: synth runs yosys on a
tiny core with --no-core-pnr --no-board-build.
"""
import json

import pytest

from dwn_hw import ir as irmod
from dwn_hw.cli import main
from test_synth_standin import make_bundle

SYNTH_FAST = ["--board", "icebreaker", "--no-core-pnr", "--no-board-build", "-q"]


def dwn_hw(capsys, *argv):
    """Run the real `dwn-hw` entry point; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def bundle(tmp_path):
    ir = irmod.random_ir(4, features=4, bits_per_feature=3, input_bits=4, layers=[(20, 4), (10, 3)], k=2)
    make_bundle(tmp_path / "b", ir, n_vectors=4)
    return tmp_path / "b"


def test_synth_json_replaces_only_its_own_report(tmp_path, capsys, bundle):
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}\n')
    code, _, err = dwn_hw(capsys, "synth", bundle, *SYNTH_FAST, "--json", mine)
    assert code == 2 and "--force" in one_error_line(err) and str(mine) in err
    assert mine.read_text() == '{"my": "notes"}\n'
    assert not (bundle / "build").exists()  # refused before any synthesis

    code, out, err = dwn_hw(capsys, "synth", bundle, *SYNTH_FAST, "--json", mine, "--force")
    assert code == 0, err
    first = json.loads(mine.read_text())
    assert first["tool"] == "dwn-hw" and first["board"] == "icebreaker"
    assert first == json.loads((bundle / "synth" / "icebreaker" / "report.json").read_text())
    # Our own report is replaced without --force, and the summary line is printed.
    code, out, err = dwn_hw(capsys, "synth", bundle, *SYNTH_FAST, "--json", mine, "--seed", "7")
    assert code == 0, err
    assert json.loads(mine.read_text())["seed"] == 7 and "icebreaker" in out


def test_report_replaces_only_its_own_files(tmp_path, capsys, bundle):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.md").write_text("# my own report\n")
    code, _, err = dwn_hw(capsys, "report", bundle, "-o", out)
    assert code == 2 and "--force" in one_error_line(err)
    assert (out / "report.md").read_text() == "# my own report\n"

    code, _, err = dwn_hw(capsys, "report", bundle, "-o", out, "--force")
    assert code == 0, err
    text = (out / "report.md").read_text()
    assert text.splitlines()[0] == "<!-- written by dwn-hw report -->" and "| b |" in text
    code, _, err = dwn_hw(capsys, "report", bundle, "-o", out)  # ours now: replaced
    assert code == 0, err

    # A plot of the same name in a folder that holds no report of ours is the user's.
    other = tmp_path / "plots"
    other.mkdir()
    (other / "resources_per_stage.png").write_bytes(b"mine")
    code, _, err = dwn_hw(capsys, "report", bundle, "-o", other)
    assert code == 2 and "resources_per_stage.png" in one_error_line(err)
    assert (other / "resources_per_stage.png").read_bytes() == b"mine"


def test_an_older_unmarked_report_in_the_bundle_is_replaced(capsys, bundle):
    """synth/<board>/report.json of a dwn-hw before the mark is ours too; a user's file there is not."""
    target = bundle / "synth" / "icebreaker" / "report.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"board": "icebreaker", "core": {}, "dwn_hw_version": "0.1"}))
    code, _, err = dwn_hw(capsys, "synth", bundle, *SYNTH_FAST)
    assert code == 0, err
    assert json.loads(target.read_text())["tool"] == "dwn-hw"
    target.write_text("my notes\n")
    code, _, err = dwn_hw(capsys, "synth", bundle, *SYNTH_FAST)
    assert code == 2 and "--force" in one_error_line(err) and target.read_text() == "my notes\n"


@pytest.mark.parametrize("command", ["synth", "run", "report"])
def test_a_file_or_a_plain_folder_is_not_a_bundle(tmp_path, capsys, command):
    afile = tmp_path / "model.txt"
    afile.write_text("x")
    plain = tmp_path / "plain"
    plain.mkdir()
    argv = {"synth": lambda b: ["synth", b, "--board", "icebreaker"],
            "run": lambda b: ["run", "--port", "sim", "--bundle", b],
            "report": lambda b: ["report", b, "-o", tmp_path / "r"]}[command]
    code, _, err = dwn_hw(capsys, *argv(afile))
    assert code == 2 and "model.txt" in one_error_line(err)
    code, _, err = dwn_hw(capsys, *argv(plain))
    line = one_error_line(err)
    assert code == 2 and "not an export bundle" in line and "dwn-hw export" in line


def test_unknown_board_suggests_the_closest(capsys, bundle):
    code, _, err = dwn_hw(capsys, "synth", bundle, "--board", "icebraker")
    line = one_error_line(err)
    assert code == 2 and "'icebraker'" in line and "did you mean 'icebreaker'" in line and "ulx3s" in line
    assert not (bundle / "build").exists()


def test_a_bundle_without_verilog_says_so(capsys, bundle):
    for v in (bundle / "rtl").glob("*.v"):
        v.unlink()
    (bundle / "dwn.ir.json").unlink()
    code, _, err = dwn_hw(capsys, "synth", bundle, *SYNTH_FAST)
    line = one_error_line(err)
    assert code == 2 and "rtl" in line and "no Verilog" in line and "export the bundle again" in line


def test_run_data_that_is_not_an_npz(tmp_path, capsys, bundle):
    data = tmp_path / "data.csv"
    data.write_text("1,2,3\n")
    code, _, err = dwn_hw(capsys, "run", "--port", "loop://", "--bundle", bundle, data)
    line = one_error_line(err)
    assert code == 2 and "data.csv" in line and ".npz" in line
