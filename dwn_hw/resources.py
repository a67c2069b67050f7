"""Files that ship with the package: bundle templates, the cocotb bench, board descriptions.

The design card keeps them at the top of the checkout (``rtl_templates/``, ``sim/``,
``boards/``); ``pyproject.toml`` maps them into the package as ``dwn_hw.data.*`` so an
installed wheel carries them. Always reach them through :func:`data_path`.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

_KINDS = {"rtl_templates", "sim", "boards"}


def data_path(kind: str) -> Path:
    """Folder of shipped files of one kind: ``"rtl_templates"``, ``"sim"`` or ``"boards"``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {sorted(_KINDS)}")
    try:
        root = importlib.resources.files(f"dwn_hw.data.{kind}")
        path = Path(str(root))
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    # Running from a checkout that was not installed: the folder beside the package.
    path = Path(__file__).resolve().parent.parent / kind
    if path.is_dir():
        return path
    raise FileNotFoundError(f"dwn-hw data folder {kind!r} is missing from this installation")
