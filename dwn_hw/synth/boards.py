"""Board descriptions and the files a bundle needs to build for a board.

A board is a small JSON file in ``boards/`` (flow, nextpnr options, capacity) that names an
``amaranth.build`` platform; part, package, clock and UART pins are read from that platform
(amaranth-boards where it has the board, :mod:`dwn_hw.synth.platforms` otherwise), so pin lists
are never copied. No torch here.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text
from dwn_hw.resources import data_path
from dwn_hw.hdl import protocol

BOARD_TOP = "dwn_board"
CONSTRAINTS = {"ice40": "board.pcf", "ecp5": "board.lpf", "xilinx": "board.xdc"}


@dataclass
class Board:
    name: str
    title: str
    family: str            # "ice40", "ecp5" or "xilinx"
    flow: str              # "open" (yosys + nextpnr + pack) or "vivado" (yosys estimates + Vivado Tcl)
    part: str
    device: str
    package: str
    clk_pin: str
    clk_mhz: float
    rx_pin: str
    tx_pin: str
    io_standard: str
    capacity: dict
    nextpnr: list = field(default_factory=list)
    notes: str = ""
    platform: str = ""
    max_baud: int = protocol.DEFAULT_BAUD  # what the board's USB-UART (and clock) allows; boards/*.json

    def to_json(self) -> dict:
        return asdict(self)


def list_boards() -> list[str]:
    return sorted(p.stem for p in data_path("boards").glob("*.json"))


def _platform(spec: str):
    module, _, cls = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except (ImportError, AttributeError) as exc:
        raise DwnHwError(f"board platform {spec!r} is not available ({exc}); pip install amaranth-boards") from exc


def _pin(resource) -> str:
    return resource.ios[0].names[0]


def _part(family: str, plat) -> str:
    if family == "ice40":
        return f"{plat.device}-{plat.package}"
    if family == "ecp5":
        return f"{plat.device}-{plat.speed}{plat.package}C"
    return f"{plat.device}{plat.package}-{plat.speed}"


def load_board(name: str) -> Board:
    """The board called ``name`` (a file ``boards/<name>.json``)."""
    known = list_boards()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(str(name).lower(), known, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DwnHwError(f"unknown board {name!r}{hint}; known boards: {', '.join(known)}")
    path = data_path("boards") / f"{name}.json"
    desc = json.loads(path.read_text())
    plat = _platform(desc["platform"])
    clk = plat.lookup(plat.default_clk)
    uart = plat.lookup("uart", 0)
    sub = {s.name: s for s in uart.ios}
    attrs = dict(uart.attrs)
    io_std = attrs.get("IOSTANDARD") or attrs.get("IO_TYPE") or attrs.get("IO_STANDARD") or "LVCMOS33"
    return Board(name=desc["name"], title=desc["title"], family=desc["family"], flow=desc["flow"],
                 part=_part(desc["family"], plat), device=plat.device, package=plat.package,
                 clk_pin=_pin(clk), clk_mhz=clk.clock.frequency / 1e6, rx_pin=_pin(sub["rx"]),
                 tx_pin=_pin(sub["tx"]), io_standard=io_std, capacity=dict(desc["capacity"]),
                 nextpnr=list(desc.get("nextpnr", [])), notes=desc.get("notes", ""), platform=desc["platform"],
                 max_baud=int(desc.get("max_baud", protocol.DEFAULT_BAUD)))


def core_latency(bundle_info: dict, family: str) -> int:
    """Latency of the core a family's build holds, as ``bundle.json`` records it.

    The family's own ``rtl_device`` core when the bundle has one with a recorded latency (device
    styles may build deeper popcount trees), else the bundle's portable core.
    """
    from dwn_hw.bundle import device_core

    entry = device_core(bundle_info, family)
    if entry is not None and entry["latency"] is not None:
        return int(entry["latency"])
    return int(bundle_info["latency"])


def grid_fields(bundle_info: dict) -> dict:
    """``bundle_info`` with the input grid's ``qmin``/``qmax``, which bundles before they were recorded lack."""
    if "qmin" in bundle_info and "qmax" in bundle_info:
        return bundle_info
    if bundle_info.get("inputs", "features") == "bits" or "input_bits" not in bundle_info:
        qmin, qmax = 0, 1
    else:
        from dwn_hw.ir.grid import grid_bounds

        qmin, qmax = grid_bounds(bundle_info["input_bits"], bool(bundle_info.get("signed")))
    return {**bundle_info, "qmin": qmin, "qmax": qmax}


def _render(template: str, **ctx) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_path("rtl_templates") / "board")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(template).render(**ctx)


def write_board_files(bundle_dir: str | os.PathLike, board_name: str, bundle_info: dict,
                      baud: int = protocol.DEFAULT_BAUD, core_mhz: float = 100.0,
                      latency: int | None = None) -> list[Path]:
    """Write ``synth/<board>/`` of a bundle: board top Verilog, constraints, Vivado Tcl, README.

    Parameters
    ----------
    bundle_dir : path
        The bundle folder (``rtl/`` holds the core).
    board_name : str
        A name from :func:`list_boards`.
    bundle_info : dict
        ``bundle.json``'s fields (at least ``top``, ``in_width``, ``classes``, ``score_width``, ``latency``).
    baud : int
        UART rate of the wrapper.
    core_mhz : float
        Target clock of the out-of-context core build (Vivado Tcl).
    latency : int or None
        Latency of the core the board build holds (the family's own core); None: the one
        :func:`core_latency` reads from ``bundle_info``.

    Returns the files written.
    """
    from dwn_hw.hdl.uart import board_verilog

    board = load_board(board_name)
    out = Path(bundle_dir) / "synth" / board.name
    out.mkdir(parents=True, exist_ok=True)
    core = bundle_info["top"]
    if latency is None:
        latency = core_latency(bundle_info, board.family)
    # The README states the latency of the core this board build holds, not the portable one's.
    bundle_info = {**grid_fields(bundle_info), "latency": int(latency)}
    files: dict[str, str] = {"board.v": board_verilog(bundle_info, board.clk_mhz * 1e6, baud, BOARD_TOP)}
    uart = bundle_info.get("uart") or {"format": "raw"}
    ctx = {"latency": int(latency), "board": board, "top": BOARD_TOP, "core": core, "bundle": bundle_info, "baud": baud,
           "core_mhz": core_mhz, "payload_bytes": protocol.payload_bytes(bundle_info["in_width"]), "uart": uart,
           "stream_bytes": protocol.stream_payload_bytes(uart["layout"]) if uart["format"] == "stream" else None}
    cons = CONSTRAINTS[board.family]
    files[cons] = _render(cons + ".j2", **ctx)
    if board.family == "xilinx":
        for name in ("vivado.tcl", "vivado_core.tcl", "core.xdc"):
            files[name] = _render(name + ".j2", **ctx)
    ctx["constraint_files"] = [cons]
    files["README.md"] = _render("README.md.j2", **ctx)
    desc = board.to_json() | {"baud": baud, "top": BOARD_TOP, "core": uart.get("core", core),
                              "core_latency": int(latency), "uart_format": uart["format"]}
    if uart["format"] == "stream":
        lay = uart["layout"]
        desc["stream"] = {"sent_features": lay["features"], "used_bits": lay["used"], "input_bits": lay["input_bits"],
                          "signed": lay["signed"], "features_per_byte": lay["per_byte"],
                          "payload_bytes": ctx["stream_bytes"], "core_in_width": uart["core_width"]}
    files["board.json"] = json.dumps(desc, indent=1) + "\n"
    written = []
    for name, text in files.items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written
