"""Freeze a trained DWN into the IR, and import torch-dwn state dicts.

This is the torch side of the one door (DESIGN.md): it reads models, checkpoints and torch-dwn state
dicts and writes the plain IR dict that the hardware side reads without torch. Every IR it returns has
been checked against the PyTorch forward on the recorded test set when the model has one (or on
random and edge inputs when it has none), so a difference is an error here, never a surprise later.
"""
from __future__ import annotations

import os
import pickle
import re
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from dwn_hw import __version__
from dwn_hw.errors import DwnHwError, show, warn
from dwn_hw.ir import evaluate, grid_range, grid_thresholds, table_hex, used_bits, validate
from dwn_hw.ir.grid import collapse_text, grid_bounds, grid_x, threshold_collapse
from dwn_hw.ir.simplify import simplify as simplify_ir

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


def _build_ir(model, encoder, grid, source: str) -> dict:
    layers, groupsum = _parts(model)
    perm = groupsum.randperm.detach().cpu()
    if perm.numel() == 0 and getattr(groupsum, "_draw_on_first_forward", False):
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
    from dwn_hw.train.datasets import load_test_set

    return load_test_set(ckpt.meta)


def edge_inputs(ir: dict, count: int = 256, seed: int = 0) -> np.ndarray:
    """Random grid inputs plus edges: all zeros, all qmin, all qmax, and every threshold t-1, t, t+1."""
    rng = np.random.default_rng(seed)
    enc = ir["encoder"]
    F = int(enc["features"])
    if enc["kind"] == "none":
        fixed = [np.zeros(F, np.int64), np.ones(F, np.int64)]
        rand = rng.integers(0, 2, size=(count, F))
        return np.vstack(fixed + [rand]).astype(np.int64)
    qmin, qmax = grid_range(enc)
    th = np.asarray(enc["thresholds"], dtype=np.int64)
    fixed = [np.full(F, min(max(0, qmin), qmax)), np.full(F, qmin), np.full(F, qmax)]
    for t in range(th.shape[1]):
        for delta in (-1, 0, 1):   # q = t gives bit 0, q = t + 1 gives bit 1: both sides of every comparator
            fixed.append(np.clip(th[:, t] + delta, qmin, qmax))
    # random values near the thresholds hit the comparators' edges far more often than uniform draws
    pick = th[np.arange(F)[None, :], rng.integers(0, th.shape[1], size=(count, F))]
    near = np.clip(pick + rng.integers(0, 2, size=(count, F)), qmin, qmax)
    uniform = rng.integers(qmin, qmax + 1, size=(count, F))
    return np.vstack(fixed + [near, uniform]).astype(np.int64)


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
    return _freeze(model_or_checkpoint, encoder, grid, simplify, test_set)[0]


