"""dwn-hw: Differentiable Weightless Neural Networks from training to bit-exact FPGA hardware.

``import dwn_hw as dwn`` gives torch-dwn's layer API (Thermometer, LUTLayer, GroupSum, ...).
Hardware-side modules (``dwn_hw.ir``, ``dwn_hw.hdl``, ``dwn_hw.synth``) never import torch;
this top-level import loads the torch side lazily so that an IR-only user does not pay for it.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it (imported on first access)
_LAZY = {
    "Thermometer": "dwn_hw.nn",
    "DistributiveThermometer": "dwn_hw.nn",
    "GaussianThermometer": "dwn_hw.nn",
    "LUTLayer": "dwn_hw.nn",
    "LearnableMapping": "dwn_hw.nn",
    "GroupSum": "dwn_hw.nn",
    "freeze": "dwn_hw.freeze",
    "from_torch_dwn": "dwn_hw.freeze",
    "load": "dwn_hw.train.checkpoint",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dwn_hw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
