"""Training-time augmentation: random translations of image inputs (``dwn-hw train --shift N``).

A DWN that reads 2,000 x 6 thermometer bits of MNIST fits its training set exactly within 16 epochs
(100 % train accuracy) and stops improving on the test set; moving each training image by a random
whole-pixel offset in ``-N..N`` along each axis gives it new samples every epoch. Only the training
batches are moved: the encoder's thresholds, the test set and everything frozen are untouched.
"""
from __future__ import annotations

import torch

from dwn_hw.errors import DwnHwError, show


def check_shift(shift: int, image_shape) -> None:
    """Refuse a shift the data set cannot take (not an image, or as wide as the image)."""
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise DwnHwError(f"--shift must be a non-negative integer, not {show(shift)}")
    if shift and not image_shape:
        raise DwnHwError("--shift moves images; this data set's features are not the pixels of an image "
                         "(use digits, mnist or fashion-mnist)")
    if shift and shift >= min(image_shape):
        raise DwnHwError(f"--shift {shift} is not smaller than the {image_shape[0]}x{image_shape[1]} image")


def draw_offsets(n: int, shift: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random (dy, dx) pairs in ``-shift..shift`` as an int64 tensor [n, 2]. Drawn for a whole
    global batch, so that every DDP process consumes the generator alike and takes its own rows."""
    return torch.randint(-shift, shift + 1, (n, 2), generator=generator)


def shift_images(x: torch.Tensor, image_shape, offsets: torch.Tensor, fill: float) -> torch.Tensor:
    """Row ``b`` of ``x`` ([B, H*W], pixels row by row) moved by ``offsets[b] = (dy, dx)``; pixels
    moved in from outside the image take the value ``fill``.

    ``out[b, i, j] = x[b, i - dy, j - dx]`` where that pixel exists, else ``fill``.
    """
    shift = int(offsets.abs().max()) if offsets.numel() else 0
    if shift == 0:
        return x
    h, w = int(image_shape[0]), int(image_shape[1])
    b = x.shape[0]
    img = x.reshape(b, h, w)
    padded = torch.full((b, h + 2 * shift, w + 2 * shift), fill, dtype=x.dtype, device=x.device)
    padded[:, shift:shift + h, shift:shift + w] = img
    off = offsets.to(x.device).T
    rows = (shift - off[0])[:, None] + torch.arange(h, device=x.device)[None, :]  # [B, H]
    cols = (shift - off[1])[:, None] + torch.arange(w, device=x.device)[None, :]  # [B, W]
    out = padded[torch.arange(b, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(b, h * w)
