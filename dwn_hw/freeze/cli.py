"""``dwn-hw freeze`` and ``dwn-hw import-torch-dwn``, and the checkpoint side of ``info`` and ``eval``.

Each command takes what a user is likely to hold: a dwn-hw checkpoint (``model.pt``), an IR file
(``model.ir.json``) or a torch-dwn state dict. torch is imported only when a file needs it, so
``freeze`` of an IR file (validate, simplify) runs on the hardware side's dependencies alone; ``info``
and ``eval`` of an IR live in :mod:`dwn_hw.describe_cli`, which calls :func:`torch_summary` and
:func:`checkpoint_predictions` here for a ``.pt``.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import click
import numpy as np

from dwn_hw.describe import sniff
from dwn_hw.errors import DwnHwError


def torch_kind(path):
    """("checkpoint", ckpt) for a dwn-hw checkpoint, ("state_dict", dict) for anything else torch reads."""
    from dwn_hw.freeze.torch_dwn import read_state_dict, torch_load

    raw = torch_load(path, "model")
    if isinstance(raw, dict) and raw.get("format") == "dwn-hw-checkpoint":
        from dwn_hw.train.checkpoint import load

        return "checkpoint", load(path)
    return "state_dict", read_state_dict(raw)


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
    kind, obj = torch_kind(model)
    if kind != "checkpoint":
        raise DwnHwError(f"{model} is a state dict, not a dwn-hw checkpoint; a torch-dwn model needs its "
                         "thresholds and class count: dwn-hw import-torch-dwn STATE.pt --thresholds TH.npy "
                         "--classes K --input-bits B -o model.pt, then freeze model.pt")
    from dwn_hw.freeze.model import freeze

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
    from dwn_hw.freeze.torch_dwn import read_array_file

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
    from dwn_hw.freeze.model import freeze
    from dwn_hw.freeze.torch_dwn import from_torch_dwn, save_checkpoint

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
    from dwn_hw.datasets import load_dataset

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
# info and eval of a .pt
# ----------------------------------------------------------------------------------------------

def torch_summary(path) -> list[tuple[str, str]]:
    """``dwn-hw info`` of a torch file: a dwn-hw checkpoint or a torch-dwn state dict."""
    kind, obj = torch_kind(path)
    return checkpoint_summary(path, obj) if kind == "checkpoint" else state_dict_summary(obj)


def checkpoint_summary(path, ckpt) -> list[tuple[str, str]]:
    """``dwn-hw info`` rows of a dwn-hw checkpoint (its IR before simplification, and its training)."""
    from dwn_hw.describe import ir_summary, pct
    from dwn_hw.freeze.model import build_ir

    ir = build_ir(ckpt.model, ckpt.encoder, ckpt.grid, f"dwn-hw checkpoint {Path(path).name}")
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
    rows.append(("accuracy", f"{pct(acc)} (recorded by training)" if acc is not None else "not recorded"))
    planned = (ckpt.meta.get("options") or {}).get("epochs")
    done = metrics.get("epochs")
    if isinstance(planned, int) and isinstance(done, int):
        if done < planned:
            rows.append(("training", f"stopped after epoch {done} of {planned}; "
                                     f"`dwn-hw train -o {shlex.quote(str(path))} --resume` continues it"))
        else:
            rows.append(("training", f"finished: {done} of {planned} epochs"))
    return rows


def state_dict_summary(sd) -> list[tuple[str, str]]:
    """``dwn-hw info`` rows of a torch-dwn state dict (what its keys say; no thresholds or classes)."""
    from dwn_hw.freeze.torch_dwn import parse_torch_dwn

    layers, perm = parse_torch_dwn(sd)
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


def checkpoint_predictions(path, spec):
    """``dwn-hw eval`` of a checkpoint: (predicted classes, labels, spec, how the test set was made)."""
    from dwn_hw.describe import grid_tuple, test_inputs

    kind, ckpt = torch_kind(path)
    if kind != "checkpoint":
        raise DwnHwError(f"{path} is a torch-dwn state dict; import it first (dwn-hw import-torch-dwn)")
    recorded = (ckpt.meta.get("data") or {}).get("spec")
    spec = spec or recorded
    if not spec:
        raise DwnHwError(f"{path} records no data set; pass --dataset SPEC")
    if spec == recorded:
        from dwn_hw.datasets import load_test_set

        q, y = load_test_set(ckpt.meta)
        how = "the recorded test set"
    else:
        q, y, how = test_inputs(spec, grid_tuple(ckpt.grid), int(ckpt.meta["data"]["features"]))
    pred = ckpt.predict_q(q)
    return pred, y, spec, how
