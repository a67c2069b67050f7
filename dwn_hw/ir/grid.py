"""Float thresholds onto the integer input grid, and raw data onto the grid (numpy only).

The hardware reads integers ``q``; the model sees ``x(q) = float32(q) / float32(scale)``
(docs/design.md, "Inputs on an integer grid"). A float threshold θ becomes the largest grid value
``q`` with ``x(q) <= θ``, found by searching the grid with exactly that float32 arithmetic.
``floor(θ·scale)`` is not used because it disagrees with the model for many scales (1/3, 0.1, ...)
where ``θ·scale`` lands a hair away from an integer.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.errors import DwnHwError, show


def grid_bounds(input_bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax) of a ``input_bits``-wide grid, two's complement when ``signed``.

    The one place the generator computes the grid's range (the independent checks in ``dwn_hw.check`` and
    the standalone bench in ``sim/`` keep their own copy on purpose).
    """
    bits = int(input_bits)
    if not 1 <= bits <= 32:
        raise DwnHwError(f"input bits must be in 1..32, not {show(input_bits)}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def grid_range(encoder: dict) -> tuple[int, int]:
    """(qmin, qmax): the integers the hardware reads for one feature of an IR ``encoder`` (or a bundle)."""
    return grid_bounds(encoder["input_bits"], bool(encoder["signed"]))


def scale_vector(scale, features: int) -> np.ndarray:
    """The scale as float32 ``[features]`` (a single number is broadcast)."""
    s = np.asarray(scale, dtype=np.float32)
    if s.ndim == 0:
        s = np.full(features, s, dtype=np.float32)
    if s.shape != (features,):
        raise DwnHwError(f"scale must be one number or one per feature ({features}), not shape {list(s.shape)}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise DwnHwError(f"scale must be finite and positive, not {s[~(np.isfinite(s) & (s > 0))][:3].tolist()}")
    return s


def grid_x(q, scale) -> np.ndarray:
    """What the model sees for grid integers: ``float32(q) / float32(scale)`` (float32)."""
    return np.asarray(q).astype(np.float32) / np.asarray(scale, dtype=np.float32)


def grid_thresholds(theta, scale, input_bits: int, signed: bool) -> np.ndarray:
    """Integer thresholds equivalent to float thresholds on the grid.

    Parameters
    ----------
    theta : array_like, float ``[F, T]`` (or ``[1, T]``, broadcast to every feature of ``scale``)
        The model's thresholds; bit (f, t) is ``x_f > theta[f, t]``. Compared as float32, as the model does.
    scale : float or array_like ``[F]``
        The grid scale.
    input_bits, signed : int, bool
        The grid: integers in ``[qmin, qmax]``.

    Returns
    -------
    numpy.ndarray, int64 ``[F, T]``
        ``t[f, j]`` = the largest ``q`` in ``[qmin, qmax]`` with ``x_f(q) <= theta[f, j]``, ``qmin - 1`` when there
        is none (the bit is always 1) and ``qmax`` when every grid value is below (always 0). Hence
        ``q > t[f, j]`` equals ``x_f(q) > theta[f, j]`` for every grid value ``q``.
    """
    th = np.asarray(theta, dtype=np.float32)
    if th.ndim != 2:
        raise DwnHwError(f"thresholds must be a 2-D array [features, bits], not shape {list(th.shape)}")
    if np.isnan(th).any():
        f, t = np.argwhere(np.isnan(th))[0]
        raise DwnHwError(f"threshold [{f}][{t}] is NaN; a NaN threshold has no grid equivalent")
    s_arr = np.asarray(scale, dtype=np.float32)
    F = s_arr.shape[0] if s_arr.ndim == 1 else th.shape[0]
    if th.shape[0] == 1 and F != 1:
        th = np.broadcast_to(th, (F, th.shape[1]))
    F = th.shape[0]
    s = scale_vector(scale, F)[:, None]
    qmin, qmax = grid_bounds(input_bits, signed)

    # x(q) is nondecreasing in q (int->float32 rounding and division by a positive float32 are
    # both monotone), so "x(q) <= theta" holds on a prefix of the grid: bisect for its end.
    # Invariant: x(lo) <= theta (lo = qmin - 1 stands for -inf), x(hi) > theta (hi = qmax + 1 for +inf).
    lo = np.full(th.shape, qmin - 1, dtype=np.int64)
    hi = np.full(th.shape, qmax + 1, dtype=np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = (lo + hi) // 2
        ok = grid_x(mid, s) <= th
        lo = np.where(open_ & ok, mid, lo)
        hi = np.where(open_ & ~ok, mid, hi)
    return np.minimum(lo, qmax)


def quantize_array(x, scale, input_bits: int, signed: bool) -> np.ndarray:
    """Raw values onto the grid: ``clip(round(x * scale), qmin, qmax)`` as int64 (round half to even)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise DwnHwError(f"inputs must be a 2-D array [samples, features], not shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise DwnHwError("inputs hold NaN or infinite values; they have no place on the grid")
    s = scale_vector(scale, x.shape[1]).astype(np.float64)
    qmin, qmax = grid_bounds(input_bits, signed)
    return np.clip(np.rint(x * s), qmin, qmax).astype(np.int64)


def threshold_collapse(theta, grid_th, scale, input_bits: int, signed: bool) -> dict | None:
    """What the grid loses of a thermometer: None when nothing, else the numbers of a collapse.

    A feature collapses when two of its *distinct* float thresholds land on one grid value (the hardware cannot
    tell apart inputs the float model could), or when every threshold of it sits at the grid's edge
    (``qmin - 1`` or ``qmax``) while some lies outside the grid's range (its bits are constant in hardware).
    Identical float thresholds (a constant border pixel) are not a collapse.

    Parameters
    ----------
    theta : float ``[F, T]``
        The float thresholds (``[1, T]`` is broadcast).
    grid_th : int ``[F, T]``
        :func:`grid_thresholds` of them.
    scale, input_bits, signed
        The grid.

    Returns
    -------
    dict or None
        ``features`` (collapsed features), ``of_features``, ``thresholds`` (distinct float thresholds that share
        a grid value with another of their feature), ``of_thresholds`` (distinct float thresholds in all),
        ``edge_features`` (features whose every threshold is off the grid), ``example`` (``feature``,
        ``float``, ``grid`` of the worst feature) and ``grid`` (a description).
    """
    g = np.asarray(grid_th, dtype=np.int64)
    th = np.broadcast_to(np.asarray(theta, dtype=np.float32), g.shape)
    F = g.shape[0]
    s = scale_vector(scale, F)[:, None]
    qmin, qmax = grid_bounds(input_bits, signed)
    order = np.argsort(th, axis=1, kind="stable")
    ts, gs = np.take_along_axis(th, order, 1), np.take_along_axis(g, order, 1)
    distinct = np.diff(ts, axis=1) > 0
    merged = (distinct & (np.diff(gs, axis=1) == 0)).sum(axis=1)        # per feature
    off = (th < grid_x(qmin, s)) | (th > grid_x(qmax, s))
    edge = ((g == qmin - 1) | (g == qmax)).all(axis=1) & off.any(axis=1)
    bad = (merged > 0) | edge
    if not bad.any():
        return None
    worst = int(np.argmax(merged)) if merged.any() else int(np.argmax(edge))
    sv = np.asarray(scale, dtype=np.float32)
    scale_text = f"{float(sv):g}" if sv.ndim == 0 else f"per feature, {float(sv.min()):g}..{float(sv.max()):g}"
    return {"features": int(bad.sum()), "of_features": int(F), "thresholds": int(merged.sum()),
            "of_thresholds": int((distinct.sum(axis=1) + 1).sum()), "edge_features": int(edge.sum()),
            "float_span": [float(th.min()), float(th.max())],
            "example": {"feature": worst, "float": [float(v) for v in th[worst]],
                        "grid": [int(v) for v in g[worst]]},
            "grid": f"{int(input_bits)}-bit {'signed' if signed else 'unsigned'} grid {qmin}..{qmax} "
                    f"(scale {scale_text})"}


def collapse_text(report: dict) -> str:
    """One sentence with the numbers of a :func:`threshold_collapse` report (no fix: callers know theirs)."""
    ex = report["example"]
    parts = [f"thresholds collapse on the {report['grid']}: {report['features']} of {report['of_features']} "
             f"features lose thresholds"]
    if report["thresholds"]:
        parts.append(f"{report['thresholds']} of {report['of_thresholds']} distinct float thresholds land on a "
                     "grid value another threshold of their feature already has")
    if report["edge_features"]:
        parts.append(f"{report['edge_features']} features have every threshold off the grid (constant bits)")
    floats = ", ".join(f"{v:.4g}" for v in ex["float"][:8]) + (", ..." if len(ex["float"]) > 8 else "")
    grids = ", ".join(str(v) for v in ex["grid"][:8]) + (", ..." if len(ex["grid"]) > 8 else "")
    parts.append(f"e.g. feature {ex['feature']}: float [{floats}] -> grid [{grids}]")
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# thresholds that read only the top bits of the input
# ----------------------------------------------------------------------------------------------

def threshold_read_bits(grid_th, input_bits: int, signed: bool) -> np.ndarray:
    """How many top bits of a ``B``-bit input the comparison ``q > t`` reads, per threshold (int64, shape of ``t``).

    ``q > t`` is ``q >= t + 1``; with ``t + 1 = m · 2^z`` (``z`` trailing zero bits, at most ``B``) it equals
    ``(q >> z) >= m`` in two's complement too, so it reads the top ``B − z`` bits. A constant comparison
    (``t = qmin − 1``: always 1, ``t = qmax``: always 0) reads 0 bits.
    """
    t = np.asarray(grid_th, dtype=np.int64)
    B = int(input_bits)
    qmin, qmax = grid_bounds(B, signed)
    v = (t + 1) & ((1 << B) - 1)           # t + 1 as a B-bit pattern (qmin in two's complement is 1 << (B-1))
    z = np.zeros(t.shape, dtype=np.int64)
    for bit in range(B):
        z += ((v & ((1 << (bit + 1)) - 1)) == 0)
    read = B - np.minimum(z, B - 1)           # t + 1 = 0 (signed q >= 0) reads the sign bit
    return np.where((t <= qmin - 1) | (t >= qmax), 0, read)


def snap_thresholds(grid_th, input_bits: int, signed: bool, k: int) -> np.ndarray:
    """Move each non-constant threshold to the nearest ``t`` whose comparison reads only the top ``k`` bits.

    ``t + 1`` becomes a multiple of ``s = 2^(B − k)`` strictly inside the grid (never a constant bit; constant
    thresholds stay where they are). Within a feature, thresholds that were distinct stay distinct and in
    order when the grid has room: a collision is resolved by nudging to the next free multiple, first upwards,
    then downwards; only a feature with more distinct thresholds than the ``2^k − 1`` levels keeps duplicates.
    Thresholds that were equal stay equal (they cost one comparator). ``k >= B`` returns the thresholds as they are.

    Returns int64, the shape of ``grid_th``; :func:`threshold_read_bits` of the result is at most ``k``.
    """
    t = np.array(grid_th, dtype=np.int64, copy=True)
    B, k = int(input_bits), int(k)
    if not 1 <= k:
        raise DwnHwError(f"threshold bits must be at least 1, not {show(k)}")
    if k >= B:
        return t
    if t.ndim != 2:
        raise DwnHwError(f"thresholds must be a 2-D array [features, bits], not shape {list(t.shape)}")
    s = 1 << (B - k)
    qmin, qmax = grid_bounds(B, signed)
    lo_m, hi_m = qmin // s + 1, (qmax + 1) // s - 1   # multiples m with t = m·s − 1 a real comparison
    for f in range(t.shape[0]):
        row = t[f]
        live = (row > qmin - 1) & (row < qmax)
        if not live.any():
            continue
        values = np.unique(row[live])                 # sorted distinct values
        want = np.clip(np.rint((values + 1) / s).astype(np.int64), lo_m, hi_m)
        if len(values) <= hi_m - lo_m + 1:
            m = want.copy()
            for i in range(1, len(m)):                # upwards: strictly increasing
                m[i] = max(m[i], m[i - 1] + 1)
            if m[-1] > hi_m:                          # then down from the top
                m[-1] = hi_m
                for i in range(len(m) - 2, -1, -1):
                    m[i] = min(m[i], m[i + 1] - 1)
        else:
            m = want                                  # more thresholds than levels: some share one
        new = dict(zip(values.tolist(), (m * s - 1).tolist()))
        t[f] = np.array([new.get(int(v), int(v)) for v in row], dtype=np.int64)
    return t


def threshold_bits_report(encoder: dict, k: int | None = None) -> dict:
    """How many top input bits the used, non-constant comparisons of an IR ``encoder`` read.

    Returns ``max_read_bits``, ``histogram`` (read bits -> number of thresholds) and, when ``k`` is given,
    ``violations`` (used thresholds reading more than ``k`` bits) and ``first`` (feature, bit, threshold of one).
    """
    if encoder.get("kind") != "thermometer":
        return {"max_read_bits": 0, "histogram": {}, **({"violations": 0} if k is not None else {})}
    t = np.asarray(encoder["thresholds"], dtype=np.int64)
    used = np.asarray(encoder.get("used") or np.ones(t.shape, bool), dtype=bool).reshape(t.shape)
    read = threshold_read_bits(t, int(encoder["input_bits"]), bool(encoder["signed"]))
    r = read[used & (read > 0)]
    hist = {int(b): int(c) for b, c in zip(*np.unique(r, return_counts=True))}
    rep = {"max_read_bits": int(r.max()) if r.size else 0, "histogram": hist}
    if k is not None:
        bad = np.argwhere(used & (read > int(k)))
        rep["violations"] = int(len(bad))
        if len(bad):
            f, j = (int(v) for v in bad[0])
            rep["first"] = {"feature": f, "bit": j, "threshold": int(t[f, j]), "reads": int(read[f, j])}
    return rep
