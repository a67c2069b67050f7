"""The ``bundle.json`` contract: the one module that writes it and the one reader everyone uses.

An export bundle is a folder whose ``bundle.json`` carries ``"format": FORMAT``. That mark is
what lets ``dwn-hw export --force`` replace a folder: a folder without it is not ours and is
refused. No torch here (hardware side).

Fields (docs/internals.md, "Bundle"):

* ``format`` — ``FORMAT``; bundles written before the mark existed have none and still read.
* ``top``, ``in_width``, ``classes``, ``class_width``, ``score_width`` — the ports.
* ``latency`` — cycles of the portable core ``rtl/dwn_top.v`` (what ``make sim`` runs).
* ``features``, ``input_bits``, ``signed``, ``inputs`` — what ``in_data`` carries.
* ``input_scale`` (one number or one per feature: the IR encoder's ``scale``), ``qmin``, ``qmax``,
  ``rounding`` — the grid: ``q = clip(round(x * scale), qmin, qmax)``, round to nearest, ties to even
  (``np.rint``); with ``inputs == "bits"`` scale and rounding are None and qmin/qmax 0/1.
* ``expected_from``, ``vectors``, ``pipeline``, ``lut_style``, ``modules``, ``rtl``, ``dwn_hw_version``.
* ``instantiate`` — the instantiation templates (``rtl/dwn_top_inst.vh``, ``rtl/dwn_stream_inst.vh``).
* ``files`` — every file the export wrote (relative, sorted, ``bundle.json`` included): ``--force``
  replaces exactly these and carries every other file of the folder into the new bundle.
* ``rtl_device`` — ``{family: {"rtl": "rtl/<family>/dwn_top.v", "lut_style": style, "latency": cycles}}``
  for each ``--board`` family with LUT primitives: the same core with the family's primitives; its
  latency is its own, the one ``build_top`` reports for that core (device popcount trees of 4-input
  counters may be deeper than the portable core's). Read it with :func:`device_core`.
* optional ``stream`` (``--wrap stream``) and ``resources`` (``--estimate``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from dwn_hw.errors import DwnHwError

FILE = "bundle.json"
FORMAT = "dwn-hw-bundle/1"
# Fields every reader may rely on.
REQUIRED = ("top", "in_width", "classes", "score_width", "latency")


def is_bundle(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a ``bundle.json`` that carries our mark (``format``)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def read_bundle(folder: str | os.PathLike) -> dict:
    """``bundle.json`` of an export bundle, or a ``DwnHwError`` that says what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DwnHwError(f"{str(folder)!r} is not a folder: give the export bundle's folder "
                         "(written by `dwn-hw export`)")
    path = folder / FILE
    if not path.is_file():
        raise DwnHwError(f"{folder} is not an export bundle: {path} is missing (run `dwn-hw export` first)")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DwnHwError(f"{path} is not valid JSON ({exc}); export the bundle again") from None
    if not isinstance(data, dict):
        raise DwnHwError(f"{path} does not hold a JSON object; export the bundle again")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise DwnHwError(f"{path} lacks the field(s) {', '.join(missing)}; export the bundle again")
    return data


def bundle_text(bundle: dict) -> str:
    """The text of ``bundle.json`` (the mark added)."""
    return json.dumps({"format": FORMAT, **bundle}, indent=1) + "\n"


def write_bundle(folder: str | os.PathLike, bundle: dict) -> None:
    """Write ``folder/bundle.json`` atomically."""
    from dwn_hw.fsutil import atomic_write_text

    atomic_write_text(Path(folder) / FILE, bundle_text(bundle))


def device_core(bundle: dict, family: str) -> dict | None:
    """``{"rtl", "lut_style", "latency"}`` of the bundle's core for ``family``, or None when it has none.

    Bundles written before latencies were recorded per core list a bare path; their latency is
    then unknown (None) and whoever builds the core must take the latency the generator gives.
    """
    entry = (bundle.get("rtl_device") or {}).get(family)
    if entry is None:
        return None
    if isinstance(entry, str):
        return {"rtl": entry, "lut_style": None, "latency": None}
    return {"rtl": entry["rtl"], "lut_style": entry.get("lut_style"), "latency": entry.get("latency")}
