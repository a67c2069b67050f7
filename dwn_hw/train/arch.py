"""Architectures as plain data: what a checkpoint records and what :func:`build` turns into modules.

An architecture is a dict ``{"num_inputs": I, "layers": [layer spec, ...], "groupsum": {...}}``;
a layer spec holds ``input_size, output_size, n, mapping ("learnable"|"random"|"arange"), ste,
clamp, alpha, beta, tau`` (``tau`` is the learnable mapping's softmax temperature; optionally
``allowed_inputs``, the inputs a capped learnable mapping may read) and the group
sum ``k, tau, randperm``. Only str/int/float/bool/None inside, so ``torch.load(weights_only=True)``
reads it.
"""
from __future__ import annotations

from dwn_hw.errors import DwnHwError, show, warn

MAPPINGS = ("learnable", "random", "arange")


def make_arch(num_inputs: int, layers: list[int], n: list[int] | int, num_classes: int,
              tau: float, first_mapping: str = "learnable", lm_tau: float = 0.001) -> dict:
    """The architecture dict for ``layers`` LUT counts after an encoder with ``num_inputs`` bits.

    ``n`` is one LUT width for every layer or one per layer. The first layer's mapping is
    ``first_mapping``; later layers use fixed random mappings, as in torch-dwn's examples.
    """
    if not layers:
        raise DwnHwError("--layers needs at least one layer, e.g. 600,300")
    for size in layers:
        if size <= 0:
            raise DwnHwError(f"layer sizes must be positive, not {show(size)}")
    ns = [int(n)] * len(layers) if isinstance(n, int) else [int(v) for v in n]
    if len(ns) == 1 and len(layers) > 1:
        ns = ns * len(layers)
    if len(ns) != len(layers):
        raise DwnHwError(f"--n has {len(ns)} values for {len(layers)} layers; give one or one per layer")
    for v in ns:
        if not 1 <= v <= 12:
            raise DwnHwError(f"LUT inputs n must be in 1..12, not {show(v)}")
    if first_mapping not in MAPPINGS:
        raise DwnHwError(f"mapping must be one of {', '.join(MAPPINGS)}, not {first_mapping!r}")
    if layers[-1] < num_classes:
        raise DwnHwError(f"the last layer has {layers[-1]} LUTs, fewer than the {num_classes} classes")
    if not tau > 0:
        raise DwnHwError(f"--tau must be positive, not {show(tau)}")
    sizes = group_sizes(layers[-1], num_classes)
    if min(sizes) == 0:
        empty = [c for c, s in enumerate(sizes) if s == 0]
        raise DwnHwError(f"{layers[-1]} LUTs in groups of {sizes[0]} leave classes {empty[0]}..{empty[-1]} of "
                         f"{num_classes} without a LUT (they could never score); use a multiple of {num_classes} "
                         f"LUTs in the last layer, e.g. {-(-layers[-1] // num_classes) * num_classes}")
    note = group_split_note(layers[-1], num_classes)
    if note:
        warn(f"{note}; change the last of --layers for even groups")
    specs, size_in = [], int(num_inputs)
    for i, (size, width) in enumerate(zip(layers, ns)):
        specs.append({"input_size": size_in, "output_size": int(size), "n": width,
                      "mapping": first_mapping if i == 0 else "random", "ste": True, "clamp": True,
                      "alpha": None, "beta": None, "tau": float(lm_tau)})
        size_in = int(size)
    return {"num_inputs": int(num_inputs), "layers": specs,
            "groupsum": {"k": int(num_classes), "tau": float(tau), "randperm": False}}


def group_sizes(outputs: int, k: int) -> list[int]:
    """LUTs per class of GroupSum(k) over ``outputs`` bits: zero-padded to a multiple of k, contiguous groups."""
    g = -(-int(outputs) // int(k))
    return [max(0, min(g, int(outputs) - c * g)) for c in range(int(k))]


def group_split_note(outputs: int, k: int) -> str | None:
    """None when ``outputs`` split evenly into ``k`` class groups, else a sentence with the group sizes."""
    sizes = group_sizes(outputs, k)
    if len(set(sizes)) == 1:
        return None
    g, short = sizes[0], [c for c, s in enumerate(sizes) if s < sizes[0]]
    span = f"class {short[0]}" if len(short) == 1 else f"classes {short[0]}..{short[-1]}"
    return (f"the last layer's {outputs} LUTs do not split evenly into {k} classes: classes 0..{short[0] - 1} get "
            f"{g} LUTs each, {span} {'gets' if len(short) == 1 else 'get'} {'/'.join(str(sizes[c]) for c in short[:3])}{'...' if len(short) > 3 else ''} "
            f"(zero-padded, so their scores top out lower); {-(-outputs // k) * k} or {outputs // k * k} LUTs "
            "would split evenly")


def build(arch: dict):
    """``torch.nn.Sequential`` of the LUT layers and the GroupSum of ``arch``.

    Fills in ``alpha``/``beta`` that the layers chose when the spec left them None, so the
    recorded architecture always holds the values in use.
    """
    import torch

    from dwn_hw.nn import GroupSum, LUTLayer

    try:
        mods = []
        for spec in arch["layers"]:
            layer = LUTLayer(spec["input_size"], spec["output_size"], spec["n"], mapping=spec["mapping"],
                             alpha=spec["alpha"], beta=spec["beta"], ste=spec["ste"],
                             clamp_luts=spec["clamp"], lm_tau=spec["tau"])
            if spec.get("allowed_inputs") is not None:  # --max-input-bits (dwn_hw.train.hardware)
                if not layer.learnable:
                    raise DwnHwError("malformed architecture: allowed_inputs on a layer without a learnable mapping")
                layer.mapping.restrict_inputs(spec["allowed_inputs"])
            for key in ("alpha", "beta"):
                if spec[key] is None and getattr(layer, key, None) is not None:
                    spec[key] = float(getattr(layer, key))
            mods.append(layer)
        gs = arch["groupsum"]
        # a permutation gets its real values from the state dict; here only its size matters
        perm = int(arch["layers"][-1]["output_size"]) if gs["randperm"] else False
        mods.append(GroupSum(gs["k"], tau=gs["tau"], randperm=perm))
    except (KeyError, TypeError) as exc:
        raise DwnHwError(f"malformed architecture: {exc!r}") from None
    return torch.nn.Sequential(*mods)


def lut_count(arch: dict) -> int:
    return sum(spec["output_size"] for spec in arch["layers"])
