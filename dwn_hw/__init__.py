"""dwn-hw: Differentiable Weightless Neural Networks from training to bit-exact FPGA hardware.

``import dwn_hw as dwn`` gives torch-dwn's layer API (Thermometer, LUTLayer, GroupSum, ...),
``dwn.load`` (a checkpoint) and ``dwn.from_torch_dwn``; ``from dwn_hw.freeze import freeze`` turns a
model into an IR. The torch wing (``dwn_hw.nn``, ``dwn_hw.cuda``, ``dwn_hw.train``, ``dwn_hw.freeze``)
is loaded lazily here, so an IR-only user of the hardware wing (``dwn_hw.ir``, ``dwn_hw.hdl``,
``dwn_hw.synth``, ...) and of ``dwn_hw.datasets`` never imports torch.
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
    "from_torch_dwn": "dwn_hw.freeze.torch_dwn",
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
