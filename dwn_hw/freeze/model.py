"""Freeze a trained DWN into the IR: model -> IR, checked against the PyTorch forward.

This is the torch side of the one door (docs/design.md): it reads models and checkpoints and writes
the plain IR dict that the hardware side reads without torch (torch-dwn state dicts are imported into
checkpoints by :mod:`dwn_hw.freeze.torch_dwn` first). Every IR it returns has
been checked against the PyTorch forward on the recorded test set when the model has one (or on
random and edge inputs when it has none), so a difference is an error here, never a surprise later.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dwn_hw import __version__
from dwn_hw.errors import DwnHwError, warn
from dwn_hw.ir import evaluate, grid_range, grid_thresholds, table_hex, used_bits, validate
from dwn_hw.ir.grid import collapse_text, grid_x, threshold_bits_report, threshold_collapse
from dwn_hw.ir.simplify import simplify as simplify_ir
from dwn_hw.ir.vectors import edge_inputs  # the one test-vector recipe (an IR and its checkpoint get the same)

MAX_IR_N = 6          # IR v1 holds LUTs of at most 6 inputs (one FPGA LUT6 each)
SCORE_TOLERANCE = 1e-3


# ----------------------------------------------------------------------------------------------
# model structure
# ----------------------------------------------------------------------------------------------

def _parts(model: torch.nn.Module):
    """(LUT layers, GroupSum) of ``nn.Sequential(LUTLayer..., GroupSum)``; refuses anything else."""
    from dwn_hw.nn import GroupSum, LUTLayer

    mods = list(model.children()) if isinstance(model, torch.nn.Sequential) else [model]
    layers, groupsum = [], None
    for i, mod in enumerate(mods):
        if isinstance(mod, LUTLayer):
            if groupsum is not None:
                raise DwnHwError(f"module {i} is a LUTLayer after the GroupSum; the GroupSum must come last")
            layers.append(mod)
        elif isinstance(mod, GroupSum):
            if groupsum is not None:
                raise DwnHwError(f"module {i} is a second GroupSum; a model has one, at the end")
            groupsum = mod
        elif isinstance(mod, (torch.nn.Flatten, torch.nn.Identity)):
            continue  # no-ops on the [batch, bits] tensors between LUT layers
        else:
            raise DwnHwError(f"cannot freeze module {i} ({type(mod).__name__}): only LUTLayer, GroupSum, "
                             "Flatten and Identity have an exact hardware form")
    if not layers:
        raise DwnHwError("the model has no LUTLayer; nothing to freeze")
    if groupsum is None:
        raise DwnHwError("the model does not end in a GroupSum; the hardware needs class scores")
    for i in range(1, len(layers)):
        if layers[i].input_size != layers[i - 1].output_size:
            raise DwnHwError(f"LUT layer {i} reads {layers[i].input_size} inputs but layer {i - 1} has "
                             f"{layers[i - 1].output_size} outputs")
    if not layers[-1].ste:
        raise DwnHwError("the last LUT layer has ste=False: its raw table values feed the GroupSum, so the "
                         "scores are not popcounts and no hardware is exact; train it with ste=True")
    # an inner layer without STE is exact: the next layer reads its outputs as bits (x > 0),
    # which is exactly the table bit luts > 0
    for i, layer in enumerate(layers):
        if layer.n > MAX_IR_N:
            raise DwnHwError(f"LUT layer {i} has n = {layer.n} inputs per LUT; IR v1 holds at most {MAX_IR_N}")
    return layers, groupsum


def _layer_ir(layer) -> dict:
    mapping = layer.hard_mapping().detach().cpu().to(torch.int64).numpy()
    bits = (layer.luts.detach().cpu() > 0).numpy().astype(np.uint8)
    return {"n": int(layer.n), "mapping": mapping.tolist(), "tables": [table_hex(row) for row in bits]}


def _grid_tuple(grid) -> tuple[object, int, bool]:
    if isinstance(grid, dict):
        return grid["scale"], int(grid["input_bits"]), bool(grid["signed"])
    return grid.scale, int(grid.input_bits), bool(grid.signed)


def _scale_json(scale):
    s = np.asarray(scale, dtype=np.float32)
    return float(s) if s.ndim == 0 else [float(v) for v in s]


def _encoder_ir(encoder, grid, num_bits_in: int) -> dict:
    if encoder is None:
        return {"kind": "none", "features": int(num_bits_in), "bits_per_feature": 1, "scale": 1.0,
                "input_bits": 1, "signed": False}
    theta = getattr(encoder, "thresholds", None)
    if theta is None:
        raise DwnHwError("the encoder has no thresholds (not fitted?); fit it before freezing")
    theta = torch.as_tensor(theta).detach().cpu().to(torch.float32).numpy()
    if theta.ndim != 2:
        raise DwnHwError(f"encoder thresholds must be [features, bits], not shape {list(theta.shape)}")
    T = theta.shape[1]
    if num_bits_in % T:
        raise DwnHwError(f"the first LUT layer reads {num_bits_in} bits, not a multiple of the encoder's {T} "
                         "bits per feature")
    F = num_bits_in // T
    if theta.shape[0] == 1 and F != 1:
        theta = np.broadcast_to(theta, (F, T))
    if theta.shape[0] != F:
        raise DwnHwError(f"the encoder has thresholds for {theta.shape[0]} features but the first LUT layer "
                         f"reads {F} x {T} bits")
    if grid is None:
        raise DwnHwError("float thresholds with no input grid: give grid= (scale, input_bits, signed) so the "
                         "hardware's integer inputs can be compared exactly")
    scale, bits, signed = _grid_tuple(grid)
    th = grid_thresholds(theta, scale, bits, signed)
    return {"kind": "thermometer", "features": int(F), "bits_per_feature": int(T), "thresholds": th.tolist(),
            "scale": _scale_json(scale), "input_bits": int(bits), "signed": bool(signed)}


def build_ir(model, encoder, grid, source: str) -> dict:
    layers, groupsum = _parts(model)
    perm = groupsum.randperm.detach().cpu()
    if groupsum.permutation_pending:
        raise DwnHwError("the GroupSum has randperm=True but has not drawn its permutation yet; run one "
                         "forward pass first")
    ir = {
        "format": "dwn-hw-ir", "version": 1,
        "encoder": _encoder_ir(encoder, grid, layers[0].input_size),
        "layers": [_layer_ir(layer) for layer in layers],
        "groupsum": {"k": int(groupsum.k), "permutation": perm.tolist() if perm.numel() else None,
                     "tau": float(groupsum.tau)},
        "meta": {"source": source, "tool": f"dwn-hw {__version__}"},
    }
    ir["encoder"]["used"] = used_bits(ir)
    return validate(ir)


# ----------------------------------------------------------------------------------------------
# the PyTorch forward on grid inputs
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def torch_scores(model, encoder, grid, q, batch_size: int = 2048) -> np.ndarray:
    """Integer scores (int64 ``[N, K]``) of the PyTorch forward on grid inputs ``q``.

    The model sees exactly ``x = float32(q) / float32(scale)``; the scores are ``round(forward · tau)``
    and a :class:`DwnHwError` is raised if any is further than 1e-3 from an integer.
    """
    layers, groupsum = _parts(model)
    model.eval()
    device = layers[0].luts.device
    tau = float(groupsum.tau)
    q = np.asarray(q)
    out = []
    for start in range(0, len(q), batch_size):
        chunk = q[start:start + batch_size]
        if encoder is None:
            x = torch.as_tensor(chunk, dtype=torch.float32)
        else:
            scale = _grid_tuple(grid)[0]
            xs = grid_x(chunk.astype(np.int64), np.asarray(scale, dtype=np.float32))
            x = encoder.binarize(torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32)))
        y = model(x.to(device)).detach().cpu().to(torch.float64) * tau
        out.append(y.numpy())
    s = np.concatenate(out) if out else np.zeros((0, int(groupsum.k)))
    r = np.round(s)
    if s.size and np.abs(s - r).max() >= SCORE_TOLERANCE:
        worst = float(np.abs(s - r).max())
        raise DwnHwError(f"PyTorch scores times tau are {worst:.3g} away from integers; the model's output "
                         "is not a popcount (tau mismatch or a layer without STE?)")
    return r.astype(np.int64)


def check_against_torch(ir: dict, model, encoder, grid, q) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch scores and classes on ``q``; raises unless the IR evaluator gives the same on every vector."""
    expected = torch_scores(model, encoder, grid, q)
    classes = expected.argmax(axis=1).astype(np.int64) if len(expected) else np.zeros(0, np.int64)
    got, got_classes = evaluate(ir, q)
    bad = np.flatnonzero((got != expected).any(axis=1) | (got_classes != classes))
    if bad.size:
        i = int(bad[0])
        raise DwnHwError(f"the IR differs from the PyTorch forward on {bad.size} of {len(q)} vectors "
                         f"(first: vector {i}, IR scores {got[i].tolist()}, PyTorch {expected[i].tolist()})")
    return expected, classes


