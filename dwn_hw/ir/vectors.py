"""The one test-vector recipe for an IR without a recorded test set (numpy only; never torch).

The freezer checks an IR against PyTorch with these vectors and the export bundle carries them, so an IR
and the checkpoint it came from get the same vectors.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.ir.grid import grid_range


def edge_inputs(ir: dict, count: int = 256, seed: int = 0) -> np.ndarray:
    """Grid inputs that reach every comparator's edge, then random ones.

    Thermometer encoder (int64 ``[3 + 3*T + 2*count, F]``): every feature at qmin, at qmax,
    at 0 (clipped to the grid); for each threshold slot t every feature at its threshold t - 1, t and t + 1 (clipped); then
    ``count`` random rows near the thresholds and ``count`` uniform rows. No encoder (uint8
    ``[2 + count, bits]``): all zeros, all ones, then ``count`` random rows of bits.
    """
    rng = np.random.default_rng(seed)
    enc = ir["encoder"]
    F = int(enc["features"])
    if enc["kind"] == "none":
        rows = [np.zeros(F), np.ones(F)] + list(rng.integers(0, 2, size=(count, F)))
        return np.asarray(rows, dtype=np.uint8)
    qmin, qmax = grid_range(enc)
    th = np.asarray(enc["thresholds"], dtype=np.int64)
    fixed = [np.full(F, qmin), np.full(F, qmax), np.full(F, min(max(0, qmin), qmax))]
    for t in range(th.shape[1]):
        for delta in (-1, 0, 1):   # q = t gives bit 0, q = t + 1 gives bit 1: both sides of every comparator
            fixed.append(np.clip(th[:, t] + delta, qmin, qmax))
    # random values near the thresholds hit the comparators' edges far more often than uniform draws
    pick = th[np.arange(F)[None, :], rng.integers(0, th.shape[1], size=(count, F))]
    near = np.clip(pick + rng.integers(0, 2, size=(count, F)), qmin, qmax)
    uniform = rng.integers(qmin, qmax + 1, size=(count, F))
    return np.vstack(fixed + [near, uniform]).astype(np.int64)
