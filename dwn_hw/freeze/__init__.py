"""The torch side of the one door: a trained model (or a torch-dwn state dict) becomes an IR.

- :mod:`dwn_hw.freeze.model`: model or checkpoint -> IR (:func:`freeze`), checked against the PyTorch
  forward (:func:`check_against_torch`), and what an export bundle needs from a checkpoint
  (:func:`bundle_inputs`);
- :mod:`dwn_hw.freeze.torch_dwn`: a torch-dwn state dict -> a dwn-hw checkpoint (:func:`from_torch_dwn`,
  :func:`save_checkpoint`);
- :mod:`dwn_hw.freeze.cli`: ``dwn-hw freeze``, ``dwn-hw import-torch-dwn`` and the checkpoint side of
  ``info`` and ``eval``.

``from dwn_hw.freeze import freeze`` gives the function. The names below are looked up on first use,
so ``dwn_hw.freeze.cli`` (which also freezes IR files, a torch-free job) imports torch only when a
command needs it.
"""
from __future__ import annotations

import importlib

# name -> submodule that defines it (imported on first access)
_EXPORTS = {
    "freeze": "model",
    "freeze_checked": "model",
    "build_ir": "model",
    "check_against_torch": "model",
    "torch_scores": "model",
    "edge_inputs": "model",
    "recorded_test_set": "model",
    "bundle_inputs": "model",
    "from_torch_dwn": "torch_dwn",
    "save_checkpoint": "torch_dwn",
    "read_array_file": "torch_dwn",
    "read_state_dict": "torch_dwn",
    "parse_torch_dwn": "torch_dwn",
    "torch_load": "torch_dwn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dwn_hw.freeze' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
