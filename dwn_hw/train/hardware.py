"""Hardware-aware training options: start from a trained checkpoint, place thresholds on cheap comparisons,
cap the encoder bits the learnable mapping reads (``docs/checkpoint.md``, "Hardware-aware options").

- ``--init-from CKPT``: the run starts from another checkpoint's LUT tables, mapping weights and (unless
  ``--init-encoder refit``) encoder thresholds, e.g. to fine-tune an 8-bit model on a narrower ``--input-bits``
  grid. Architectures must agree exactly; the source's path and sha256 are recorded.
- ``--threshold-bits K``: after the thresholds are fitted (or taken over), each one is moved so that the
  comparison ``q > t`` on the ``B``-bit grid reads only the top ``K`` bits (``t + 1`` a multiple of
  ``2^(B−K)``; :func:`dwn_hw.ir.grid.snap_thresholds`). The float threshold becomes exactly ``x(t)``, so the
  frozen IR has the same integer thresholds.
- ``--max-input-bits M``: after ``--cap-warmup`` epochs, the first layer's learnable mapping keeps the ``M``
  encoder bits its argmax reads most often (ties: the larger best weight) and may read only those from then on
  (:meth:`dwn_hw.nn.LearnableMapping.restrict_inputs`). Usage, not a penalty: it is the quantity hardware pays
  for (one comparator per read bit), it needs no extra hyper-parameter to reach an exact budget, and the
  masked slots fall to their best allowed input, which the remaining epochs then train.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from dwn_hw.errors import DwnHwError, show
from dwn_hw.ir.grid import grid_thresholds, grid_x, snap_thresholds, threshold_read_bits

INIT_ENCODERS = ("keep", "refit")
# options an --init-from run takes from its source unless given: the architecture, and the seed and
# validation fraction (they decide which training samples are held out, so the source never trained on them)
ARCH_OPTIONS = ("encoder", "bits", "layers", "n", "mapping", "tau", "val_split", "seed", "receptive_field",
                "local_fanin")


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_source(path) -> tuple[dict, dict]:
    """(record, init meta ``{path, sha256, epochs, test_accuracy}``) of an ``--init-from`` checkpoint."""
    from dwn_hw.train import checkpoint as ckpt

    rec = ckpt.read_record(path)
    metrics = rec.get("metrics") or {}
    meta = {"path": os.path.abspath(str(path)), "sha256": file_sha256(path), "epochs": metrics.get("epochs"),
            "test_accuracy": metrics.get("test_accuracy")}
    return rec, meta


def check_compatible(src: dict, arch: dict, features: int, num_classes: int, path) -> None:
    """Refuse (one line) a source whose architecture, features or classes differ from this run's."""
    sa = src["architecture"]
    src_features = (src.get("data") or {}).get("features")
    if src_features is not None and int(src_features) != int(features):
        raise DwnHwError(f"--init-from {path} was trained on {src_features} features; this data set has {features}")
    if int(sa["groupsum"]["k"]) != int(num_classes):
        raise DwnHwError(f"--init-from {path} has {sa['groupsum']['k']} classes; this data set has {num_classes}")
    if int(sa["num_inputs"]) != int(arch["num_inputs"]):
        raise DwnHwError(f"--init-from {path} reads {sa['num_inputs']} encoder bits; this run {arch['num_inputs']} "
                         "(--bits differs)")
    if len(sa["layers"]) != len(arch["layers"]):
        raise DwnHwError(f"--init-from {path} has {len(sa['layers'])} LUT layers; this run {len(arch['layers'])}")
    for i, (a, b) in enumerate(zip(sa["layers"], arch["layers"])):
        for key in ("input_size", "output_size", "n", "mapping"):
            if a[key] != b[key]:
                raise DwnHwError(f"--init-from {path}: layer {i} has {key} {a[key]!r}, this run {b[key]!r}")


def source_locality(src: dict, cfg) -> dict:
    """The ``--init-from`` source's local-mapping record; refuses a source drawn otherwise (its mappings are
    trained weights: redrawing them would throw the training away)."""
    opts = src.get("options") or {}
    rec = (src.get("hardware") or {}).get("locality")
    mine = (cfg.receptive_field, cfg.local_fanin)
    theirs = (opts.get("receptive_field"), opts.get("local_fanin"))
    if rec is None or mine != theirs:
        said = "global mappings" if rec is None else f"--receptive-field {theirs[0]} --local-fanin {theirs[1]}"
        raise DwnHwError(f"--init-from: the source was trained with {said}; --receptive-field cannot redraw a "
                         "trained model's mappings (train afresh, or start from a source with the same options)")
    return dict(rec)


def init_arch(src: dict, arch: dict) -> dict:
    """This run's architecture, with the source's learnt settings (alpha, beta, a recorded input cap)."""
    out = {**arch, "layers": [dict(s) for s in arch["layers"]]}
    for mine, theirs in zip(out["layers"], src["architecture"]["layers"]):
        for key in ("alpha", "beta", "ste", "clamp", "tau", "allowed_inputs"):
            if key in theirs:
                mine[key] = theirs[key]
    return out


