"""The plan: the live part of an IR, with indices compacted to what the hardware builds.

Built on the IR passes (:mod:`dwn_hw.ir.passes`): constant encoder bits and constant LUTs are folded into the
LUTs that read them, inputs a table ignores are dropped (a repeated input is kept: the IR is not rewritten
here, :func:`dwn_hw.ir.simplify` does that), then backward liveness keeps only what reaches a class score.
"""
from __future__ import annotations

import dataclasses

from dwn_hw.ir.passes import constant_outputs, encoder_constants, live_sources, reduce_layer


@dataclasses.dataclass
class Plan:
    """The live part of an IR, with indices compacted to what is built.

    ``sources``: for ``inputs="features"`` the (feature, threshold) of each encoder output, for
    ``"bits"`` the ``in_data`` bit index of each input bit. ``layers``: (rows, tables) per layer,
    rows indexing the previous stage's compacted outputs. ``groups``: per class, indices into
    the last layer's outputs.
    """

    sources: list
    layers: list
    groups: list


def plan(ir: dict, inputs: str) -> Plan:
    """Fold constants, drop don't-care LUT inputs, prune dead logic and compact indices (see :class:`Plan`)."""
    const = encoder_constants(ir) if inputs == "features" else {}
    layers = []
    for layer in ir["layers"]:
        rows, tabs = reduce_layer(layer["mapping"], layer["tables"], const)
        layers.append({"mapping": rows, "tables": tabs})
        const = constant_outputs(rows, tabs)
    k = int(ir["groupsum"]["k"])
    n_last = len(layers[-1]["mapping"])
    perm = ir["groupsum"].get("permutation") or list(range(n_last))
    g = -(-n_last // k)
    groups = [[perm[p] for p in range(c * g, min((c + 1) * g, n_last))] for c in range(k)]
    # Backward liveness: the last layer is read by the groups, each earlier stage by live LUTs.
    live = [None] * len(layers)
    live[-1] = sorted(set(perm))
    for i in range(len(layers) - 1, 0, -1):
        live[i - 1] = live_sources(layers[i]["mapping"], live[i])
    live_in = live_sources(layers[0]["mapping"], live[0])
    out_layers = []
    prev_index = {s: i for i, s in enumerate(live_in)}
    for i, layer in enumerate(layers):
        rows, tabs = layer["mapping"], layer["tables"]
        new_rows = [[prev_index[s] for s in rows[j]] for j in live[i]]
        new_tabs = [tabs[j] for j in live[i]]
        out_layers.append((new_rows, new_tabs))
        prev_index = {s: idx for idx, s in enumerate(live[i])}
    groups = [[prev_index[s] for s in grp] for grp in groups]
    enc = ir["encoder"]
    if inputs == "features":
        T = int(enc["bits_per_feature"])
        sources = [(s // T, int(enc["thresholds"][s // T][s % T])) for s in live_in]
    else:
        sources = list(live_in)
    return Plan(sources=sources, layers=out_layers, groups=groups)
