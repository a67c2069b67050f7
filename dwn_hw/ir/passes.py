"""The generator's IR passes, on one LUT, one layer or the encoder (numpy only; never torch).

Each pass keeps what a LUT computes for every input:

- :func:`encoder_constants`: thermometer bits no grid input can change (threshold ``qmin - 1`` is always 1,
  ``qmax`` always 0);
- :func:`reduce_lut`: fold constant inputs into a table, read an input read twice once, drop the inputs a
  table does not depend on;
- :func:`reduce_layer`: :func:`reduce_lut` over a layer (hex tables in, integer tables out);
- :func:`constant_outputs`: the LUTs of a layer that are constants (an empty row), as constants for the next;
- :func:`live_sources`: backward liveness, what a stage's live LUTs read.

:func:`dwn_hw.ir.simplify` (IR -> IR) and :func:`dwn_hw.hdl.plan.plan` (IR -> what is built) are both made of
these. The verifier in :mod:`dwn_hw.check` keeps its own fold rules on purpose: it must not call the generator.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.ir.evaluate import decode_table
from dwn_hw.ir.grid import grid_range


def restrict(table: np.ndarray, slot: int, value) -> np.ndarray:
    """The table with address bit ``slot`` fixed to ``value`` (0, 1, or per-address array), slot removed."""
    t3 = table.reshape(-1, 2, 1 << slot)
    if np.isscalar(value):
        return t3[:, int(value), :].ravel()
    return t3[:, value, np.arange(1 << slot)].ravel()


def independent(table: np.ndarray, slot: int) -> bool:
    """Whether the table reads the same at every address pair that differs only in bit ``slot``."""
    t3 = table.reshape(-1, 2, 1 << slot)
    return bool(np.array_equal(t3[:, 0, :], t3[:, 1, :]))


def reduce_lut(row: list[int], table: np.ndarray, const: dict[int, int], *,
               merge_repeated: bool = True) -> tuple[list[int], np.ndarray, dict]:
    """One LUT: fold constant inputs, merge repeated inputs (when ``merge_repeated``), drop inputs the table ignores.

    Returns ``(row, table, counts)``; ``counts`` has ``constant_inputs``, ``repeated_inputs``, ``ignored_inputs``.
    The result does not depend on the order the slots are visited in: it is the table's essential inputs.
    """
    counts = {"constant_inputs": 0, "repeated_inputs": 0, "ignored_inputs": 0}
    row = list(row)
    changed = True
    while changed:
        changed = False
        for slot in range(len(row) - 1, -1, -1):
            src = row[slot]
            if src in const:
                table = restrict(table, slot, const[src])
                kind = "constant_inputs"
            elif merge_repeated and src in row[:slot]:
                # keep only addresses where this slot equals the first slot reading the same source
                first = row.index(src)
                value = (np.arange(1 << slot) >> first) & 1
                table = restrict(table, slot, value)
                kind = "repeated_inputs"
            elif independent(table, slot):
                table = restrict(table, slot, 0)
                kind = "ignored_inputs"
            else:
                continue
            del row[slot]
            counts[kind] += 1
            changed = True
    return row, table, counts


def table_int(table: np.ndarray) -> int:
    """A decoded truth table as one integer (bit a = entry a)."""
    return int.from_bytes(np.packbits(np.asarray(table, dtype=np.uint8), bitorder="little").tobytes(), "little")


def reduce_layer(rows, tables, const: dict | None = None, *, merge_repeated: bool = False):
    """:func:`reduce_lut` over one layer: ``(rows, tables as int)`` from rows and hex tables.

    ``const`` (index -> 0/1) are the inputs known to be constant. Why the hardware needs it: a LUT written as
    logic (``mux`` style) would leave an input its table ignores unconnected, and a device primitive fed a
    constant select (an ECP5 ``PFUMX``) is folded away by yosys, leaving an ``L6MUX21`` nextpnr cannot pack.
    """
    const = const or {}
    out_rows, out_tabs = [], []
    for row, hex_text in zip(rows, tables):
        r, t, _ = reduce_lut(row, decode_table(hex_text, len(row)), const, merge_repeated=merge_repeated)
        out_rows.append(r)
        out_tabs.append(table_int(t))
    return out_rows, out_tabs


def encoder_constants(ir: dict) -> dict[int, int]:
    """Thermometer bits whose value no grid input can change: index -> constant value ({} without an encoder)."""
    enc = ir["encoder"]
    if enc["kind"] != "thermometer":
        return {}
    qmin, qmax = grid_range(enc)
    T = int(enc["bits_per_feature"])
    out = {}
    for f, row in enumerate(enc["thresholds"]):
        for t, th in enumerate(row):
            if th <= qmin - 1:
                out[f * T + t] = 1
            elif th >= qmax:
                out[f * T + t] = 0
    return out


def constant_outputs(rows, tables) -> dict[int, int]:
    """The LUTs of a layer with no input (constants): index -> value. ``tables`` as int or numpy arrays."""
    return {j: int(t & 1) if isinstance(t, int) else int(t[0]) for j, (r, t) in enumerate(zip(rows, tables)) if not r}


def live_sources(rows, live) -> list[int]:
    """The sorted indices of the previous stage that the LUTs ``live`` of a layer with ``rows`` read."""
    return sorted({s for j in live for s in rows[j]})
