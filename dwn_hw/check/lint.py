"""Verilator lint of generated Verilog, and the one waiver file a bundle ships.

The rule (issue 5): ``verilator --lint-only`` with its default warnings reports nothing, with
no waiver at all. Under ``-Wall`` only the style warnings listed in :data:`WAIVERS` remain,
each with its reason; anything else is a finding.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

WAIVER_FILE = "lint_waivers.vlt"

WAIVERS = """\
`verilator_config
// Waivers for `verilator --lint-only -Wall`; the default warnings need none.
// DECLFILENAME: one file holds the top and all its submodules, so file and module names differ.
lint_off -rule DECLFILENAME
// PROCASSINIT: Amaranth gives every register an initial value in its declaration as well as
// a clocked assignment; the initial value is what an FPGA's configuration loads.
lint_off -rule PROCASSINIT
// UNUSEDSIGNAL on in_data: bits of features (or input bits) that no LUT reads are left
// unconnected on purpose; the port keeps the documented packing.
lint_off -rule UNUSEDSIGNAL -file "*" -match "*'in_data'*"
"""

_FINDING = re.compile(r"^%(Warning|Error)-?([A-Z0-9_]*):")


def lint(paths, top: str, *, wall: bool = False, waivers: bool = False, extra=()) -> list[str]:
    """Run ``verilator --lint-only`` and return its findings (lines starting ``%Warning``/``%Error``).

    Parameters
    ----------
    paths : list of path
        Verilog files.
    top : str
        Top module name.
    wall : bool
        Add ``-Wall``.
    waivers : bool
        Add the waiver file :data:`WAIVERS`.
    """
    from dwn_hw import tools

    paths = [str(p) for p in paths]
    cmd = [tools.verilator_bin(), "--lint-only", "--top-module", top]
    if wall:
        cmd.append("-Wall")
    tmp = None
    if waivers:
        tmp = Path(paths[0]).with_name(f".{top}.{os.getpid()}.vlt")
        tmp.write_text(WAIVERS)
        cmd.append(str(tmp))
    try:
        out = subprocess.run(cmd + list(extra) + paths, capture_output=True, text=True,
                             env=tools.verilator_env(), timeout=600)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    text = out.stdout + out.stderr
    findings = [line for line in text.splitlines() if _FINDING.match(line)
                and not line.startswith("%Error: Exiting due to")]
    if out.returncode != 0 and not findings:
        findings = [f"%Error: verilator exited {out.returncode}: {text.strip()[-500:]}"]
    return findings
