"""Users' raw data onto a model's input grid (numpy only; never imports torch)."""
from __future__ import annotations

import numpy as np

from dwn_hw.errors import DwnHwError
from dwn_hw.ir.grid import quantize_array


def _grid_of(obj) -> tuple[object, int, bool]:
    """(scale, input_bits, signed) of an IR dict, a loaded checkpoint, or anything carrying a grid."""
    if isinstance(obj, dict) and obj.get("format") == "dwn-hw-ir":
        enc = obj["encoder"]
        if enc["kind"] != "thermometer":
            raise DwnHwError("this IR has encoder.kind 'none': its inputs are thermometer bits, not grid values")
        return enc["scale"], int(enc["input_bits"]), bool(enc["signed"])
    grid = getattr(obj, "grid", None)
    if grid is None:
        meta = getattr(obj, "meta", None)
        if isinstance(meta, dict):
            grid = meta.get("grid")
    if grid is None:
        raise DwnHwError(f"cannot find an input grid on {type(obj).__name__}: pass an IR dict or a loaded checkpoint")
    if isinstance(grid, dict):
        return grid["scale"], int(grid["input_bits"]), bool(grid["signed"])
    return grid.scale, int(grid.input_bits), bool(grid.signed)


def quantize(ir_or_model, x) -> np.ndarray:
    """Map raw float inputs onto the grid the hardware reads.

    Parameters
    ----------
    ir_or_model : dict or checkpoint
        An IR (``encoder.scale``, ``input_bits``, ``signed``) or what ``dwn_hw.load`` returns.
    x : array_like, ``[N, F]``
        Raw feature values (numpy, or anything ``numpy.asarray`` takes; a CPU torch tensor works).

    Returns
    -------
    numpy.ndarray, int64 ``[N, F]``
        ``clip(round(x * scale), qmin, qmax)``; the model then sees ``float32(q) / float32(scale)``.
    """
    scale, bits, signed = _grid_of(ir_or_model)
    return quantize_array(np.asarray(x), scale, bits, signed)