# ----------------------------------------------------------------------------------------------
# freeze
# ----------------------------------------------------------------------------------------------

def _as_checkpoint(obj):
    """A path becomes ``dwn_hw.load(path)``; checkpoint-like objects pass through; modules give None."""
    if isinstance(obj, (str, os.PathLike)):
        from dwn_hw.train.checkpoint import load

        return load(obj), str(obj)
    if hasattr(obj, "model") and hasattr(obj, "meta"):
        return obj, None
    return None, None


def recorded_test_set(ckpt):
    """``(q, y)`` of the checkpoint's recorded test set, or None when it records none."""
    data = (ckpt.meta or {}).get("data") or {}
    if not data.get("spec"):
        return None
    from dwn_hw.datasets import load_test_set

    return load_test_set(ckpt.meta)


def freeze(model_or_checkpoint, *, encoder=None, grid=None, simplify: bool = True, test_set=True) -> dict:
    """Freeze a model into an IR dict (validated) that computes exactly what the PyTorch forward does.

    Parameters
    ----------
    model_or_checkpoint : str, os.PathLike, checkpoint, or torch.nn.Module
        A checkpoint path, what ``dwn_hw.load`` returns, or ``nn.Sequential(LUTLayer..., GroupSum)``.
    encoder : Thermometer, optional
        For a bare model: its fitted encoder. Without one the IR has ``encoder.kind == "none"`` (the
        hardware reads the thermometer bits).
    grid : Grid or dict, optional
        For a bare model with an encoder: ``scale``, ``input_bits``, ``signed`` of the integer inputs.
    simplify : bool
        Run :func:`dwn_hw.ir.simplify` (same function, fewer LUTs and inputs); its report goes to
        ``meta["simplify"]``.
    test_set : bool or (q, y)
        ``True``: the checkpoint's recorded test set, when it has one; ``False``: none; or grid inputs and
        labels. The IR is checked against the PyTorch forward on it (random and edge inputs when there
        is none) and ``meta["accuracy"]`` records the test accuracy of both.

    Returns
    -------
    dict
        The IR (``docs/ir.md``).
    """
    return freeze_checked(model_or_checkpoint, encoder, grid, simplify, test_set)[0]


