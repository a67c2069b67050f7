"""``dwn-hw freeze``, ``import-torch-dwn``, ``info`` and ``eval``.

Each command takes what a user is likely to hold: a dwn-hw checkpoint (``model.pt``), an IR file
(``model.ir.json``) or a torch-dwn state dict. torch is imported only when a file needs it, so
``info`` and ``eval`` on an IR work on the hardware side's dependencies alone.
"""
from __future__ import annotations

import collections
import json
import shlex
from pathlib import Path

import click
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


def _torch_kind(path):
    """("checkpoint", ckpt) for a dwn-hw checkpoint, ("state_dict", dict) for anything else torch reads."""
    from dwn_hw.freeze import _read_state_dict, _torch_load

    raw = _torch_load(path, "model")
    if isinstance(raw, dict) and raw.get("format") == "dwn-hw-checkpoint":
        from dwn_hw.train.checkpoint import load

        return "checkpoint", load(path)
    return "state_dict", _read_state_dict(raw)


# ----------------------------------------------------------------------------------------------
# freeze
# ----------------------------------------------------------------------------------------------

@click.command("freeze")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="IR file to write (.json).")
@click.option("--simplify/--no-simplify", default=True, show_default=True,
              help="Remove what does not change the function (unread inputs, LUTs and LUT inputs, constants).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def freeze_cmd(model, output, simplify, force):
    """Freeze MODEL (a dwn-hw checkpoint) into an IR file, checked against the PyTorch forward.

    Given an IR file, validates it and (with --simplify) simplifies it.
    """
    import dwn_hw.ir as ir_mod
    from dwn_hw.fsutil import check_new

    check_new(output, force)
    if sniff(model) == "ir":
        ir = ir_mod.load(model)
        if simplify:
            ir, report = ir_mod.simplify(ir)
            ir.setdefault("meta", {})["simplify"] = {k: v for k, v in report.items() if k != "text"}
            click.echo(report["text"])
        ir_mod.save(ir, output, force=force)
        click.echo(f"wrote {output} (from IR {model})")
        return
    kind, obj = _torch_kind(model)
    if kind != "checkpoint":
        raise DwnHwError(f"{model} is a state dict, not a dwn-hw checkpoint; a torch-dwn model needs its "
                         "thresholds and class count: dwn-hw import-torch-dwn STATE.pt --thresholds TH.npy "
                         "--classes K --input-bits B -o model.pt, then freeze model.pt")
    from dwn_hw.freeze import freeze

    ir = freeze(obj, simplify=simplify)
    origin = obj.meta.get("source")
    ir["meta"]["source"] = f"checkpoint {Path(model).name}" + (f" ({origin})" if origin else "")
    ir_mod.save(ir, output, force=force)
    meta = ir["meta"]
    if simplify:
        from dwn_hw.ir.simplify import report_text

        click.echo(report_text(meta["simplify"], ir["encoder"]["kind"]))
    checked = meta["checked"]
    click.echo(f"checked: IR equals the PyTorch forward on {checked['vectors']} vectors ({checked['inputs']})")
    if "accuracy" in meta:
        acc = meta["accuracy"]
        click.echo(f"accuracy on {acc['dataset']} test set ({acc['samples']} samples): float {acc['float']:.4f}, "
                   f"grid {acc['grid']:.4f}")
    click.echo(f"wrote {output}")


# ----------------------------------------------------------------------------------------------
# import-torch-dwn
# ----------------------------------------------------------------------------------------------

def _array_file(path: str, what: str):
    from dwn_hw.freeze import read_array_file

    value = read_array_file(path, what)
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _scale_option(text: str):
    try:
        value = float(text)
    except ValueError:
        if text.endswith((".npy", ".pt")):
            return _array_file(text, "input scale").astype(np.float32)
        raise DwnHwError(f"--input-scale must be a number or a .npy/.pt file of per-feature scales, not {text!r}")
    if not np.isfinite(value) or value <= 0:
        raise DwnHwError(f"--input-scale must be a positive number, not {text!r}")
    return value


@click.command("import-torch-dwn")
@click.argument("state", type=click.Path(dir_okay=False))
@click.option("--thresholds", "thresholds", required=True, type=click.Path(dir_okay=False),
              help="The thermometer's float thresholds [features, bits] (.npy or .pt).")
@click.option("--classes", "classes", required=True, type=click.IntRange(min=1), help="Number of classes (GroupSum k).")
@click.option("--tau", default=1.0, show_default=True, type=click.FloatRange(min=0.0, min_open=True),
              help="GroupSum temperature.")
@click.option("--randperm", type=click.Path(dir_okay=False), help="GroupSum permutation (.npy or .pt), if any.")
@click.option("--input-scale", default="1.0", show_default=True,
              help="The model saw x = q / SCALE for integer inputs q (a number or a .npy of per-feature scales).")
@click.option("--input-bits", type=click.IntRange(1, 32), help="Width of the integer inputs (required).")
@click.option("--dataset", "spec", default=None,
              help="Score the import on this data set's test set (digits, mnist, csv:PATH, npz:PATH): the float "
                   "model on the data's values against the model on the grid.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="dwn-hw checkpoint to write.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def import_torch_dwn_cmd(state, thresholds, classes, tau, randperm, input_scale, input_bits, spec, output, force):
    """Turn a torch-dwn STATE dict (model.state_dict() of nn.Sequential(LUTLayer..., GroupSum)) into a
    dwn-hw checkpoint. torch_dwn need not be installed."""
    from dwn_hw.fsutil import check_new
    from dwn_hw.freeze import freeze, from_torch_dwn, save_checkpoint

    check_new(output, force)
    if sniff(state) == "ir":
        raise DwnHwError(f"{state} is an IR file, not a torch-dwn state dict; it needs no import")
    perm = _array_file(randperm, "randperm") if randperm else None
    ck = from_torch_dwn(state, thresholds, classes, tau=tau, randperm=perm,
                        input_scale=_scale_option(input_scale), input_bits=input_bits)
    ir = freeze(ck, simplify=False)   # refuses what cannot be exact before anything is written
    save_checkpoint(ck, output, force=force)
    arch = ck.meta["architecture"]
    sizes = " -> ".join(f"{s['output_size']}x{s['n']}{' (learnable)' if s['mapping'] == 'learnable' else ''}"
                        for s in arch["layers"])
    enc = ir["encoder"]
    click.echo(f"imported {len(arch['layers'])} LUT layers ({sizes}), {enc['features']} features x "
               f"{enc['bits_per_feature']} thresholds, {classes} classes")
    off = _off_grid(ck)
    if off:
        click.echo(f"note: {off} thresholds lie outside the grid's range; their bits are constant in hardware "
                   "(a wider --input-bits or another --input-scale would keep them)")
    vectors = ir["meta"]["checked"]["vectors"]
    if spec:
        fl, gr, n = _float_vs_grid(ck, spec)
        click.echo(f"accuracy on {spec} test set ({n} samples): float thresholds on the data's values "
                   f"{100 * fl:.1f} %, on the grid (what the hardware computes) {100 * gr:.1f} %")
    collapse = ir["meta"].get("threshold_collapse")
    if collapse:
        click.echo(f"checked: the frozen IR equals the PyTorch forward on {vectors} grid vectors, but that forward "
                   f"already has {collapse['features']} of {collapse['of_features']} features' thresholds collapsed "
                   "(warning above): the hardware is NOT the model trained on float data")
    else:
        click.echo(f"checked: frozen IR equals the PyTorch forward on {vectors} random and edge vectors")
    click.echo(f"wrote {output}")


def _float_vs_grid(ck, spec: str) -> tuple[float, float, int]:
    """Test accuracy of an imported model: float thresholds on the data set's values, and on the model's grid."""
    import torch

    from dwn_hw.ir.grid import quantize_array
    from dwn_hw.train.datasets import load_dataset

    ds = load_dataset(spec)
    features = int(ck.meta["data"]["features"])
    if ds.num_features != features:
        raise DwnHwError(f"data set {spec!r} has {ds.num_features} features but the model reads {features}")
    x = ds.grid.to_x(ds.q_test)
    with torch.no_grad():
        ck.model.eval()
        pred_float = ck.model(ck.encoder.binarize(torch.from_numpy(x))).argmax(dim=1).numpy()
    q = quantize_array(x, ck.grid.scale, ck.grid.input_bits, ck.grid.signed)
    pred_grid = ck.predict_q(q)
    return float((pred_float == ds.y_test).mean()), float((pred_grid == ds.y_test).mean()), int(len(ds.y_test))


def _off_grid(ck) -> int:
    from dwn_hw.ir.grid import grid_x, scale_vector

    theta = ck.encoder.thresholds.numpy()
    s = scale_vector(ck.grid.scale, theta.shape[0])[:, None]
    lo, hi = grid_x(ck.grid.qmin, s), grid_x(ck.grid.qmax, s)
    return int(((theta < lo) | (theta > hi)).sum())  # theta == x(qmax): always 0 on the data too


# ----------------------------------------------------------------------------------------------
# info
# ----------------------------------------------------------------------------------------------

def _n_histogram(rows) -> str:
    counts = collections.Counter(len(r) for r in rows)
    return " ".join(f"{n}:{counts[n]}" for n in sorted(counts, reverse=True))


def _pct(value) -> str:
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
        rows.append(("accuracy", f"float {_pct(acc.get('float'))}, grid {_pct(acc.get('grid'))} on "
                                 f"{acc.get('dataset')} ({acc.get('samples')} test samples)"))
    elif isinstance(meta.get("training_metrics"), dict) and "test_accuracy" in meta["training_metrics"]:
        rows.append(("accuracy", f"{_pct(meta['training_metrics']['test_accuracy'])} (recorded by training)"))
    else:
        rows.append(("accuracy", "not recorded"))
    if "simplify" in meta:
        r = meta["simplify"]
        rows.append(("simplified", f"LUTs {sum(r['luts_before'])} -> {sum(r['luts_after'])}, LUT inputs "
                                   f"{r['lut_inputs_before']} -> {r['lut_inputs_after']}"))
    if "checked" in meta:
        c = meta["checked"]
        rows.append(("checked", f"equal to {c['against']} on {c['vectors']} vectors ({c['inputs']})"))
    return rows


def _checkpoint_summary(path, ckpt) -> list[tuple[str, str]]:
    from dwn_hw.freeze import _build_ir

    ir = _build_ir(ckpt.model, ckpt.encoder, ckpt.grid, f"dwn-hw checkpoint {Path(path).name}")
    rows = [r for r in ir_summary(ir) if r[0] not in ("accuracy", "source")]
    arch = ckpt.meta.get("architecture", {})
    learn = [i for i, s in enumerate(arch.get("layers", [])) if s.get("mapping") == "learnable"]
    rows.insert(0, ("source", f"dwn-hw checkpoint ({ckpt.meta.get('source') or 'trained'})"))
    data = ckpt.meta.get("data") or {}
    rows.insert(1, ("data set", str(data.get("spec") or "none recorded")))
    if learn:
        rows.append(("learnable mappings", ", ".join(f"layer {i}" for i in learn)))
    metrics = ckpt.meta.get("metrics") or {}
    acc = metrics.get("test_accuracy")
    rows.append(("accuracy", f"{_pct(acc)} (recorded by training)" if acc is not None else "not recorded"))
    planned = (ckpt.meta.get("options") or {}).get("epochs")
    done = metrics.get("epochs")
    if isinstance(planned, int) and isinstance(done, int):
        if done < planned:
            rows.append(("training", f"stopped after epoch {done} of {planned}; "
                                     f"`dwn-hw train -o {shlex.quote(str(path))} --resume` continues it"))
        else:
            rows.append(("training", f"finished: {done} of {planned} epochs"))
    return rows


def _state_dict_summary(sd) -> list[tuple[str, str]]:
    from dwn_hw.freeze import _parse_torch_dwn

    layers, perm = _parse_torch_dwn(sd)
    rows = [("source", "torch-dwn state dict (no thresholds or classes inside: see dwn-hw import-torch-dwn)")]
    total = 0
    for i, layer in enumerate(layers):
        N, size = layer["luts"].shape
        n = int(size).bit_length() - 1
        total += N
        kind = "learnable mapping" if "mapping.weights" in layer else "fixed mapping"
        inputs = f", reads {layer['mapping.weights'].shape[0]} inputs" if "mapping.weights" in layer else ""
        rows.append((f"layer {i}", f"{N} LUTs, n={n}, {kind}{inputs} (module {layer['module']})"))
    rows.append(("LUTs", str(total)))
    rows.append(("groupsum", "permutation saved" if perm is not None and perm.numel() else "not in the state dict (k, tau: options)"))
    return rows


@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the table as a JSON object.")
def info_cmd(model, as_json):
    """Describe MODEL: a dwn-hw checkpoint, an IR file or a torch-dwn state dict."""
    if sniff(model) == "ir":
        import dwn_hw.ir as ir_mod

        rows = ir_summary(ir_mod.load(model))
    else:
        kind, obj = _torch_kind(model)
        rows = _checkpoint_summary(model, obj) if kind == "checkpoint" else _state_dict_summary(obj)
    if as_json:
        click.echo(json.dumps(dict(rows), indent=2))
        return
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


# ----------------------------------------------------------------------------------------------
# eval
# ----------------------------------------------------------------------------------------------

def _grid_tuple(grid) -> tuple:
    scale = np.asarray(grid.scale, dtype=np.float32)
    return (scale.tolist(), int(grid.input_bits), bool(grid.signed))


def _test_inputs(spec: str, target_grid: tuple, features: int):
    """Test set of SPEC on a model's grid: (q, y, how)."""
    from dwn_hw.ir.grid import quantize_array
    from dwn_hw.train.datasets import load_dataset

    ds = load_dataset(spec)
    if ds.num_features != features:
        raise DwnHwError(f"data set {spec!r} has {ds.num_features} features but the model reads {features}")
    scale, bits, signed = target_grid
    own = _grid_tuple(ds.grid)
    if np.array_equal(np.broadcast_to(own[0], (features,)), np.broadcast_to(scale, (features,))) \
            and own[1:] == (bits, signed):
        return ds.q_test, ds.y_test, "the data set's own grid"
    # a different grid: back to the values the data set stands for, then onto the model's grid
    x = ds.grid.to_x(ds.q_test)
    return quantize_array(x, scale, bits, signed), ds.y_test, "requantized onto the model's grid"


@click.command("eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", "spec", default=None,
              help="digits, mnist, fashion-mnist, csv:PATH or npz:PATH (default: the one the model records).")
def eval_cmd(model, spec):
    """Print the test accuracy of MODEL (a dwn-hw checkpoint, or an IR file run by the numpy evaluator)."""
    if sniff(model) == "ir":
        import dwn_hw.ir as ir_mod

        ir = ir_mod.load(model)
        enc = ir["encoder"]
        spec = spec or ((ir.get("meta") or {}).get("accuracy") or {}).get("dataset")
        if not spec or spec == "given":
            raise DwnHwError(f"{model} records no data set; pass --dataset SPEC")
        if enc["kind"] != "thermometer":
            raise DwnHwError("this IR reads thermometer bits (encoder.kind 'none'); eval needs grid inputs")
        q, y, how = _test_inputs(spec, (enc["scale"], int(enc["input_bits"]), bool(enc["signed"])),
                                 int(enc["features"]))
        _, pred = ir_mod.evaluate(ir, q)
        engine = "IR evaluator (numpy)"
    else:
        kind, ckpt = _torch_kind(model)
        if kind != "checkpoint":
            raise DwnHwError(f"{model} is a torch-dwn state dict; import it first (dwn-hw import-torch-dwn)")
        recorded = (ckpt.meta.get("data") or {}).get("spec")
        spec = spec or recorded
        if not spec:
            raise DwnHwError(f"{model} records no data set; pass --dataset SPEC")
        if spec == recorded:
            from dwn_hw.train.datasets import load_test_set

            q, y = load_test_set(ckpt.meta)
            how = "the recorded test set"
        else:
            q, y, how = _test_inputs(spec, _grid_tuple(ckpt.grid), int(ckpt.meta["data"]["features"]))
        pred = ckpt.predict_q(q)
        engine = "PyTorch forward"
    acc = float((np.asarray(pred) == y).mean())
    click.echo(f"accuracy {acc:.4f} ({int((np.asarray(pred) == y).sum())}/{len(y)}) on {spec} test set "
               f"({how}), {engine}")
