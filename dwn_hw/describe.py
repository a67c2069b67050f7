"""Describe and score a model file without torch: what kind of file it is, an IR's summary table, a
data set's test inputs on a model's grid. The commands around it are :mod:`dwn_hw.describe_cli`;
the torch wing (:mod:`dwn_hw.freeze.cli`) uses these helpers for checkpoints.
"""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from dwn_hw.errors import DwnHwError


def sniff(path) -> str:
    """``"ir"`` for a JSON file, ``"torch"`` for a torch.save file; refuses what is neither."""
    path = Path(path)
    if not path.exists():
        raise DwnHwError(f"{path} does not exist")
    if path.is_dir():
        raise DwnHwError(f"{path} is a folder; give a model.pt, an IR .json or a state dict")
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):
        return "ir"
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return "torch"
    raise DwnHwError(f"{path} is neither an IR (JSON) nor a torch file (model.pt or a state dict)")


# ----------------------------------------------------------------------------------------------
# info
# ----------------------------------------------------------------------------------------------

def _n_histogram(rows) -> str:
    counts = collections.Counter(len(r) for r in rows)
    return " ".join(f"{n}:{counts[n]}" for n in sorted(counts, reverse=True))


def pct(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def ir_summary(ir: dict) -> list[tuple[str, str]]:
    """(label, value) rows describing an IR."""
    from dwn_hw.ir import group_size

    enc, gs, meta = ir["encoder"], ir["groupsum"], ir.get("meta") or {}
    rows = [("source", str(meta.get("source", "?")))]
    if enc["kind"] == "thermometer":
        scale = enc["scale"]
        scale_text = f"{scale:g}" if not isinstance(scale, list) else f"per feature ({min(scale):g}..{max(scale):g})"
        rows.append(("encoder", f"thermometer, {enc['features']} features x {enc['bits_per_feature']} thresholds"))
        rows.append(("input grid", f"{enc['input_bits']}-bit {'signed' if enc['signed'] else 'unsigned'}, "
                                   f"scale {scale_text}"))
    else:
        rows.append(("encoder", f"none: {enc['features']} input bits"))
    used = np.array(enc.get("used") or [[True]], dtype=bool)
    if enc["kind"] == "thermometer":
        rows.append(("inputs used", f"{int(used.any(axis=1).sum())} of {enc['features']} features"))
        rows.append(("thresholds used", f"{int(used.sum())} of {used.size} bits"))
    else:
        rows.append(("input bits used", f"{int(used.sum())} of {used.size}"))
    total = 0
    for i, layer in enumerate(ir["layers"]):
        total += len(layer["mapping"])
        rows.append((f"layer {i}", f"{len(layer['mapping'])} LUTs, n={layer['n']}, inputs per LUT "
                                   f"{_n_histogram(layer['mapping'])}"))
    rows.append(("LUTs", str(total)))
    tau = gs.get("tau")
    rows.append(("groupsum", f"k={gs['k']}, group size {group_size(ir)}"
                             f"{f', tau {tau:g}' if tau else ''}, "
                             f"{'permuted' if gs.get('permutation') is not None else 'no permutation'}"))
    acc = meta.get("accuracy")
    if isinstance(acc, dict):
        rows.append(("accuracy", f"float {pct(acc.get('float'))}, grid {pct(acc.get('grid'))} on "
                                 f"{acc.get('dataset')} ({acc.get('samples')} test samples)"))
    elif isinstance(meta.get("training_metrics"), dict) and "test_accuracy" in meta["training_metrics"]:
        rows.append(("accuracy", f"{pct(meta['training_metrics']['test_accuracy'])} (recorded by training)"))
    else:
        rows.append(("accuracy", "not recorded"))
    if "simplify" in meta:
        r = meta["simplify"]
        rows.append(("simplified", f"LUTs {sum(r['luts_before'])} -> {sum(r['luts_after'])}, LUT inputs "
                                   f"{r['lut_inputs_before']} -> {r['lut_inputs_after']}"))
    if "checked" in meta:
        c = meta["checked"]
        rows.append(("checked", f"equal to {c['against']} on {c['vectors']} vectors ({c['inputs']})"))
    if isinstance(meta.get("training_command"), str):
        epoch = (meta.get("training_metrics") or {}).get("epochs")
        rows.append(("trained by", meta["training_command"] + (f" (the IR is epoch {epoch})" if epoch else "")))
    return rows


# ----------------------------------------------------------------------------------------------
# eval
# ----------------------------------------------------------------------------------------------

def grid_tuple(grid) -> tuple:
    scale = np.asarray(grid.scale, dtype=np.float32)
    return (scale.tolist(), int(grid.input_bits), bool(grid.signed))


def test_inputs(spec: str, target_grid: tuple, features: int):
    """Test set of SPEC on a model's grid: (q, y, how)."""
    from dwn_hw.datasets import load_dataset
    from dwn_hw.ir.grid import quantize_array

    ds = load_dataset(spec)
    if ds.num_features != features:
        raise DwnHwError(f"data set {spec!r} has {ds.num_features} features but the model reads {features}")
    scale, bits, signed = target_grid
    own = grid_tuple(ds.grid)
    if np.array_equal(np.broadcast_to(own[0], (features,)), np.broadcast_to(scale, (features,))) \
            and own[1:] == (bits, signed):
        return ds.q_test, ds.y_test, "the data set's own grid"
    # a different grid: back to the values the data set stands for, then onto the model's grid
    x = ds.grid.to_x(ds.q_test)
    return quantize_array(x, scale, bits, signed), ds.y_test, "requantized onto the model's grid"