def freeze_checked(obj, encoder, grid, simplify, test_set):
    """freeze(), also returning the checked vectors: (ir, q, PyTorch scores, PyTorch classes)."""
    ckpt, path = _as_checkpoint(obj)
    if ckpt is not None:
        model, encoder = ckpt.model, ckpt.encoder
        grid = getattr(ckpt, "grid", None) or ckpt.meta.get("grid")
        source = ckpt.meta.get("source") or (f"checkpoint {Path(path).name}" if path else "checkpoint")
    elif isinstance(obj, torch.nn.Module):
        model = obj
        source = f"{type(model).__name__} in memory"
    else:
        raise DwnHwError(f"cannot freeze a {type(obj).__name__}: pass a checkpoint path, "
                         "dwn_hw.load(path), or nn.Sequential(LUTLayer..., GroupSum)")
    ir = build_ir(model, encoder, grid, source)
    if simplify:
        ir, report = simplify_ir(ir)
        ir["meta"]["simplify"] = {k: v for k, v in report.items() if k != "text"}

    data = None
    if isinstance(test_set, tuple):
        data = (np.asarray(test_set[0]), np.asarray(test_set[1]))
    elif test_set is True and ckpt is not None:
        data = recorded_test_set(ckpt)
    if data is not None:
        q, y = data
        scores, classes = check_against_torch(ir, model, encoder, grid, q)
        spec = ((ckpt.meta.get("data") or {}).get("spec") if ckpt is not None else None) or "given"
        # "float": the PyTorch model on the test set (the float model, on the inputs it was trained on);
        # "grid": the IR on the grid integers. The check above makes them equal; both are measured.
        ir["meta"]["accuracy"] = {"float": _accuracy(classes, y), "grid": _accuracy(evaluate(ir, q)[1], y),
                                  "dataset": spec, "samples": int(len(y))}
        # edges too: a test set may never touch some comparators' boundaries
        edges = edge_inputs(ir)
        check_against_torch(ir, model, encoder, grid, edges)
        ir["meta"]["checked"] = {"vectors": int(len(q) + len(edges)), "against": "pytorch",
                                 "inputs": "test set, random and edge"}
    else:
        q = edge_inputs(ir)
        scores, classes = check_against_torch(ir, model, encoder, grid, q)
        ir["meta"]["checked"] = {"vectors": int(len(q)), "against": "pytorch", "inputs": "random and edge"}
    collapse = _collapse(ir, encoder)
    if collapse is not None:
        ir["meta"]["threshold_collapse"] = collapse
        warn(f"{collapse_text(collapse)}{_accuracy_text(ir)}; {_collapse_fix(ckpt, collapse)}")
    if ckpt is not None:
        _hardware_meta(ir, ckpt)
    if ckpt is not None and isinstance(ckpt.meta.get("options"), dict):
        ir["meta"]["training_command"] = training_command(ckpt.meta["options"])
    if ckpt is not None and isinstance(ckpt.meta.get("metrics"), dict):
        rec = {k: v for k, v in ckpt.meta["metrics"].items()
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        if rec:
            ir["meta"]["training_metrics"] = rec
    return validate(ir), q, scores, classes


def training_command(options: dict) -> str:
    """The ``dwn-hw train`` command line of a checkpoint's recorded options (``-o`` left out)."""
    import shlex

    from dwn_hw.train.cli import train_argv
    from dwn_hw.train.loop import TrainConfig

    return shlex.join(["dwn-hw", "train", *train_argv(TrainConfig.from_dict(options))])


HARDWARE_OPTIONS = ("input_bits", "threshold_bits", "max_input_bits", "cap_warmup", "init_from", "init_encoder",
                    "receptive_field", "local_fanin")


def _hardware_meta(ir: dict, ckpt) -> None:
    """``meta["training_options"]``: the hardware-aware training options, checked against the IR.

    ``--threshold-bits K``: every used threshold must read at most K top bits (``meta["threshold_bits"]``
    reports it); ``--max-input-bits M``: the first layer reads at most M distinct encoder bits
    (``meta["input_cap"]``). Either failing is an error: the IR would not be what the options promised.
    """
    opts = ckpt.meta.get("options") or {}
    hw = ckpt.meta.get("hardware") or {}
    rec = {k: opts.get(k) for k in HARDWARE_OPTIONS if k in opts}
    if not any(v is not None for k, v in rec.items() if k not in ("cap_warmup", "init_encoder")):
        return
    if hw.get("init_from"):
        rec["init_from"] = {k: hw["init_from"].get(k) for k in ("path", "sha256", "epochs", "test_accuracy")}
    ir["meta"]["training_options"] = rec
    k = opts.get("threshold_bits")
    if k is not None and ir["encoder"]["kind"] == "thermometer":
        rep = threshold_bits_report(ir["encoder"], int(k))
        if rep["violations"]:
            f = rep["first"]
            raise DwnHwError(f"the checkpoint was trained with --threshold-bits {k} but {rep['violations']} used "
                             f"thresholds read more bits (feature {f['feature']} bit {f['bit']}: threshold "
                             f"{f['threshold']} reads {f['reads']})")
        ir["meta"]["threshold_bits"] = {"k": int(k), **rep, "histogram": {str(b): c for b, c in rep["histogram"].items()}}
    m = opts.get("max_input_bits")
    if m is not None:
        read = sorted({int(v) for row in ir["layers"][0]["mapping"] for v in row})
        if len(read) > int(m):
            raise DwnHwError(f"the checkpoint was trained with --max-input-bits {m} but its first layer reads "
                             f"{len(read)} distinct encoder bits")
        ir["meta"]["input_cap"] = {"max_input_bits": int(m), "bits_read": len(read),
                                   "thresholds_used": int(np.asarray(ir["encoder"].get("used") or [[]]).sum())}
    loc = hw.get("locality")
    if opts.get("receptive_field") is not None and loc:
        ir["meta"]["locality"] = _locality_meta(ir, ckpt.model, loc)


def _locality_meta(ir: dict, model, loc: dict) -> dict:
    """``meta["locality"]`` of a ``--receptive-field`` model; an error when a first-layer LUT of the trained model
    reads outside its patch (simplification only drops reads, so the IR's are inside too)."""
    from dwn_hw.train import locality

    bad = locality.model_outside_patches(model, loc, ir["encoder"]["bits_per_feature"])
    if bad:
        raise DwnHwError(f"the checkpoint was trained with --receptive-field {loc['radius']} but {bad} "
                         "first-layer LUTs read bits outside their patch")
    return {**{k: loc[k] for k in ("radius", "fanin", "box", "image_shape")}, "first_layer_outside_patch": 0}


def _collapse(ir: dict, encoder) -> dict | None:
    """The thermometer's :func:`~dwn_hw.ir.grid.threshold_collapse` on the IR's grid (None without one)."""
    enc = ir["encoder"]
    if enc["kind"] != "thermometer" or encoder is None:
        return None
    theta = torch.as_tensor(encoder.thresholds).detach().cpu().to(torch.float32).numpy()
    theta = np.broadcast_to(theta, (int(enc["features"]), int(enc["bits_per_feature"])))
    grid_th = grid_thresholds(theta, enc["scale"], int(enc["input_bits"]), bool(enc["signed"]))
    return threshold_collapse(theta, grid_th, enc["scale"], int(enc["input_bits"]), bool(enc["signed"]))


def _accuracy_text(ir: dict) -> str:
    acc = ir["meta"].get("accuracy")
    if not acc or acc.get("float") is None:
        return ""
    return (f" (test accuracy on {acc['dataset']}: float {100 * acc['float']:.1f} %, grid "
            f"{100 * acc['grid']:.1f} %)")


def _collapse_fix(ckpt, report: dict) -> str:
    """How to keep the thresholds apart, in the words of whoever made the model."""
    if ckpt is not None and ckpt.meta.get("source") == "torch-dwn state dict":
        top = max(abs(v) for v in report["float_span"]) or 1.0
        qmax = int(report["grid"].split("..")[1].split(" ")[0])
        return (f"the model saw x = q / input_scale: give import-torch-dwn the --input-scale that maps the "
                f"data's range onto the grid (thresholds up to {top:.4g} on a grid up to {qmax}: about "
                f"--input-scale {qmax / top:.4g}) or a wider --input-bits")
    if ckpt is not None and (ckpt.meta.get("options") or {}):
        return ("the data were trained on this grid, so float and grid agree on them, but the encoder's extra "
                "thresholds are wasted: train with a wider --input-bits (a finer grid) or fewer --bits")
    return "give a finer grid (a larger scale or more input_bits)"


def _accuracy(pred, y) -> float | None:
    return float((np.asarray(pred) == np.asarray(y)).mean()) if len(y) else None


def bundle_inputs(checkpoint_path) -> dict:
    """What an export bundle needs from the PyTorch side, computed here so the exporter needs no torch.

    Returns
    -------
    dict
        ``ir`` (simplified, checked), ``inputs`` (int64 ``[N, F]`` grid test inputs; random and edge inputs
        when the model records no data set), ``scores`` (int64 ``[N, K]``), ``classes`` (int64 ``[N]``),
        all expected outputs from the PyTorch forward on exactly ``x = float32(q) / float32(scale)``, and
        ``expected_from = "pytorch"``. Raises :class:`DwnHwError` if the IR evaluator differs on any vector.
    """
    if isinstance(checkpoint_path, torch.nn.Module):
        raise DwnHwError("bundle_inputs needs a checkpoint (a path or what dwn_hw.load returns), not a bare "
                         "module: it has no grid or data set")
    ir, q, scores, classes = freeze_checked(checkpoint_path, None, None, True, True)
    return {"ir": ir, "inputs": np.ascontiguousarray(q, dtype=np.int64), "scores": scores, "classes": classes,
            "expected_from": "pytorch"}
