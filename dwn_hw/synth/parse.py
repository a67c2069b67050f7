"""Reading what yosys (``stat -json``) and nextpnr (``--report``) say about a design. No torch here."""
from __future__ import annotations

import re

from dwn_hw.errors import DwnHwError

_FF = {
    "ice40": re.compile(r"^SB_DFF"),
    "ecp5": re.compile(r"^TRELLIS_FF$"),
    "xilinx": re.compile(r"^FD[RSCP]E?$|^FD$"),
}
_CARRY = {"ice40": {"SB_CARRY"}, "ecp5": {"CCU2C"}, "xilinx": {"CARRY4", "CARRY8"}}
_RAM = {"ice40": {"SB_RAM40_4K", "SB_SPRAM256KA"}, "ecp5": {"DP16KD", "PDPW16KD"},
        "xilinx": {"RAMB18E1", "RAMB36E1"}}
_LUTRAM = {"ecp5": {"TRELLIS_DPR16X4"}, "xilinx": {"SRL16E", "SRLC32E", "RAM32X1D", "RAM64X1D", "RAM32M", "RAM64M"}}


def stat_design(stat: dict) -> dict:
    """``num_cells_by_type`` of the whole design from yosys ``stat -json`` output."""
    try:
        return dict(stat["design"]["num_cells_by_type"])
    except (KeyError, TypeError) as exc:
        raise DwnHwError("yosys stat -json output has no design.num_cells_by_type; is yosys ≥ 0.40?") from exc


def cell_counts(cells: dict, family: str) -> dict:
    """LUTs, FFs, carry and RAM cells of a synthesized design (device primitives of ``family``).

    ``luts`` counts LUT4 (iCE40, ECP5) or LUT1..LUT6 and LUT6_2 (Xilinx, with ``lut_sizes`` per size); LUTs
    used as memory or shift registers count as LUTs too (``lutram``).
    """
    if family not in _FF:
        raise DwnHwError(f"unknown FPGA family {family!r}")
    if family == "xilinx":
        # A LUT6_2 (two outputs of one LUT6, as the carry-chain popcount writes them) is one LUT.
        sizes = {f"LUT{i}": int(cells.get(f"LUT{i}", 0)) for i in range(1, 7)}
        sizes["LUT6_2"] = int(cells.get("LUT6_2", 0))
        luts = sum(sizes.values())
    else:
        sizes = {}
        luts = int(cells.get("SB_LUT4" if family == "ice40" else "LUT4", 0))
    lutram = sum(int(v) for k, v in cells.items() if k in _LUTRAM.get(family, set()))
    out = {
        "luts": luts + lutram,
        "ffs": sum(int(v) for k, v in cells.items() if _FF[family].match(k)),
        "carry": sum(int(v) for k, v in cells.items() if k in _CARRY[family]),
        "bram": sum(int(v) for k, v in cells.items() if k in _RAM[family]),
        "lutram": lutram,
        "cells": {k: int(v) for k, v in sorted(cells.items()) if not k.startswith("$")},
    }
    if family == "xilinx":
        out["lut_sizes"] = sizes
    return out


def nextpnr_summary(report: dict) -> dict:
    """Achieved Fmax (MHz, the slowest clock; None without a register-to-register path) and utilisation."""
    fmax = report.get("fmax") or {}
    achieved = [v["achieved"] for v in fmax.values() if isinstance(v, dict) and "achieved" in v]
    util = {k: {"used": v["used"], "available": v["available"]}
            for k, v in (report.get("utilization") or {}).items() if v.get("used")}
    return {"fmax_mhz": round(min(achieved), 2) if achieved else None, "utilisation": util}
