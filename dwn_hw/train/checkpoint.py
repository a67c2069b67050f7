"""Self-contained checkpoints: one file holds everything from the grid to the last LUT.

The file is a ``torch.save`` of a dict made only of tensors, dicts, lists, str, int, float, bool
and None, so ``torch.load(path, weights_only=True)`` reads it and nothing in it can run code.
See ``docs/checkpoint.md`` for the fields. :func:`load` (also ``dwn_hw.load``) rebuilds the model
and the encoder.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dwn_hw import __version__
from dwn_hw.errors import DwnHwError, show
from dwn_hw.fsutil import atomic_write_bytes
from dwn_hw.train import arch as arch_mod
from dwn_hw.datasets.grid import Grid

FORMAT = "dwn-hw-checkpoint"
FORMAT_VERSION = 1
ENCODERS = {"uniform": "Thermometer", "distributive": "DistributiveThermometer",
            "gaussian": "GaussianThermometer"}


def make_encoder(kind: str, num_bits: int, feature_wise: bool = True):
    """A fresh (unfitted) encoder of ``kind`` (uniform, distributive or gaussian)."""
    import dwn_hw.nn as dnn

    if kind not in ENCODERS:
        raise DwnHwError(f"encoder must be one of {', '.join(ENCODERS)}, not {kind!r}")
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or num_bits < 1:
        raise DwnHwError(f"encoder bits must be a positive integer, not {show(num_bits)}")
    return getattr(dnn, ENCODERS[kind])(num_bits=num_bits, feature_wise=feature_wise)


def encoder_record(encoder) -> dict:
    """The encoder as checkpoint data: kind, num_bits, feature_wise and the fitted thresholds [F, T]."""
    if encoder.thresholds is None:
        raise DwnHwError("the encoder has not been fitted; nothing to save")
    state = encoder.get_state()
    if state.get("kind") not in ENCODERS:
        raise DwnHwError(f"cannot save an encoder of kind {state.get('kind')!r}")
    state["thresholds"] = state["thresholds"].to(torch.float32).contiguous()
    return state


def encoder_from_record(rec: dict):
    from dwn_hw.nn import Thermometer

    if not isinstance(rec, dict) or not isinstance(rec.get("thresholds"), torch.Tensor):
        raise DwnHwError("checkpoint encoder lacks its thresholds tensor")
    try:
        return Thermometer.from_state(rec)
    except KeyError as exc:
        raise DwnHwError(f"checkpoint encoder lacks {exc.args[0]!r}") from None


@dataclass
class Checkpoint:
    """A loaded model: ``model`` (LUT layers + GroupSum), ``encoder``, ``grid`` and ``meta``.

    ``meta`` holds the recorded plain data: ``format_version``, ``architecture``, ``encoder``
    (kind, num_bits, feature_wise; thresholds as a tensor), ``grid``, ``classes``, ``tau``,
    ``data``, ``seed``, ``metrics``, ``options``, ``dwn_hw_version``.
    """

    model: torch.nn.Sequential
    encoder: object
    grid: Grid
    meta: dict

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def tau(self) -> float:
        return float(self.meta["tau"])

    def x_from_q(self, q) -> torch.Tensor:
        """Grid integers to model inputs exactly as the hardware contract says: float32(q)/float32(scale)."""
        q = torch.as_tensor(np.asarray(q, dtype=np.int64))
        scale = torch.as_tensor(self.grid.scale_array())
        return q.to(torch.float32) / scale

    @torch.no_grad()
    def forward_q(self, q, batch_size: int = 4096) -> torch.Tensor:
        """Float scores (popcount / tau) ``[N, K]`` for grid integers ``q`` (int64 ``[N, F]``)."""
        q = np.asarray(q)
        if q.ndim != 2 or q.shape[1] != self.meta["data"]["features"]:
            raise DwnHwError(f"inputs must have shape [N, {self.meta['data']['features']}], not {list(q.shape)}")
        self.grid.check(q)
        self.model.eval()
        dev = next(self.model.parameters()).device
        outs = []
        for i in range(0, len(q), batch_size):
            x = self.x_from_q(q[i:i + batch_size]).to(dev)
            outs.append(self.model(self.encoder.binarize(x)).cpu())
        return torch.cat(outs) if outs else torch.zeros(0, len(self.classes))

    def predict_q(self, q) -> np.ndarray:
        """Predicted classes (lowest index among the highest scores)."""
        return self.forward_q(q).argmax(dim=1).numpy()

    def scores_q(self, q) -> np.ndarray:
        """Integer scores (group popcounts) ``[N, K]`` int64, checking they are integers."""
        s = self.forward_q(q).double() * self.tau
        r = torch.round(s)
        if s.numel() and (s - r).abs().max() >= 1e-3:
            raise DwnHwError("scores are not integer popcounts; the model is not exportable as is")
        return r.to(torch.int64).numpy()


def to_bytes(record: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(record, buf)
    return buf.getvalue()


def save_record(record: dict, path: str | os.PathLike) -> None:
    """Write a checkpoint dict atomically (a crash leaves the previous file whole)."""
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "dwn_hw_version": __version__, **record}
    atomic_write_bytes(path, to_bytes(record))


def read_record(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict, or a one-line :class:`DwnHwError` for anything that is not one we read."""
    path = Path(path)
    if not path.exists():
        raise DwnHwError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise DwnHwError(f"checkpoint {path} is a folder, not a file")
    if path.stat().st_size == 0:
        raise DwnHwError(f"checkpoint {path} is empty (an interrupted copy?); train or copy it again")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: the error below says it all
            warnings.simplefilter("ignore")
            rec = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise DwnHwError(f"refusing {path}: it holds Python objects that could run code when loaded "
                             "(not a dwn-hw checkpoint)") from None
        raise DwnHwError(f"{path} is truncated or not a checkpoint ({_first_line(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError) as exc:
        raise DwnHwError(f"{path} is truncated or not a checkpoint ({_first_line(exc)})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise DwnHwError(f"{path} is not a dwn-hw checkpoint (a torch-dwn model? see `dwn-hw import-torch-dwn`)")
    version = rec.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DwnHwError(f"{path} has no valid format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise DwnHwError(f"{path} has checkpoint format version {version}; this dwn-hw ({__version__}) reads "
                         f"up to {FORMAT_VERSION}: upgrade dwn-hw")
    for key in ("architecture", "encoder", "grid", "classes", "tau", "data", "state_dict"):
        if key not in rec:
            raise DwnHwError(f"checkpoint {path} lacks {key!r}")
    return rec


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def meta_of(rec: dict) -> dict:
    """Everything but the weights and the resume state."""
    return {k: v for k, v in rec.items() if k not in ("state_dict", "train_state")}


def from_record(rec: dict, device: str | torch.device = "cpu") -> Checkpoint:
    model = arch_mod.build(rec["architecture"])
    try:
        model.load_state_dict(rec["state_dict"])
    except RuntimeError as exc:
        raise DwnHwError(f"checkpoint weights do not fit its architecture: {_first_line(exc)}") from None
    model.to(device).eval()
    encoder = encoder_from_record(rec["encoder"])
    return Checkpoint(model, encoder, Grid.from_meta(rec["grid"]), meta_of(rec))


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a dwn-hw checkpoint: ``.model``, ``.encoder``, ``.grid``, ``.meta`` and ``.forward_q(q)``."""
    return from_record(read_record(path), device)
