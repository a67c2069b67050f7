"""Import a torch-dwn model: its state dict read by key (torch_dwn need not be installed).

:func:`from_torch_dwn` turns ``nn.Sequential(LUTLayer..., GroupSum)``'s state dict, the thermometer's
thresholds and the integer input grid into a dwn-hw checkpoint object; :func:`save_checkpoint` writes
it so that ``dwn_hw.load`` reads it and ``dwn-hw freeze`` freezes it. The readers here refuse pickled
objects (they could run code) and name the fix for every file they cannot read.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from dwn_hw import __version__
from dwn_hw.errors import DwnHwError, show, warn
from dwn_hw.ir.grid import grid_bounds


_TORCH_DWN_KEY = re.compile(r"^(?P<module>(?:.*\.)?\d+)\.(?P<name>luts|mapping|mapping\.weights|"
                            r"_LUTLayer__dummy_mapping|randperm)$")
_SAVE_HINT = ("save its state dict instead: torch.save(model.state_dict(), 'state.pt'), and the encoder's "
              "thresholds with numpy.save('th.npy', thermometer.thresholds.numpy())")


def torch_load(path, what: str):
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
        value = torch_load(path, what)
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


def read_state_dict(state_dict) -> dict:
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = torch_load(state_dict, "state dict")
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


def parse_torch_dwn(sd: dict) -> tuple[list[dict], torch.Tensor | None]:
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
    from dwn_hw.datasets.grid import Grid
    from dwn_hw.nn import Thermometer

    sd = read_state_dict(state_dict)
    layers, saved_perm = parse_torch_dwn(sd)
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
