"""Reference evaluator: what the hardware computes, in vectorized numpy (no torch).

Everything downstream (export's expected outputs for IR bundles, the simulation checks, the
freezer's self-check) trusts this module, so it follows DESIGN.md's semantics contract
literally: strict ``>`` thermometer bits flattened feature-major, LUT address slot 0 = LSB,
GroupSum permutation then zero padding then contiguous groups, argmax lowest index wins.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.ir.core import IRError, grid_range, num_input_bits


def decode_table(hex_text: str, row_len: int) -> np.ndarray:
    """Truth table of one LUT: uint8 array of length ``2**row_len``; entry a = output at address a."""
    value = int(hex_text, 16)
    size = 1 << row_len
    raw = value.to_bytes(max(1, (size + 7) // 8), "little")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")
    return bits[:size].astype(np.uint8)


def table_hex(bits) -> str:
    """Inverse of :func:`decode_table`: lower-case hex, ⌈2ⁿ/4⌉ digits, bit a = entry a."""
    bits = np.asarray(bits, dtype=np.uint8).ravel()
    size = bits.size
    if size & (size - 1):
        raise IRError(f"a truth table has a power-of-two length, not {size}")
    value = int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")
    digits = max(1, -(-size // 4))
    return format(value, f"0{digits}x")


def layer_tables(layer: dict) -> list[np.ndarray]:
    """Decoded truth tables of one IR layer (one uint8 array per LUT)."""
    return [decode_table(t, len(row)) for t, row in zip(layer["tables"], layer["mapping"])]


class _CompiledLayer:
    """A layer as dense arrays: padded mapping, per-slot shift weights and a flat table."""

    def __init__(self, layer: dict):
        n = int(layer["n"])
        rows = layer["mapping"]
        N = len(rows)
        self.N = N
        self.n = n
        self.map = np.zeros((N, n), dtype=np.int64)
        self.valid = np.zeros((N, n), dtype=bool)
        for j, row in enumerate(rows):
            self.map[j, : len(row)] = row
            self.valid[j, : len(row)] = True
        tables = np.zeros((N, 1 << n), dtype=np.uint8)
        for j, (t, row) in enumerate(zip(layer["tables"], rows)):
            tables[j, : 1 << len(row)] = decode_table(t, len(row))
        self.flat = tables.ravel()
        self.offset = (np.arange(N, dtype=np.int32) << n)[None, :]

    def __call__(self, bits: np.ndarray) -> np.ndarray:
        # n <= 6, so an address fits in a byte: uint8 keeps the gathers cache-friendly.
        addr = np.zeros((bits.shape[0], self.N), dtype=np.uint8)
        for slot in range(self.n):
            col = np.take(bits, self.map[:, slot], axis=1)
            if not self.valid[:, slot].all():
                col &= self.valid[:, slot].astype(np.uint8)
            addr |= col << np.uint8(slot)
        return np.take(self.flat, addr + self.offset)


def compile_ir(ir: dict) -> list[_CompiledLayer]:
    return [_CompiledLayer(layer) for layer in ir["layers"]]


def encode(ir: dict, q) -> np.ndarray:
    """Thermometer bits (uint8 [N, F*T], feature-major) of grid integers ``q`` (int [N, F])."""
    enc = ir["encoder"]
    if enc["kind"] != "thermometer":
        raise IRError("encode() needs a thermometer encoder; this IR has encoder.kind 'none'")
    q = np.asarray(q)
    F = int(enc["features"])
    if q.ndim != 2 or q.shape[1] != F:
        raise IRError(f"inputs must have shape [N, {F}], not {list(q.shape)}")
    if not np.issubdtype(q.dtype, np.integer):
        raise IRError(f"inputs must be grid integers, not {q.dtype} (use dwn_hw.ir.quantize)")
    qmin, qmax = grid_range(enc)
    if q.size and (q.min() < qmin or q.max() > qmax):
        raise IRError(f"inputs must lie on the grid [{qmin}, {qmax}], found [{q.min()}, {q.max()}]")
    th = np.asarray(enc["thresholds"], dtype=np.int64)
    return (q.astype(np.int64)[:, :, None] > th[None, :, :]).reshape(q.shape[0], -1).astype(np.uint8)


def _groupsum(ir: dict, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gs = ir["groupsum"]
    k = int(gs["k"])
    if gs.get("permutation") is not None:
        h = h[:, np.asarray(gs["permutation"], dtype=np.int64)]
    N = h.shape[1]
    g = -(-N // k)
    if g * k != N:
        h = np.concatenate([h, np.zeros((h.shape[0], g * k - N), dtype=h.dtype)], axis=1)
    scores = h.reshape(h.shape[0], k, g).sum(axis=2, dtype=np.int64)
    return scores, scores.argmax(axis=1).astype(np.int64)


def evaluate_bits(ir: dict, bits, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Scores (int64 [N, K]) and classes (int64 [N]) from thermometer bits (0/1 [N, bits])."""
    bits = np.asarray(bits)
    want = num_input_bits(ir)
    if bits.ndim != 2 or bits.shape[1] != want:
        raise IRError(f"bit inputs must have shape [N, {want}], not {list(bits.shape)}")
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise IRError("bit inputs must be 0 or 1")
    return _run(ir, compile_ir(ir), bits, chunk)


def _run(ir, layers, bits, chunk):
    scores, classes = [], []
    for start in range(0, max(1, bits.shape[0]), chunk):
        h = bits[start : start + chunk].astype(np.uint8)
        for layer in layers:
            h = layer(h)
        s, c = _groupsum(ir, h)
        scores.append(s)
        classes.append(c)
    return np.concatenate(scores), np.concatenate(classes)


def evaluate(ir: dict, q, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Scores (int64 [N, K]) and classes (int64 [N]) of grid inputs ``q`` (int [N, F]).

    For an IR whose encoder kind is ``"none"``, ``q`` are the thermometer bits themselves.
    """
    if ir["encoder"]["kind"] == "none":
        return evaluate_bits(ir, q, chunk)
    q = np.asarray(q)
    layers = compile_ir(ir)
    out_s, out_c = [], []
    for start in range(0, max(1, q.shape[0]), chunk):
        s, c = _run(ir, layers, encode(ir, q[start : start + chunk]), chunk)
        out_s.append(s)
        out_c.append(c)
    return np.concatenate(out_s), np.concatenate(out_c)
