"""Training: the torch-facing side of the data (tensors, augmentation), the loop, self-contained checkpoints.

The data sets themselves (read into numpy, on an integer grid) are :mod:`dwn_hw.datasets`.

``dwn-hw train`` is :data:`dwn_hw.train.cli.train`; ``torchrun -m dwn_hw.train`` runs it on several
processes. :func:`dwn_hw.load` reads a checkpoint (:func:`dwn_hw.train.checkpoint.load`).
"""
