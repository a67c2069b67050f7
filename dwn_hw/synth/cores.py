"""The core a board flow builds and simulates: the one place that decides which Verilog, in which LUT style,
with which latency (:func:`device_core`), and the ``--inputs bits`` core behind the stream UART wrapper
(:func:`stream_core`). Both ``dwn-hw synth`` (:mod:`dwn_hw.synth.flows`) and the simulated board
(:mod:`dwn_hw.synth.uart_sim`) take their core from here, so what is simulated is what is synthesized.
No torch here.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text
from dwn_hw.hdl import protocol


def core_sources(bundle_dir: str | os.PathLike) -> list[Path]:
    rtl = sorted((Path(bundle_dir) / "rtl").glob("*.v"))
    if not rtl:
        raise DwnHwError(f"{Path(bundle_dir) / 'rtl'} holds no Verilog (.v) file: export the bundle again")
    return rtl


def resolve_format(bundle_dir: str | os.PathLike, bundle: dict, fmt: str = "auto") -> str:
    """``raw`` or ``stream``: ``auto`` is ``stream`` when the bundle's core takes features through a
    thermometer encoder and the bundle has its ``dwn.ir.json`` (the stream board needs the IR), else ``raw``."""
    if fmt not in ("auto", *protocol.FORMATS):
        raise DwnHwError(f"UART format must be auto, raw or stream, not {fmt!r}")
    can = bundle.get("inputs", "features") == "features" and (Path(bundle_dir) / "dwn.ir.json").is_file()
    if fmt == "stream" and not can:
        raise DwnHwError("the stream UART format needs a bundle with --inputs features and its dwn.ir.json; "
                         "use --uart-format raw")
    if fmt == "auto":
        fmt = "stream" if can else "raw"
    return fmt


def stream_core(bundle_dir: str | os.PathLike, bundle: dict, cache: str | os.PathLike,
                lut_style: str = "mux") -> tuple[Path, dict]:
    """The ``--inputs bits`` core a ``stream`` board holds, and the wrapper settings (``bundle["uart"]``).

    Built from the bundle's ``dwn.ir.json`` with the bundle's pipeline, named ``<top>_bits``, written to
    ``cache/core_bits_<style>.v`` (rebuilt when the IR or the settings change). Returns the file and
    ``{"format": "stream", "layout": ..., "core": name, "core_width": W, "latency": L}``.
    """
    import dwn_hw
    from dwn_hw import ir as irmod
    from dwn_hw.hdl import build_top

    ir_path = Path(bundle_dir) / "dwn.ir.json"
    ir = irmod.load(ir_path)
    layout = protocol.stream_layout(ir)
    name = f"{bundle['top']}_bits"
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    out, key = cache / f"core_bits_{lut_style}.v", cache / f"core_bits_{lut_style}.key"
    stamp = [hashlib.sha256(ir_path.read_bytes()).hexdigest(), name, bundle.get("pipeline", "balanced"),
             lut_style, dwn_hw.__version__]
    try:
        known = json.loads(key.read_text()) if key.is_file() and out.is_file() else None
    except (OSError, json.JSONDecodeError):
        known = None
    if not (isinstance(known, dict) and known.get("stamp") == stamp):
        text, info = build_top(ir, inputs="bits", pipeline=bundle.get("pipeline", "balanced"), name=name,
                               lut_style=lut_style)
        for field in ("classes", "score_width"):
            if int(info[field]) != int(bundle[field]):
                raise DwnHwError(f"{ir_path} does not match bundle.json: {field} {info[field]} vs {bundle[field]}")
        atomic_write_text(out, text)
        known = {"stamp": stamp, "latency": int(info["latency"]), "in_width": int(info["in_width"])}
        atomic_write_text(key, json.dumps(known) + "\n")
    return out, {"format": "stream", "layout": layout, "core": name, "core_width": known["in_width"],
                 "latency": known["latency"]}


@dataclass(frozen=True)
class Core:
    """The core a family's flow synthesizes: its Verilog, where it came from, its LUT style and latency.

    ``latency`` is this core's own (device styles may build deeper popcount trees than the
    portable core of ``rtl/``), and it is what every report of the build states.
    """

    sources: list
    origin: str
    lut_style: str
    latency: int


def device_core(bundle_dir: Path, bundle: dict, family: str, cache: Path) -> Core:
    """The core's Verilog for a family's flow, where it came from, and its latency.

    Yosys maps the portable ``mux`` LUTs with ABC (about 14 minutes for the MNIST shape on ECP5);
    the family's LUT primitives leave it nothing to map in the LUT layers, counters and encoder.
    In order: the bundle's own ``rtl_device`` core for the family (its latency as ``bundle.json``
    records it), the bundle's ``rtl/`` when it was exported in that style already (the bundle's
    latency), the core regenerated from the bundle's ``dwn.ir.json`` with the family's style
    (cached in ``cache``; the generator's latency for that style; its ports must match the
    bundle's), and last the portable ``rtl/`` (the bundle's latency).
    """
    from dwn_hw.bundle import device_core as listed_core
    from dwn_hw.hdl.lut import DEVICE_STYLES

    style = DEVICE_STYLES.get(family)
    portable = bundle.get("lut_style") or "mux"
    listed = listed_core(bundle, family)
    if listed and listed["latency"] is not None and (bundle_dir / listed["rtl"]).is_file():
        listed_style = listed["lut_style"] or style
        return Core([bundle_dir / listed["rtl"]], f"bundle {listed['rtl']} ({listed_style} primitives)",
                    listed_style, int(listed["latency"]))
    if style is None or portable == style:
        return Core(core_sources(bundle_dir), f"bundle rtl/ ({portable} LUTs)", portable, int(bundle["latency"]))
    ir_path = bundle_dir / "dwn.ir.json"
    if not ir_path.is_file() or "pipeline" not in bundle or "inputs" not in bundle:
        if listed and not (bundle_dir / listed["rtl"]).is_file():
            raise DwnHwError(f"{bundle_dir / listed['rtl']} (bundle.json's core for {family}) is missing and the "
                             f"bundle has no dwn.ir.json to build it from: export the bundle again")
        # An old bundle's device core without a recorded latency cannot be reported truthfully:
        # the portable core's latency is known.
        return Core(core_sources(bundle_dir), f"bundle rtl/ ({portable} LUTs; no dwn.ir.json to build "
                    f"{style} primitives from)", portable, int(bundle["latency"]))
    import dwn_hw

    out = cache / f"core_{style}.v"
    key = cache / f"core_{style}.key"
    stamp = [ir_path.stat().st_mtime_ns, ir_path.stat().st_size, bundle["top"], bundle["inputs"],
             bundle["pipeline"], style, dwn_hw.__version__]
    try:
        known = json.loads(key.read_text()) if key.is_file() and out.is_file() else None
    except (OSError, json.JSONDecodeError):
        known = None
    if not (isinstance(known, dict) and known.get("stamp") == stamp and isinstance(known.get("latency"), int)):
        from dwn_hw import ir as irmod
        from dwn_hw.hdl import build_top

        # name = the bundle's whole top (prefix included): every module name comes out as in rtl/.
        text, info = build_top(irmod.load(ir_path), inputs=bundle["inputs"], pipeline=bundle["pipeline"],
                               name=bundle["top"], lut_style=style)
        # The ports must be the bundle's; the latency is this style's own.
        for field in ("in_width", "classes", "score_width"):
            if int(info[field]) != int(bundle[field]):
                raise DwnHwError(f"{ir_path} does not match {bundle_dir / 'bundle.json'}: the regenerated core has "
                                 f"{field} {info[field]}, the bundle {bundle[field]} (export the bundle again)")
        atomic_write_text(out, text)
        known = {"stamp": stamp, "latency": int(info["latency"])}
        atomic_write_text(key, json.dumps(known) + "\n")
    return Core([out], f"generated from dwn.ir.json ({style} primitives)", style, known["latency"])
