"""The integer input grid: what the hardware reads and how the model sees it.

Hardware reads integers ``q_f``; the model sees ``x_f = float32(q_f) / float32(scale_f)``
(docs/design.md, "Inputs on an integer grid"). A data set either declares its grid (digits: 0..16,
MNIST: 0..255, integer CSV columns) or raw values are put on one with :meth:`Grid.fit`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dwn_hw.errors import DwnHwError, show


@dataclass(frozen=True)
class Grid:
    """An integer input grid.

    Parameters
    ----------
    scale : float or numpy.ndarray
        One float32 scale for all features, or one per feature (float32 ``[F]``).
    input_bits : int
        Width of one feature on the hardware port.
    signed : bool
        Two's complement inputs (the training data had negatives).
    """

    scale: float | np.ndarray
    input_bits: int
    signed: bool

    def __post_init__(self):
        if not 1 <= int(self.input_bits) <= 32:
            raise DwnHwError(f"input bits must be in 1..32, not {show(self.input_bits)}")
        s = np.asarray(self.scale, dtype=np.float32)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise DwnHwError(f"grid scale must be finite and positive, not {show(self.scale)}")

    @property
    def qmin(self) -> int:
        return -(1 << (self.input_bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.input_bits - 1)) - 1 if self.signed else (1 << self.input_bits) - 1

    def scale_array(self) -> np.ndarray:
        """The scale as float32 (a 0-d array when scalar, ``[F]`` when per feature)."""
        return np.asarray(self.scale, dtype=np.float32)

    def to_x(self, q: np.ndarray) -> np.ndarray:
        """Grid integers to what the model sees: ``float32(q) / float32(scale)``."""
        return np.asarray(q).astype(np.float32) / self.scale_array()

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Raw values onto the grid: ``clip(round(x * scale), qmin, qmax)`` as int64."""
        q = np.rint(np.asarray(x, dtype=np.float64) * self.scale_array().astype(np.float64))
        return np.clip(q, self.qmin, self.qmax).astype(np.int64)

    def check(self, q: np.ndarray, what: str = "inputs") -> None:
        """Refuse grid integers outside ``qmin..qmax``."""
        if q.size and (q.min() < self.qmin or q.max() > self.qmax):
            raise DwnHwError(f"{what} span {q.min()}..{q.max()}, outside the "
                             f"{self.input_bits}-bit grid {self.qmin}..{self.qmax}")

    def to_meta(self) -> dict:
        """The grid as checkpoint metadata (plain Python values)."""
        s = self.scale_array()
        scale = float(s) if s.ndim == 0 else [float(v) for v in s]
        return {"scale": scale, "input_bits": int(self.input_bits), "signed": bool(self.signed),
                "qmin": self.qmin, "qmax": self.qmax}

    @classmethod
    def from_meta(cls, meta: dict) -> "Grid":
        try:
            scale = meta["scale"]
            scale = np.asarray(scale, dtype=np.float32) if isinstance(scale, list) else float(scale)
            return cls(scale, int(meta["input_bits"]), bool(meta["signed"]))
        except (KeyError, TypeError) as exc:
            raise DwnHwError(f"malformed input grid in checkpoint: {meta!r}") from exc

    @classmethod
    def integers(cls, q_train: np.ndarray) -> "Grid":
        """The grid of integer-valued data: scale 1, just wide enough for the training range."""
        lo = int(min(q_train.min(), 0)) if q_train.size else 0
        hi = int(max(q_train.max(), 0)) if q_train.size else 0
        signed = lo < 0
        bits = 1
        while True:
            g = cls(1.0, bits, signed)
            if g.qmin <= lo and hi <= g.qmax:
                return g
            bits += 1
            if bits > 32:
                raise DwnHwError(f"integer inputs span {lo}..{hi}, wider than 32 bits")

    @classmethod
    def fit(cls, x_train: np.ndarray, input_bits: int) -> "Grid":
        """Per-feature scales that map each feature's largest magnitude to the top of the grid.

        Signed when the training data has negatives; a feature that is always 0 gets scale 1.
        """
        x_train = np.asarray(x_train, dtype=np.float64)
        signed = bool(x_train.size and x_train.min() < 0)
        probe = cls(1.0, input_bits, signed)
        top = probe.qmax
        if top < 1:
            raise DwnHwError(f"--input-bits {input_bits} leaves no positive grid value; use at least 2 "
                             "for signed data")
        mag = np.abs(x_train).max(axis=0) if x_train.size else np.zeros(x_train.shape[1])
        scale = np.where(mag > 0, top / np.where(mag > 0, mag, 1.0), 1.0).astype(np.float32)
        return cls(scale, input_bits, signed)