def load_weights(model, src: dict, path) -> None:
    try:
        model.load_state_dict(src["state_dict"])
    except RuntimeError as exc:
        line = str(exc).strip().splitlines()
        raise DwnHwError(f"--init-from {path}: its weights do not fit this model "
                         f"({(line[1] if len(line) > 1 else line[0]).strip()[:160]})") from None


# ------------------------------------------------------------------------------------------- thresholds

def place_thresholds(encoder, grid, k: int) -> dict:
    """Move ``encoder``'s float thresholds so that each comparison on ``grid`` reads the top ``k`` bits.

    Returns a report: ``moved`` (thresholds that changed on the grid), ``of`` (all), ``max_read_bits``.
    """
    theta = encoder.thresholds.detach().cpu().to(torch.float32).numpy()
    scale = np.asarray(grid.scale_array(), dtype=np.float32)
    F = int(scale.size) if scale.ndim else theta.shape[0]
    theta = np.array(np.broadcast_to(theta, (F, theta.shape[1])), dtype=np.float32)
    B, signed = int(grid.input_bits), bool(grid.signed)
    before = grid_thresholds(theta, scale, B, signed)
    after = snap_thresholds(before, B, signed, k)
    s = (np.full(F, scale, np.float32) if scale.ndim == 0 else scale)[:, None]
    changed = after != before
    theta[changed] = grid_x(after, s)[changed]          # x(t) exactly: the largest grid value <= it is t
    check = grid_thresholds(theta, scale, B, signed)
    if not np.array_equal(check, after):
        f, j = (int(v) for v in np.argwhere(check != after)[0])
        raise DwnHwError(f"--threshold-bits {k}: threshold [{f}][{j}] cannot be placed at {int(after[f, j])} on this "
                         "grid (two grid values share one float value)")
    encoder.thresholds = torch.from_numpy(theta).contiguous()
    read = threshold_read_bits(after, B, signed)
    return {"moved": int(changed.sum()), "of": int(changed.size), "max_read_bits": int(read.max())}


# ------------------------------------------------------------------------------------------- input cap

def apply_input_cap(model, arch: dict, m: int) -> dict:
    """Restrict the first layer's learnable mapping to the ``m`` inputs it reads most; records the kept
    indices in ``arch`` (``layers[0]["allowed_inputs"]``). Returns ``{kept, read_before, read_after}``."""
    layer = model[0]
    if not getattr(layer, "learnable", False):
        raise DwnHwError("--max-input-bits needs a learnable mapping in the first layer (--mapping learnable)")
    mapping = layer.mapping
    usage = mapping.input_usage()
    best = mapping.weights.detach().cpu().max(dim=1).values
    # rank by usage, then by the best weight (squashed to (0, 1) so it only breaks ties)
    score = usage.to(torch.float64) + torch.sigmoid(best.to(torch.float64)) * 0.5
    keep = torch.sort(torch.topk(score, min(int(m), mapping.input_size)).indices).values
    before = int((usage > 0).sum())
    mapping.restrict_inputs(keep)
    after = int((mapping.input_usage() > 0).sum())
    arch["layers"][0]["allowed_inputs"] = [int(v) for v in keep]
    return {"kept": int(len(keep)), "read_before": before, "read_after": after}


def check_options(cfg) -> None:
    """One-line errors for bad hardware-aware option values (called by ``TrainConfig.check``)."""
    if cfg.init_encoder not in INIT_ENCODERS:
        raise DwnHwError(f"--init-encoder must be keep or refit, not {cfg.init_encoder!r}")
    if cfg.init_encoder == "refit" and not cfg.init_from:
        raise DwnHwError("--init-encoder refit needs --init-from (a fresh run always fits its thresholds)")
    if cfg.threshold_bits is not None and (isinstance(cfg.threshold_bits, bool) or not isinstance(cfg.threshold_bits, int)
                                           or not 1 <= cfg.threshold_bits <= 32):
        raise DwnHwError(f"--threshold-bits must be in 1..32, not {show(cfg.threshold_bits)}")
    m = cfg.max_input_bits
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise DwnHwError(f"--max-input-bits must be a positive integer, not {show(m)}")
    w = cfg.cap_warmup
    if isinstance(w, bool) or not isinstance(w, int) or w < 0:
        raise DwnHwError(f"--cap-warmup must be a non-negative integer, not {show(w)}")
    if m is not None:
        if cfg.mapping != "learnable":
            raise DwnHwError("--max-input-bits needs --mapping learnable (a random mapping has no weights to rank)")
        if w == 0 and not cfg.init_from:
            raise DwnHwError("--cap-warmup 0 needs --init-from (untrained mapping weights say nothing about the bits)")
        if w >= cfg.epochs:
            raise DwnHwError(f"--cap-warmup {w} leaves no epoch after the cap (--epochs {cfg.epochs})")
