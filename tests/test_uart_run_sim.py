"""`dwn-hw run --port sim`: every vector by default, --limit a positive count, a quiet build kept small
under BUNDLE/build/, and a rerun that reuses the linked simulator."""
import pytest
from click.testing import CliRunner

from dwn_hw import ir as irmod
from dwn_hw.synth.cli import run_cmd
from test_synth_standin import make_bundle

N_VECTORS = 7


@pytest.fixture
def bundle(tmp_path):
    ir = irmod.random_ir(21, features=4, bits_per_feature=3, input_bits=4, layers=[(24, 4), (12, 3)], k=3)
    make_bundle(tmp_path / "b", ir, n_vectors=N_VECTORS, seed=21)
    return tmp_path / "b"


@pytest.mark.parametrize("limit", ["0", "-3", "two"])
def test_limit_must_be_a_positive_integer(bundle, limit):
    res = CliRunner().invoke(run_cmd, ["--port", "sim", "--bundle", str(bundle), "--limit", limit])
    assert res.exit_code == 2 and "--limit" in res.output
    assert not (bundle / "build").exists()  # refused before anything was built


def test_all_vectors_by_default_quietly_and_a_fast_rerun(bundle):
    # The raw format: its core is rtl/'s, which the last step changes (the stream one is built from the IR).
    res = CliRunner().invoke(run_cmd, ["--port", "sim", "--bundle", str(bundle), "--uart-format", "raw"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    # One progress line and the result (matches, the core simulated, the link); no compiler or simulator log.
    assert len(lines) == 4, res.output
    assert lines[2] == "core: rtl/dwn_top.v (portable; no board) with no vendor cells", res.output
    assert f"on {N_VECTORS} of the bundle's {N_VECTORS} vectors" in lines[0]
    assert f"{N_VECTORS}/{N_VECTORS} vectors matched" in lines[1]
    work = bundle / "build" / "run-sim"
    build = work / "build"
    assert (build / "dwn_uart").is_file() and (build / "build.log").stat().st_size > 0
    assert not list(build.rglob("*.o")) and not list(build.rglob("*.cpp"))  # pruned after linking
    assert not (bundle / "uart_sim").exists()
    binary = (build / "dwn_uart").stat().st_mtime_ns

    res = CliRunner().invoke(run_cmd, ["--port", "sim", "--bundle", str(bundle), "--limit", "3", "--uart-format", "raw"])
    assert res.exit_code == 0, res.output
    assert "3/3 vectors matched" in res.output
    assert (build / "dwn_uart").stat().st_mtime_ns == binary  # reused, not rebuilt

    # A changed core is built anew: the stamp covers the sources' contents.
    rtl = bundle / "rtl" / "dwn_top.v"
    rtl.write_text(rtl.read_text() + "\n// changed\n")
    res = CliRunner().invoke(run_cmd, ["--port", "sim", "--bundle", str(bundle), "--limit", "2", "--uart-format", "raw"])
    assert res.exit_code == 0, res.output
    assert "2/2 vectors matched" in res.output and (build / "dwn_uart").stat().st_mtime_ns != binary
