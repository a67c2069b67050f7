"""Which existing files a command may replace: its own earlier outputs, and nothing else without ``--force``.

A tool-owned output is recognisable by a mark that we put in everything we write:

- JSON files (metrics, reports): the top-level key ``"tool": "dwn-hw"`` (:func:`mark`);
- text files (Markdown reports, logs): a first line holding ``written by dwn-hw`` (:func:`text_mark`).

:func:`check_replaceable` is the one check every command calls before writing such an output: a missing path or
one of our outputs may be written, anything else existing is refused unless ``force``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from dwn_hw.errors import DwnHwError

TOOL = "dwn-hw"
TEXT_MARK = f"written by {TOOL}"
_SNIFF_BYTES = 1 << 20   # our JSON outputs are small; a bigger file is not one of them


def mark(data: dict, kind: str | None = None) -> dict:
    """``data`` with the tool's mark first (``"tool": "dwn-hw"``, and ``"kind"`` when given)."""
    head = {"tool": TOOL, **({"kind": kind} if kind else {})}
    return {**head, **{k: v for k, v in data.items() if k not in head}}


def text_mark(comment: str = "<!-- {} -->") -> str:
    """The first line that marks a text output as ours, e.g. ``<!-- written by dwn-hw -->``."""
    return comment.format(TEXT_MARK)


def is_tool_output(path: str | os.PathLike) -> bool:
    """True when ``path`` is a file that carries our mark (JSON key or first text line)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > _SNIFF_BYTES:
            return False
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if TEXT_MARK in text.split("\n", 1)[0]:
        return True
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and str(data.get("tool", "")).split(" ")[0] == TOOL


def check_replaceable(path: str | os.PathLike, force: bool, option: str = "--force") -> Path:
    """Refuse to write ``path`` over anything but a missing file or one of our earlier outputs (unless ``force``).

    A folder is always refused: an output file never replaces a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise DwnHwError(f"{path} is a folder; give a file path for the output")
    if path.exists() and not force and not is_tool_output(path):
        raise DwnHwError(f"{path} exists and was not written by {TOOL}; pass {option} to replace it, "
                         "or choose another path")
    return path
