"""Random valid IRs: the raw material of the hardware test campaign."""
from __future__ import annotations

import numpy as np

from dwn_hw.ir.core import validate
from dwn_hw.ir.grid import grid_bounds
from dwn_hw.ir.evaluate import table_hex


def random_ir(seed: int = 0, *, features: int = 8, bits_per_feature: int = 4, input_bits: int = 4,
              signed: bool = False, layers=((32, 6), (20, 4)), k: int = 4, permute: bool = False,
              mixed_n: bool = False, encoder: bool = True, scale: float = 1.0) -> dict:
    """A valid IR with random thresholds, mappings and tables.

    Parameters
    ----------
    seed : int
        Seed of numpy's default generator; the same arguments give the same IR.
    layers : sequence of (N, n)
        LUT count and fan-in of each layer.
    mixed_n : bool
        Give each LUT a random fan-in in 0..n (as after simplification); a row of length 0 is a constant.
    encoder : bool
        With ``False`` the IR has ``encoder.kind == "none"`` and ``features * bits_per_feature`` raw bit inputs.
    """
    rng = np.random.default_rng(seed)
    enc: dict = {"kind": "thermometer" if encoder else "none"}
    if encoder:
        qmin, qmax = grid_bounds(input_bits, signed)
        values = np.arange(qmin - 1, qmax + 1)
        T = min(bits_per_feature, values.size)
        th = [sorted(rng.choice(values, size=T, replace=False).tolist()) for _ in range(features)]
        enc.update(features=features, bits_per_feature=T, thresholds=th, scale=scale,
                   input_bits=input_bits, signed=signed)
        prev = features * T
    else:
        prev = features * bits_per_feature
        enc.update(features=prev, bits_per_feature=1, scale=1.0, input_bits=1, signed=False)
    ir_layers = []
    for N, n in layers:
        mapping, tables = [], []
        for _ in range(N):
            m = int(rng.integers(0, n + 1)) if mixed_n else n
            row = rng.choice(prev, size=m, replace=prev < m).tolist()
            mapping.append([int(v) for v in row])
            tables.append(table_hex(rng.integers(0, 2, size=1 << m)))
        ir_layers.append({"n": int(n), "mapping": mapping, "tables": tables})
        prev = N
    perm = rng.permutation(prev).tolist() if permute else None
    ir = {"format": "dwn-hw-ir", "version": 1, "encoder": enc, "layers": ir_layers,
          "groupsum": {"k": int(k), "permutation": perm, "tau": 1.0},
          "meta": {"source": f"random_ir(seed={seed})"}}
    if encoder:
        ir["encoder"]["used"] = used_bits(ir)
    return validate(ir)


def used_bits(ir: dict) -> list[list[bool]]:
    """``encoder.used``: which thermometer bits some first-layer LUT reads."""
    enc = ir["encoder"]
    F, T = int(enc["features"]), int(enc["bits_per_feature"])
    if enc["kind"] == "none":
        F, T = 1, int(enc["features"])
    read = np.zeros(F * T, dtype=bool)
    for row in ir["layers"][0]["mapping"]:
        read[list(row)] = True
    return read.reshape(F, T).tolist()
