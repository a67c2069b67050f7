"""Training: offline data sets on an integer grid, the training loop, self-contained checkpoints.

``dwn-hw train`` is :data:`dwn_hw.train.cli.train`; ``torchrun -m dwn_hw.train`` runs it on several
processes. :func:`dwn_hw.load` reads a checkpoint (:func:`dwn_hw.train.checkpoint.load`).
"""