def _freeze(obj, encoder, grid, simplify, test_set):
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
    ir = _build_ir(model, encoder, grid, source)
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
    if ckpt is not None and isinstance(ckpt.meta.get("metrics"), dict):
        rec = {k: v for k, v in ckpt.meta["metrics"].items()
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        if rec:
            ir["meta"]["training_metrics"] = rec
    return validate(ir), q, scores, classes


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
    ir, q, scores, classes = _freeze(checkpoint_path, None, None, True, True)
    return {"ir": ir, "inputs": np.ascontiguousarray(q, dtype=np.int64), "scores": scores, "classes": classes,
            "expected_from": "pytorch"}


# ----------------------------------------------------------------------------------------------
# torch-dwn import
# ----------------------------------------------------------------------------------------------

_TORCH_DWN_KEY = re.compile(r"^(?P<module>(?:.*\.)?\d+)\.(?P<name>luts|mapping|mapping\.weights|"
                            r"_LUTLayer__dummy_mapping|randperm)$")
_SAVE_HINT = ("save its state dict instead: torch.save(model.state_dict(), 'state.pt'), and the encoder's "
              "thresholds with numpy.save('th.npy', thermometer.thresholds.numpy())")


def _torch_load(path, what: str):
    """``torch.load(weights_only=True)`` with one-line errors; a pickled object is refused with a hint."""
    path = Path(path)
    if not path.exists():
        raise DwnHwError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise DwnHwError(f"{what} path {path} is a folder; give the file")
    if path.stat().st_size == 0:
        raise DwnHwError(f"{what} file {path} is empty; write it again (torch.save)")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: the error below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights" in str(exc).lower():
            raise DwnHwError(f"{path} holds a pickled Python object (a whole model?), which could run code "
                             f"when loaded and needs torch_dwn installed; {_SAVE_HINT}") from None
        raise DwnHwError(f"{path} is not a readable torch file ({str(exc).splitlines()[0][:120]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError) as exc:
        raise DwnHwError(f"{path} is truncated or not a torch file ({_reason(exc)}); write it again with "
                         "torch.save") from None


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception's message, for a one-line error."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text.split(". ")[0].rstrip(".")[:120]


_NPY_MAGIC = b"\x93NUMPY"


def read_array_file(path, what: str):
    """An array from a ``.npy`` or a ``torch.save`` file, refusing empty, JSON and text files with the fix."""
    path = Path(path)
    if not path.exists():
        raise DwnHwError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise DwnHwError(f"{what} path {path} is a folder; give the .npy or .pt file")
    with open(path, "rb") as f:
        head = f.read(64)
    save_hint = "write it with numpy.save('file.npy', array) or torch.save(tensor, 'file.pt')"
    if not head:
        raise DwnHwError(f"{what} file {path} is empty; {save_hint}")
    if head.startswith(_NPY_MAGIC):
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DwnHwError(f"cannot read {what} {path}: {_reason(exc)}; {save_hint}") from None
    if head.startswith(b"PK") or head[:1] == b"\x80":
        value = _torch_load(path, what)
        if isinstance(value, dict) and isinstance(value.get("thresholds"), torch.Tensor):
            value = value["thresholds"]
        if isinstance(value, dict):
            keys = ", ".join(map(str, list(value)[:5]))
            raise DwnHwError(f"{what} file {path} holds a dict ({keys}), not an array; {save_hint}")
        return value
    stripped = head.lstrip()
    kind = "JSON" if stripped[:1] in (b"[", b"{") else "text" if _is_text(head) else "not a .npy or torch file"
    raise DwnHwError(f"{what} file {path} is {kind if kind.startswith('not') else kind + ', not an array file'}; "
                     f"{save_hint}")


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _natural_key(module: str):
    return [int(p) if p.isdigit() else p for p in module.split(".")]


def _read_state_dict(state_dict) -> dict:
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = _torch_load(state_dict, "state dict")
    if isinstance(state_dict, torch.nn.Module):
        raise DwnHwError(f"got a {type(state_dict).__name__} module, not a state dict; {_SAVE_HINT}")
    if not isinstance(state_dict, dict):
        raise DwnHwError(f"a state dict is a dict of tensors, not {type(state_dict).__name__}; {_SAVE_HINT}")
    if state_dict.get("format") == "dwn-hw-checkpoint":
        raise DwnHwError("this is already a dwn-hw checkpoint: freeze it directly (dwn-hw freeze)")
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
            break
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise DwnHwError(f"state dict entry {bad[0]!r} is a {type(state_dict[bad[0]]).__name__}, not a tensor; "
                         f"{_SAVE_HINT}")
    return state_dict


def _parse_torch_dwn(sd: dict) -> tuple[list[dict], torch.Tensor | None]:
    """LUT layers (in module order) and a saved GroupSum permutation from a torch-dwn state dict."""
    modules: dict[str, dict] = {}
    perm = None
    for key, value in sd.items():
        m = _TORCH_DWN_KEY.match(key)
        if m is None:
            module = key.rsplit(".", 1)[0] if "." in key else key
            raise DwnHwError(f"state dict key {key!r} belongs to a module that is not a LUTLayer or GroupSum "
                             f"(module {module!r}); only nn.Sequential(LUTLayer..., GroupSum) with parameter-free "
                             "modules between them (Flatten) has an exact hardware form")
        if m["name"] == "randperm":
            perm = value
            continue
        modules.setdefault(m["module"], {})[m["name"]] = value
    if not modules:
        raise DwnHwError("the state dict has no LUT layers (no '<i>.luts' keys)")
    layers = []
    for module in sorted(modules, key=_natural_key):
        entry = modules[module]
        if "luts" not in entry:
            raise DwnHwError(f"module {module!r} has a mapping but no 'luts' tensor")
        if "mapping" not in entry and "mapping.weights" not in entry:
            raise DwnHwError(f"module {module!r} has neither 'mapping' nor 'mapping.weights'")
        layers.append({"module": module, **entry})
    return layers, perm


def _as_thresholds(thresholds) -> np.ndarray:
    if isinstance(thresholds, (str, os.PathLike)):
        thresholds = read_array_file(thresholds, "thresholds")
    if isinstance(thresholds, torch.Tensor):
        thresholds = thresholds.detach().cpu().numpy()
    th = np.asarray(thresholds)
    if th.dtype.kind not in "fiu":
        raise DwnHwError(f"thresholds must be numbers, not {th.dtype}")
    if th.ndim == 1:
        th = th[None, :]  # torch-dwn's non-feature-wise thermometer: one row for every feature
    if th.ndim != 2 or th.size == 0:
        raise DwnHwError(f"thresholds must be a float array [features, bits], not shape {list(th.shape)}")
    return th.astype(np.float32)


def suggest_input_bits(theta: np.ndarray, scale) -> str:
    """A hint naming the smallest grid that covers the thresholds (for the missing-grid error)."""
    s = np.asarray(scale, dtype=np.float64)
    lo = float(np.min(theta * (s[:, None] if s.ndim else s)))
    hi = float(np.max(theta * (s[:, None] if s.ndim else s)))
    signed = lo < 0
    bits = 1
    while bits < 32:
        qmin, qmax = grid_bounds(bits, signed)
        if qmin <= np.floor(lo) and np.ceil(hi) <= qmax:
            break
        bits += 1
    return f"{bits}{' (signed)' if signed else ''}"


def from_torch_dwn(state_dict, thresholds, num_classes, tau=1.0, randperm=None, input_scale=1.0,
                   input_bits=None):
    """Build a dwn-hw model from a torch-dwn ``nn.Sequential(LUTLayer..., GroupSum)`` state dict.

    torch_dwn need not be installed: the state dict is read by key (``<i>.luts``, ``<i>.mapping`` or
    ``<i>.mapping.weights``; prefixes such as ``body.0.luts`` and index gaps from Flatten are fine).

    Parameters
    ----------
    state_dict : dict or path
        The model's ``state_dict()`` (a pickled whole model is refused: it could run code).
    thresholds : array_like ``[F, T]`` or path (``.npy`` or ``.pt``)
        The fitted thermometer's float thresholds (torch-dwn does not save them with the model).
    num_classes : int
        The GroupSum's ``k`` (torch-dwn's GroupSum has no state).
    tau : float
        The GroupSum's temperature.
    randperm : array_like or None
        The GroupSum's permutation if it used one (torch-dwn does not save it).
    input_scale, input_bits : float or array_like ``[F]``, int
        The integer input grid: the model saw ``x = q / input_scale`` for ``input_bits``-wide integers
        ``q`` (signed when a threshold is negative). Required: float thresholds alone do not say which
        integers the hardware reads.

    Returns
    -------
    dwn_hw.train.checkpoint.Checkpoint
        ``.model``, ``.encoder``, ``.grid``, ``.meta`` like ``dwn_hw.load``; :func:`save_checkpoint` writes it.
    """
    from dwn_hw.train import arch as arch_mod
    from dwn_hw.train.checkpoint import Checkpoint, encoder_record
    from dwn_hw.train.grid import Grid
    from dwn_hw.nn import Thermometer

    sd = _read_state_dict(state_dict)
    layers, saved_perm = _parse_torch_dwn(sd)
    theta = _as_thresholds(thresholds)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise DwnHwError(f"num_classes must be a positive integer, not {show(num_classes)}")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
        raise DwnHwError(f"tau must be a positive number, not {show(tau)}")
    if input_bits is None:
        raise DwnHwError("float thresholds with no input grid: give input_bits (--input-bits) and, unless the data "
                         "are integers, input_scale (--input-scale); at scale "
                         f"{input_scale} these thresholds need --input-bits {suggest_input_bits(theta, input_scale)}")
    T = theta.shape[1]

    specs, state, prev = [], {}, None
    for i, layer in enumerate(layers):
        luts = layer["luts"].detach().to(torch.float32)
        if luts.dim() != 2 or luts.shape[1] < 2 or luts.shape[1] & (luts.shape[1] - 1):
            raise DwnHwError(f"{layer['module']}.luts has shape {list(luts.shape)}; expected [LUTs, 2**n]")
        N, n = luts.shape[0], luts.shape[1].bit_length() - 1
        if "mapping.weights" in layer:
            w = layer["mapping.weights"].detach().to(torch.float32)
            if w.dim() != 2 or w.shape[1] != N * n:
                raise DwnHwError(f"{layer['module']}.mapping.weights has shape {list(w.shape)}; expected "
                                 f"[inputs, {N * n}]")
            size_in = w.shape[0]
            state[f"{i}.mapping.weights"] = w
            kind = "learnable"
        else:
            mp = layer["mapping"].detach()
            if mp.is_floating_point() or tuple(mp.shape) != (N, n):
                raise DwnHwError(f"{layer['module']}.mapping has shape {list(mp.shape)} ({mp.dtype}); expected "
                                 f"integers [{N}, {n}]")
            if prev is not None:
                size_in = prev
            else:
                # a fixed first mapping does not say how many bits there are: the thresholds do
                features = theta.shape[0] if theta.shape[0] > 1 else -(-(int(mp.max()) + 1) // T)
                size_in = features * T
            state[f"{i}.mapping"] = mp.to(torch.int32)
            kind = "random"
        if prev is None:
            if size_in % T:
                raise DwnHwError(f"the first layer reads {size_in} bits, not a multiple of the {T} thresholds per "
                                 "feature")
        elif size_in != prev:
            raise DwnHwError(f"{layer['module']} reads {size_in} inputs but the layer before has {prev} outputs")
        if kind == "random" and int(state[f"{i}.mapping"].min()) < 0:
            raise DwnHwError(f"{layer['module']}.mapping holds a negative index {int(state[f'{i}.mapping'].min())}")
        if kind == "random" and int(state[f"{i}.mapping"].max()) >= size_in:
            raise DwnHwError(f"{layer['module']}.mapping reads input {int(state[f'{i}.mapping'].max())}, but there "
                             f"are only {size_in}")
        state[f"{i}.luts"] = luts
        specs.append({"input_size": int(size_in), "output_size": int(N), "n": int(n), "mapping": kind,
                      "ste": True, "clamp": True, "alpha": None, "beta": None, "tau": 0.001})
        prev = N

    F = specs[0]["input_size"] // T
    if theta.shape[0] not in (1, F):
        raise DwnHwError(f"thresholds have {theta.shape[0]} rows but the first layer reads {F} features x {T} bits")
    theta = np.array(np.broadcast_to(theta, (F, T)), dtype=np.float32)  # a writable copy
    perm = randperm if randperm is not None else saved_perm
    if perm is not None:
        perm = torch.as_tensor(np.asarray(perm.numpy() if isinstance(perm, torch.Tensor) else perm)).long().reshape(-1)
        if perm.numel() == 0:
            perm = None
        elif not torch.equal(torch.sort(perm).values, torch.arange(prev)):
            raise DwnHwError(f"randperm must be a permutation of 0..{prev - 1} (the last layer's outputs), "
                             f"not one of {perm.numel()} values")
    if num_classes > prev:
        raise DwnHwError(f"num_classes {num_classes} exceeds the last layer's {prev} outputs")
    uneven = arch_mod.group_split_note(prev, int(num_classes))
    if uneven:
        warn(f"{uneven}; the model is imported as it is")
    arch = {"num_inputs": int(F * T), "layers": specs,
            "groupsum": {"k": int(num_classes), "tau": float(tau), "randperm": perm is not None}}
    model = arch_mod.build(arch)
    if perm is not None:
        state[f"{len(specs)}.randperm"] = perm
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DwnHwError(f"the state dict does not fit: {str(exc).splitlines()[0][:200]}") from None
    model.eval()
    scale_arr = np.asarray(input_scale, dtype=np.float32)
    grid = Grid(float(scale_arr) if scale_arr.ndim == 0 else scale_arr, int(input_bits), bool((theta < 0).any()))
    encoder = Thermometer.from_state({"kind": "uniform", "num_bits": int(T), "feature_wise": True,
                                      "thresholds": torch.from_numpy(theta)})
    meta = {"architecture": arch, "encoder": encoder_record(encoder), "grid": grid.to_meta(),
            "classes": [str(c) for c in range(int(num_classes))], "tau": float(tau),
            "data": {"spec": None, "features": int(F)}, "metrics": {},
            "source": "torch-dwn state dict", "dwn_hw_version": __version__}
    return Checkpoint(model, encoder, grid, meta)


def save_checkpoint(ckpt, path, force: bool = False) -> None:
    """Write a checkpoint object (as :func:`from_torch_dwn` returns) so that ``dwn_hw.load`` reads it."""
    from dwn_hw.fsutil import check_new
    from dwn_hw.train.checkpoint import save_record

    check_new(path, force)
    record = {k: v for k, v in ckpt.meta.items() if k not in ("format", "format_version", "dwn_hw_version")}
    record["state_dict"] = {k: v.detach().cpu() for k, v in ckpt.model.state_dict().items()}
    save_record(record, path)


class _CallableModule(types.ModuleType):
    """``dwn_hw.freeze`` is both this module and the function: once ``import dwn_hw.freeze`` has run, the
    package attribute is the module, so the module forwards calls to :func:`freeze`."""

    def __call__(self, *args, **kwargs):
        return freeze(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
