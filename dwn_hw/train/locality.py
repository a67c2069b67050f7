"""Local mappings for image data sets (``dwn-hw train --receptive-field R``): wiring a placer can lay out.

A DWN's mappings decide its wiring. With torch-dwn's mappings every LUT of the first layer may read any pixel and
every LUT of a later layer reads six random LUTs of the layer before: a random graph, which no placement makes
short, and which is why large models route slowly on the ECP5 and not at all on the iCE40. Here every LUT gets a
place on the image instead:

- **first layer**: LUT ``j`` has a center pixel; the centers run along a Hilbert curve over the image's active
  box (the rows and columns whose pixels vary in the training data), evenly spaced, so LUTs with near indices sit
  near each other. Its inputs may only be thermometer bits of pixels at most ``R`` rows and columns from its
  center: a learnable mapping has every other input's weight set to ``MASKED`` (its softmax weight is zero and
  Adam's steps of ~lr cannot lift it), a random one draws from the patch.
- **later layers**: LUT ``j`` has an anchor on the same curve (in the last layer the anchors are interleaved
  over the classes, so that every class sees the whole image) and reads ``n`` distinct LUTs of the layer before
  among the ``fanin`` nearest to it, the least read first, so that every input stays in use. The default fanin,
  ``max(4n, 2 * inputs / anchors)``, lets the anchors' neighbourhoods cover the layer before about twice.

The mapping that comes out is an ordinary mapping (the IR does not change); what is recorded is how it was drawn.
"""
from __future__ import annotations

import numpy as np
import torch

from dwn_hw.errors import DwnHwError, show

MASKED = -1.0e9   # a learnable-mapping weight that can never win the argmax or take softmax weight


