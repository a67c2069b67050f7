"""IR v1: load, save and validate (numpy, stdlib and jsonschema only; never torch).

The format is documented in ``docs/ir.md``; the JSON schema ships as ``schema_v1.json``.
Validation is two-step: the schema checks types and shapes of each field, then
:func:`validate` checks what a schema cannot say (lengths that must agree, indices in
range, table sizes that match their rows).
"""
from __future__ import annotations

import functools
import importlib.resources
import json
import os
from pathlib import Path

import numpy as np

from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text, check_new
from dwn_hw.ir.grid import grid_range

FORMAT = "dwn-hw-ir"
VERSION = 1


class IRError(DwnHwError):
    """An IR that is malformed; the message names the field and the bad value."""


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    text = importlib.resources.files("dwn_hw.ir").joinpath("schema_v1.json").read_text()
    return json.loads(text)


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(parts) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def num_input_bits(ir: dict) -> int:
    """Number of thermometer bits (the first layer's input size)."""
    enc = ir["encoder"]
    if enc["kind"] == "none":
        return int(enc["features"])
    return int(enc["features"]) * int(enc["bits_per_feature"])


def table_digits(row_len: int) -> int:
    return max(1, -(-(1 << row_len) // 4))


def group_size(ir: dict) -> int:
    n_out = len(ir["layers"][-1]["mapping"])
    k = int(ir["groupsum"]["k"])
    return -(-n_out // k)


def score_width(ir: dict) -> int:
    """Bits of one class score: enough for the largest popcount (the group size)."""
    return max(1, int(group_size(ir)).bit_length())


def class_width(ir: dict) -> int:
    k = int(ir["groupsum"]["k"])
    return max(1, (k - 1).bit_length())


def input_width(ir: dict, inputs: str) -> int:
    """Width of ``in_data`` for ``inputs`` = ``"features"`` or ``"bits"``."""
    enc = ir["encoder"]
    if inputs == "features":
        if enc["kind"] == "none":
            raise IRError("--inputs features needs an IR with a thermometer encoder; this one has encoder.kind 'none'")
        return int(enc["features"]) * int(enc["input_bits"])
    if inputs == "bits":
        return num_input_bits(ir)
    raise IRError(f"inputs must be 'features' or 'bits', not {inputs!r}")


def validate(ir: dict) -> dict:
    """Check an IR dict; return it unchanged or raise :class:`IRError` naming the field and value."""
    import jsonschema

    if not isinstance(ir, dict):
        raise IRError(f"an IR is a JSON object, not {type(ir).__name__}")
    if ir.get("format") != FORMAT:
        raise IRError(f"$.format must be {FORMAT!r}, not {_short(ir.get('format'))}")
    if isinstance(ir.get("version"), int) and ir["version"] > VERSION:
        raise IRError(f"$.version {ir['version']} is newer than this dwn-hw reads ({VERSION}); upgrade dwn-hw")
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(ir))
    if error is not None:
        raise IRError(f"{_path(error.absolute_path)}: {error.message if len(error.message) < 160 else _short(error.instance)+' is invalid'}")

    enc = ir["encoder"]
    F, T = int(enc["features"]), int(enc["bits_per_feature"])
    if enc["kind"] == "thermometer":
        qmin, qmax = grid_range(enc)
        th = enc["thresholds"]
        if len(th) != F:
            raise IRError(f"$.encoder.thresholds has {len(th)} rows, expected features = {F}")
        for f, row in enumerate(th):
            if len(row) != T:
                raise IRError(f"$.encoder.thresholds[{f}] has {len(row)} values, expected bits_per_feature = {T}")
            for t, v in enumerate(row):
                if not qmin - 1 <= v <= qmax:
                    raise IRError(f"$.encoder.thresholds[{f}][{t}] = {v} is outside the grid [{qmin - 1}, {qmax}]")
        scale = enc["scale"]
        if isinstance(scale, list) and len(scale) != F:
            raise IRError(f"$.encoder.scale has {len(scale)} values, expected 1 or features = {F}")
    if "used" in enc:
        used = enc["used"]
        rows = F if enc["kind"] == "thermometer" else 1
        width = T if enc["kind"] == "thermometer" else F
        if len(used) != rows or any(len(r) != width for r in used):
            raise IRError(f"$.encoder.used must be {rows} x {width} booleans")

    prev = num_input_bits(ir)
    for i, layer in enumerate(ir["layers"]):
        mapping, tables, n = layer["mapping"], layer["tables"], int(layer["n"])
        if len(mapping) != len(tables):
            raise IRError(f"$.layers[{i}]: {len(mapping)} mapping rows but {len(tables)} tables")
        for j, row in enumerate(mapping):
            if len(row) > n:
                raise IRError(f"$.layers[{i}].mapping[{j}] has {len(row)} inputs, more than n = {n}")
            for l, src in enumerate(row):
                if src >= prev:
                    raise IRError(f"$.layers[{i}].mapping[{j}][{l}] = {src} is out of range: the previous stage has {prev} outputs")
            want = table_digits(len(row))
            if len(tables[j]) != want:
                raise IRError(f"$.layers[{i}].tables[{j}] has {len(tables[j])} hex digits, expected {want} for {len(row)} inputs")
            if int(tables[j], 16) >> (1 << len(row)):
                raise IRError(f"$.layers[{i}].tables[{j}] = {_short(tables[j])} sets bits above address {(1 << len(row)) - 1}")
        prev = len(mapping)

    gs = ir["groupsum"]
    perm = gs.get("permutation")
    if perm is not None:
        if sorted(perm) != list(range(prev)):
            raise IRError(f"$.groupsum.permutation must be a permutation of 0..{prev - 1} (the last layer's outputs)")
    if int(gs["k"]) > prev:
        raise IRError(f"$.groupsum.k = {gs['k']} exceeds the last layer's {prev} outputs")
    return ir


def loads(text: str) -> dict:
    try:
        ir = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IRError(f"not valid JSON: {exc}") from None
    return validate(ir)


def load(path: str | os.PathLike) -> dict:
    """Read and validate an IR file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise IRError(f"IR file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IRError(f"cannot read IR file {path}: {exc}") from None
    try:
        return loads(text)
    except IRError as exc:
        raise IRError(f"{path}: {exc}") from None


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def dumps(ir: dict) -> str:
    """Deterministic, compact JSON text of an IR (fields in the documented order)."""
    return json.dumps(_jsonable(ir), separators=(",", ":")) + "\n"


def save(ir: dict, path: str | os.PathLike, force: bool = False) -> None:
    """Validate and write an IR atomically; refuse to overwrite without ``force``."""
    validate(_jsonable(ir))
    check_new(path, force)
    atomic_write_text(path, dumps(ir))
