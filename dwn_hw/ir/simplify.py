"""Function-preserving simplification of an IR (numpy only), made of the passes of :mod:`dwn_hw.ir.passes`.

Passes, repeated until nothing changes:

- constant encoder bits (threshold ``qmin - 1`` is always 1, ``qmax`` always 0) and constant LUTs
  (a row of length 0) are folded into the LUTs that read them;
- a LUT input read twice by the same LUT is read once;
- a LUT input its table does not depend on is dropped (the row and the table shrink);
- LUTs whose output nobody reads are removed (inner layers only).

The interface never moves: feature ``f`` and encoder bit ``(f, t)`` keep their indices (bits nobody
reads are marked ``False`` in ``encoder.used``), and the last layer keeps its LUT count and order (a
constant LUT there stays, with an empty row). Only inner layers are renumbered.
"""
from __future__ import annotations

import copy

import numpy as np

from dwn_hw.ir.core import num_input_bits, validate
from dwn_hw.ir.evaluate import decode_table, table_hex
from dwn_hw.ir.passes import constant_outputs, encoder_constants, live_sources, reduce_lut
from dwn_hw.ir.random import used_bits


def simplify(ir: dict) -> tuple[dict, dict]:
    """Return ``(simplified IR, report)``; the input IR is not modified.

    The simplified IR computes the same scores as the original for every input. ``report`` counts what
    went (``luts_before``, ``luts_after`` per layer, ``constant_inputs``, ``repeated_inputs``,
    ``ignored_inputs``, ``constant_luts_last_layer``, ``encoder_bits_unused``, ``features_unused``) and
    ``report["text"]`` says it in a few lines.
    """
    validate(ir)
    out = copy.deepcopy(ir)
    rows = [[list(r) for r in layer["mapping"]] for layer in out["layers"]]
    tables = [[decode_table(t, len(r)) for t, r in zip(layer["tables"], layer["mapping"])]
              for layer in out["layers"]]
    luts_before = [len(r) for r in rows]
    inputs_before = sum(len(x) for layer in rows for x in layer)
    totals = {"constant_inputs": 0, "repeated_inputs": 0, "ignored_inputs": 0}
    enc_const = encoder_constants(out)
    last = len(rows) - 1

    changed = True
    while changed:
        changed = False
        for i in range(len(rows)):
            if i == 0:
                const = enc_const
            else:
                const = constant_outputs(rows[i - 1], tables[i - 1])
            for j in range(len(rows[i])):
                row, table, counts = reduce_lut(rows[i][j], tables[i][j], const)
                if len(row) != len(rows[i][j]):
                    changed = True
                    rows[i][j], tables[i][j] = row, table
                    for key, v in counts.items():
                        totals[key] += v
        # inner LUTs nobody reads go; the next layer's rows are renumbered
        for i in range(last):
            read = live_sources(rows[i + 1], range(len(rows[i + 1])))
            if len(read) == len(rows[i]):
                continue
            keep = read or [0]  # a layer is never empty; an unread LUT 0 stays when nothing is read
            if len(keep) == len(rows[i]):
                continue
            new_index = {old: new for new, old in enumerate(keep)}
            rows[i] = [rows[i][j] for j in keep]
            tables[i] = [tables[i][j] for j in keep]
            rows[i + 1] = [[new_index[s] for s in r] for r in rows[i + 1]]
            changed = True

    for layer, r, t in zip(out["layers"], rows, tables):
        layer["mapping"] = r
        layer["tables"] = [table_hex(x) for x in t]
        layer["n"] = max(1, max(len(x) for x in r))
    out["encoder"]["used"] = used_bits(out)
    validate(out)

    used = np.array(out["encoder"]["used"], dtype=bool)
    report = dict(totals)
    report["luts_before"] = luts_before
    report["luts_after"] = [len(r) for r in rows]
    report["lut_inputs_before"] = inputs_before
    report["lut_inputs_after"] = sum(len(x) for layer in rows for x in layer)
    report["constant_luts_last_layer"] = sum(1 for r in rows[last] if not r)
    report["encoder_bits"] = num_input_bits(out)
    report["encoder_bits_unused"] = int((~used).sum())
    report["features_unused"] = ([int(f) for f in np.flatnonzero(~used.any(axis=1))]
                                 if out["encoder"]["kind"] == "thermometer" else [])
    report["text"] = report_text(report, out["encoder"]["kind"])
    return out, report


def report_text(r: dict, kind: str) -> str:
    removed = [b - a for b, a in zip(r["luts_before"], r["luts_after"])]
    gone = (r["lut_inputs_before"] - r["lut_inputs_after"] - r["ignored_inputs"] - r["constant_inputs"]
            - r["repeated_inputs"])
    lines = [
        f"LUTs: {sum(r['luts_before'])} -> {sum(r['luts_after'])} "
        f"(removed per layer: {', '.join(map(str, removed))}; last layer keeps its count)",
        f"LUT inputs: {r['lut_inputs_before']} -> {r['lut_inputs_after']} "
        f"({r['ignored_inputs']} ignored by their table, {r['constant_inputs']} constant, "
        f"{r['repeated_inputs']} repeated, {gone} with the removed LUTs)",
        f"constant LUTs kept in the last layer: {r['constant_luts_last_layer']}",
        f"encoder bits nobody reads: {r['encoder_bits_unused']} of {r['encoder_bits']} (marked in encoder.used)",
    ]
    if kind == "thermometer":
        lines.append(f"input features nobody reads: {len(r['features_unused'])}")
    return "\n".join(lines)
