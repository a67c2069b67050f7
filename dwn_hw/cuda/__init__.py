"""CUDA back end of the LUT layers: EFD forward/backward kernels in plain CUDA C++ (``*.cu``).

The extension is built on first use with ``torch.utils.cpp_extension`` (see :mod:`dwn_hw.cuda.loader`).
:mod:`dwn_hw.cuda.ops` has the same functions as the CPU back end (:mod:`dwn_hw.nn.cpu`); the layers reach
it through :mod:`dwn_hw.nn.backend` for CUDA tensors. Importing this package never builds anything.
"""
from __future__ import annotations

from . import loader


def available() -> bool:
    """Whether the CUDA kernels can be used: CUDA is present and the extension builds (first call builds it).

    False, without raising, on a machine without CUDA; :func:`unavailable_reason` then says why.
    """
    return loader.load() is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is false (``None`` when it is true or was not asked yet)."""
    return loader.error()


__all__ = ["available", "unavailable_reason"]
