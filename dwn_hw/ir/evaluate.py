"""Reference evaluator: what the hardware computes, in vectorized numpy (no torch).

Everything downstream (export's expected outputs for IR bundles, the simulation checks, the
freezer's self-check) trusts this module, so it follows docs/design.md's semantics contract
literally: strict ``>`` thermometer bits flattened feature-major, LUT address slot 0 = LSB,
GroupSum permutation then zero padding then contiguous groups, argmax lowest index wins.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.ir.core import IRError, num_input_bits
from dwn_hw.ir.grid import grid_range


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
    """A layer as dense arrays: padded mapping, validity of each slot and a flat table.

    Works on activations laid out ``[inputs, batch]`` (one row per signal): gathering a LUT slot's
    source is then a copy of whole contiguous rows, several times faster than gathering columns.
    """

    def __init__(self, layer: dict):
        n = int(layer["n"])
        rows = layer["mapping"]
        N = len(rows)
        self.N = N
        self.n = n
        self.map = np.zeros((N, n), dtype=np.intp)
        self.valid = np.zeros((N, n), dtype=bool)
        for j, row in enumerate(rows):
            self.map[j, : len(row)] = row
            self.valid[j, : len(row)] = True
        self.all_valid = self.valid.all(axis=0)
        tables = np.zeros((N, 1 << n), dtype=np.uint8)
        for j, (t, row) in enumerate(zip(layer["tables"], rows)):
            tables[j, : 1 << len(row)] = decode_table(t, len(row))
        self.flat = tables.ravel()
        self.offset = (np.arange(N, dtype=np.int32) << n)[:, None]

    def __call__(self, h: np.ndarray) -> np.ndarray:
        """Outputs ``[N, batch]`` (uint8 0/1) of inputs ``h`` ``[inputs, batch]`` (uint8 0/1)."""
        # n <= 6, so an address fits in a byte
        addr = np.zeros((self.N, h.shape[1]), dtype=np.uint8)
        col = np.empty_like(addr)
        for slot in range(self.n):
            np.take(h, self.map[:, slot], axis=0, out=col)
            if not self.all_valid[slot]:
                col &= self.valid[:, slot, None]
            if slot:
                col <<= np.uint8(slot)
            addr |= col
        index = addr.astype(np.int32)
        index += self.offset
        return np.take(self.flat, index)


def compile_ir(ir: dict) -> list[_CompiledLayer]:
    return [_CompiledLayer(layer) for layer in ir["layers"]]


def _compare_dtype(enc: dict):
    """The narrowest integer type holding every grid value and threshold (halves memory traffic)."""
    bits = int(enc["input_bits"])
    if bits <= 15:
        return np.int16
    if bits <= 31:
        return np.int32
    return np.int64


def _check_grid_inputs(ir: dict, q) -> np.ndarray:
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
    return q


def encode(ir: dict, q) -> np.ndarray:
    """Thermometer bits (uint8 [N, F*T], feature-major) of grid integers ``q`` (int [N, F])."""
    q = _check_grid_inputs(ir, q)
    th = np.asarray(ir["encoder"]["thresholds"], dtype=np.int64)
    return (q.astype(np.int64)[:, :, None] > th[None, :, :]).reshape(q.shape[0], -1).astype(np.uint8)


def _encode_t(ir: dict, q: np.ndarray, th: np.ndarray) -> np.ndarray:
    """Thermometer bits laid out ``[F*T, batch]`` (uint8) of grid integers ``q`` ``[batch, F]``."""
    qt = np.ascontiguousarray(q.T).astype(th.dtype)
    bits = qt[:, None, :] > th[:, :, None]
    return bits.view(np.uint8).reshape(-1, q.shape[0])


def _groupsum(ir: dict, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and classes of the last layer's outputs ``h`` laid out ``[outputs, batch]``."""
    gs = ir["groupsum"]
    k = int(gs["k"])
    if gs.get("permutation") is not None:
        h = h[np.asarray(gs["permutation"], dtype=np.intp)]
    N = h.shape[0]
    g = -(-N // k)
    if g * k != N:
        h = np.concatenate([h, np.zeros((g * k - N, h.shape[1]), dtype=h.dtype)], axis=0)
    scores = h.reshape(k, g, h.shape[1]).sum(axis=1, dtype=np.int64).T
    return np.ascontiguousarray(scores), scores.argmax(axis=1).astype(np.int64)


def _run(ir: dict, layers, chunks) -> tuple[np.ndarray, np.ndarray]:
    """Scores and classes over an iterable of bit chunks laid out ``[bits, batch]``."""
    scores, classes = [], []
    for h in chunks:
        for layer in layers:
            h = layer(h)
        s, c = _groupsum(ir, h)
        scores.append(s)
        classes.append(c)
    return np.concatenate(scores), np.concatenate(classes)


def _starts(n: int, chunk: int):
    return range(0, max(1, n), max(1, int(chunk)))


def evaluate_bits(ir: dict, bits, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Scores (int64 [N, K]) and classes (int64 [N]) from thermometer bits (0/1 [N, bits])."""
    bits = np.asarray(bits)
    want = num_input_bits(ir)
    if bits.ndim != 2 or bits.shape[1] != want:
        raise IRError(f"bit inputs must have shape [N, {want}], not {list(bits.shape)}")
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise IRError("bit inputs must be 0 or 1")
    chunks = (np.ascontiguousarray(bits[s : s + chunk].T).astype(np.uint8) for s in _starts(len(bits), chunk))
    return _run(ir, compile_ir(ir), chunks)


def evaluate(ir: dict, q, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Scores (int64 [N, K]) and classes (int64 [N]) of grid inputs ``q`` (int [N, F]).

    For an IR whose encoder kind is ``"none"``, ``q`` are the thermometer bits themselves.
    """
    if ir["encoder"]["kind"] == "none":
        return evaluate_bits(ir, q, chunk)
    q = _check_grid_inputs(ir, q)
    th = np.asarray(ir["encoder"]["thresholds"], dtype=np.int64).astype(_compare_dtype(ir["encoder"]))
    chunks = (_encode_t(ir, q[s : s + chunk], th) for s in _starts(len(q), chunk))
    return _run(ir, compile_ir(ir), chunks)