def hilbert_order(h: int, w: int) -> np.ndarray:
    """The pixels ``y * w + x`` of an ``h x w`` box in the order of a Hilbert curve over the enclosing
    power-of-two square (points outside the box are skipped, so neighbours on the list are near on the image)."""
    side = 1
    while side < max(h, w):
        side *= 2
    out = []
    for d in range(side * side):
        x = y = 0
        t, s = d, 1
        while s < side:                  # the classic d -> (x, y) walk
            rx = 1 & (t // 2)
            ry = 1 & (t ^ rx)
            if ry == 0:
                if rx == 1:
                    x, y = s - 1 - x, s - 1 - y
                x, y = y, x
            x += s * rx
            y += s * ry
            t //= 4
            s *= 2
        if y < h and x < w:
            out.append(y * w + x)
    return np.asarray(out, dtype=np.int64)


def active_box(x_train: np.ndarray, shape) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` (half-open): the rows and columns whose pixels vary over the training set by at least
    three tenths of the most varying pixel's spread (MNIST: rows 3..26, columns 4..24, of a mostly constant border)."""
    h, w = (int(v) for v in shape)
    std = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), h, w).std(axis=0)
    top = float(std.max())
    if top <= 0:
        raise DwnHwError("--receptive-field: every pixel is constant in the training data")
    rows = np.nonzero(std.max(axis=1) >= 0.3 * top)[0]
    cols = np.nonzero(std.max(axis=0) >= 0.3 * top)[0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def spread(count: int, box, shape) -> np.ndarray:
    """``count`` pixels of ``box`` evenly spaced along its Hilbert curve (pixel indices of the whole image)."""
    y0, y1, x0, x1 = box
    w = int(shape[1])
    order = hilbert_order(y1 - y0, x1 - x0)
    local = order[((np.arange(count) + 0.5) * len(order) / count).astype(np.int64)]
    bw = x1 - x0
    return (local // bw + y0) * w + (local % bw + x0)


def patch(center: int, shape, radius: int) -> np.ndarray:
    """The pixels at most ``radius`` rows and columns from ``center`` (clipped to the image)."""
    h, w = (int(v) for v in shape)
    cy, cx = divmod(int(center), w)
    ys = np.arange(max(0, cy - radius), min(h, cy + radius + 1))
    xs = np.arange(max(0, cx - radius), min(w, cx + radius + 1))
    return (ys[:, None] * w + xs[None, :]).reshape(-1)


def patch_bits(center: int, shape, radius: int, bits: int) -> np.ndarray:
    """The thermometer bits (feature-major: pixel ``p``'s bit ``b`` is input ``p * bits + b``) of a patch."""
    px = patch(center, shape, radius)
    return (px[:, None] * bits + np.arange(bits)[None, :]).reshape(-1)


def _coords(pixels: np.ndarray, shape) -> np.ndarray:
    w = int(shape[1])
    return np.stack([pixels // w, pixels % w], axis=1).astype(np.float64)


def anchors(count: int, box, shape, classes: int | None = None) -> np.ndarray:
    """Anchor pixels of a later layer: spread over the box; in the last layer (``classes`` given) LUT ``j`` of
    class ``j // g`` takes the anchor of its rank ``j % g`` in its group, so each class covers the whole box."""
    if not classes:
        return spread(count, box, shape)
    g = -(-count // classes)
    per = spread(g, box, shape)
    return per[np.arange(count) % g]


def draw(candidates: list[np.ndarray], n: int, usage: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """For each LUT, ``n`` distinct inputs from its candidates: the least read so far first, ties at random.
    ``usage`` (reads per input) is updated in place. Returns int32 ``[len(candidates), n]``."""
    out = np.empty((len(candidates), n), dtype=np.int32)
    for j, cand in enumerate(candidates):
        if len(cand) < n:
            raise DwnHwError(f"--receptive-field: a LUT has only {len(cand)} inputs to choose {n} from; "
                             "use a larger radius or --local-fanin")
        key = usage[cand] + gen.random(len(cand))
        pick = cand[np.argsort(key, kind="stable")[:n]]
        usage[pick] += 1
        out[j] = pick
    return out


def nearest(prev_pos: np.ndarray, pos: np.ndarray, fanin: int, gen: np.random.Generator) -> list[np.ndarray]:
    """For each position, the indices of the ``fanin`` nearest previous positions (ties at random)."""
    fanin = min(fanin, len(prev_pos))
    out = []
    for p in pos:
        d = ((prev_pos - p) ** 2).sum(axis=1) + 1e-6 * gen.random(len(prev_pos))
        out.append(np.argpartition(d, fanin - 1)[:fanin])
    return out


def default_fanin(n: int, inputs: int, anchors: int) -> int:
    """Nearest inputs a later LUT chooses among, unless ``--local-fanin`` says: ``max(4n, ceil(2 * inputs /
    anchors))``, so that the distinct anchors' neighbourhoods cover the layer before about twice over."""
    return max(4 * int(n), -(-2 * int(inputs) // max(1, int(anchors))))


def check(radius, fanin, image_shape, layers, n) -> None:
    """Refuse options the data set or architecture cannot take (one line each)."""
    if radius is None:
        if fanin is not None:
            raise DwnHwError("--local-fanin sets the later layers of --receptive-field; give --receptive-field too")
        return
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise DwnHwError(f"--receptive-field must be a non-negative integer, not {show(radius)}")
    if not image_shape:
        raise DwnHwError("--receptive-field places LUTs on an image; this data set's features are not the pixels "
                         "of an image (use digits, mnist or fashion-mnist)")
    if fanin is not None and (isinstance(fanin, bool) or not isinstance(fanin, int) or fanin < max(n)):
        raise DwnHwError(f"--local-fanin must be an integer of at least n = {max(n)}, not {show(fanin)}")


def apply(model, image_shape, bits: int, x_train, radius: int, fanin: int | None, seed: int,
          num_classes: int) -> dict:
    """Make ``model``'s mappings local (fresh models only: it rewrites random mappings and masks the learnable
    one's weights). Returns the record kept in the checkpoint (``hardware["locality"]``)."""
    from dwn_hw.nn import LUTLayer

    layers = [m for m in model if isinstance(m, LUTLayer)]
    shape = [int(v) for v in image_shape]
    box = active_box(x_train, shape)
    gen = np.random.default_rng([int(seed), 0x10CA1])
    first = layers[0]
    centers = spread(first.output_size, box, shape)
    cands = [patch_bits(c, shape, radius, bits) for c in centers]
    if first.learnable:
        w = first.mapping.weights
        with torch.no_grad():
            keep = torch.zeros(w.shape, dtype=torch.bool)
            for j, cand in enumerate(cands):
                keep[torch.from_numpy(cand), j * first.n:(j + 1) * first.n] = True
            w.masked_fill_(~keep.to(w.device), MASKED)
        first.mapping.invalidate_hard_mapping()
    else:
        usage = np.zeros(first.input_size, dtype=np.int64)
        first.mapping.copy_(torch.from_numpy(draw(cands, first.n, usage, gen)))
    pos, fans = _coords(centers, shape), []
    for i, layer in enumerate(layers[1:], start=1):
        last = i == len(layers) - 1
        anc = anchors(layer.output_size, box, shape, num_classes if last else None)
        here = _coords(anc, shape)
        fan = int(fanin) if fanin is not None else default_fanin(layer.n, layer.input_size, len(set(anc.tolist())))
        fans.append(fan)
        usage = np.zeros(layer.input_size, dtype=np.int64)
        layer.mapping.copy_(torch.from_numpy(draw(nearest(pos, here, fan, gen), layer.n, usage, gen)))
        pos = here
    return {"radius": int(radius), "fanin": fans, "box": list(box), "image_shape": shape,
            "first_layer_centers": [int(c) for c in centers]}


def check_first_layer(mapping, centers, image_shape, radius: int, bits: int) -> int:
    """How many LUTs of a first-layer mapping ``[N, n]`` read a bit outside their patch (0 when local)."""
    bad = 0
    for row, c in zip(mapping, centers):
        if not np.isin(np.asarray(row), patch_bits(int(c), image_shape, radius, bits)).all():
            bad += 1
    return bad


def model_outside_patches(model, rec: dict, bits: int) -> int:
    """:func:`check_first_layer` of ``model``'s first layer under the checkpoint's ``hardware["locality"]``."""
    rows = model[0].hard_mapping().cpu().tolist()
    return check_first_layer(rows, rec["first_layer_centers"], rec["image_shape"], int(rec["radius"]), int(bits))
