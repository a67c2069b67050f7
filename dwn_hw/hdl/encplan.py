"""The encoder's shared comparator logic: per feature, LUTs that compute all its thresholds at once.

A feature's used thresholds are monotone functions of the same B bits. In offset binary
(``u = q - qmin``, so signed features compare unsigned) bit ``t`` is ``u >= c`` with ``c = t + 1 - qmin``
in ``1 .. 2**B - 1``; a ``c`` with ``z`` trailing zeros reads only the ``B - z`` bits above them.

The structures (``plan_feature``):

direct
    one LUT of the ``B - z`` significant bits, where they are at most ``K`` (the LUT's fan-in).
region group
    thresholds split at bit ``l``: ``u >= c`` is ``hi > c_hi or (hi == c_hi and lo >= c_lo)``. The
    distinct nonzero ``c_lo`` of the group cut ``lo`` into ``m + 1`` regions; ``ceil(log2(m + 1))``
    *code* LUTs (functions of the ``lo`` bits above their common trailing zeros) give the region's
    number, and each threshold's *final* LUT reads the ``hi`` bits and the code. Three thresholds
    with an 8-bit input: one code LUT pair (5 bits -> 2 code bits) and three finals of 5 inputs.
chain
    (4-input families) :func:`dwn_hw.hdl.encoder.compare_chain` on the significant bits only,
    chains with equal low parts sharing their first LUTs.

A small dynamic program over each feature's sorted thresholds picks the groups and splits by a
cost model in LUT sites: with ``pair=True`` (Xilinx ``LUT6_2``) two LUTs of at most 5 shared
inputs count as one site; :func:`pack_pairs` then pairs them for real, within a feature and then
across features.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Node:
    """One logical LUT: ``out = table[address]``, address bit l = ``inputs[l]``.

    An input is ``("x", p)`` (bit p of the feature, offset binary already folded into ``table``)
    or ``("s", name)`` (another node's output).
    """

    name: str
    inputs: list
    table: int


def _tz(c: int) -> int:
    return (c & -c).bit_length() - 1


def _bits_needed(n: int) -> int:
    """Code bits for n regions."""
    return max(0, (n - 1).bit_length())


def _table(n_in: int, fn) -> int:
    table = 0
    for a in range(1 << n_in):
        if fn([(a >> l) & 1 for l in range(n_in)]):
            table |= 1 << a
    return table


def _value(vals, positions) -> int:
    """The integer whose bits ``positions`` are ``vals`` (other bits 0)."""
    return sum(v << p for v, p in zip(vals, positions))


def _group_shape(cs, B: int, l: int):
    """(V, zl, k) of a region group split at l, or None where it needs no code (all c_lo = 0)."""
    vs = sorted({c & ((1 << l) - 1) for c in cs} - {0})
    if not vs:
        return None
    zl = min(_tz(v) for v in vs)
    return vs, zl, _bits_needed(len(vs) + 1)


def _sites(n5: int, n6: int, pair: bool) -> float:
    return (n5 / 2 + n6) if pair else (n5 + n6)


def group_cost(cs, B: int, K: int, pair: bool):
    """Cheapest (cost, split) for thresholds ``cs`` as one group (direct when l is None), or None."""
    best = None
    if len(cs) == 1 and B - _tz(cs[0]) <= K:
        w = B - _tz(cs[0])
        best = (_sites(int(w <= 5), int(w == 6), pair), None)
    for l in range(1, B):
        shape = _group_shape(cs, B, l)
        if shape is None:
            continue
        vs, zl, k = shape
        lo_in, hi_in = l - zl, B - l
        if lo_in > K or hi_in + k > K:
            continue
        code = _sites(k if lo_in <= 5 else 0, 0 if lo_in <= 5 else k, pair)
        n5 = sum(1 for c in cs if (hi_in + (k if c & ((1 << l) - 1) else 0)) <= 5)
        cost = code + _sites(n5, len(cs) - n5, pair)
        if best is None or cost < best[0]:
            best = (cost, l)
    return best


def plan_feature(cs, B: int, K: int, pair: bool, max_group: int = 6):
    """Groups of sorted ``cs`` and their splits: [(members, l or None)] at least cost (None: no plan)."""
    cs = sorted(cs)
    n = len(cs)
    INF = float("inf")
    dp = [(0.0, None)] + [(INF, None)] * n
    for i in range(1, n + 1):
        for j in range(max(0, i - max_group), i):
            if dp[j][0] == INF:
                continue
            gc = group_cost(tuple(cs[j:i]), B, K, pair)
            if gc is not None and dp[j][0] + gc[0] < dp[i][0]:
                dp[i] = (dp[j][0] + gc[0], (j, gc[1]))
    if dp[n][0] == INF:
        return None
    groups, i = [], n
    while i:
        j, l = dp[i][1]
        groups.append((cs[j:i], l))
        i = j
    return groups[::-1]


def feature_nodes(prefix: str, cs, B: int, K: int, pair: bool):
    """Nodes computing ``u >= c`` for each c of one feature, and {c: output node name}.

    Falls back to significant-bit chains where no group plan fits ``K`` (4-input LUTs, 8 bits).
    """
    groups = plan_feature(cs, B, K, pair)
    nodes, out = [], {}
    if groups is None:
        return _chain_nodes(prefix, cs, B, K)
    for g, (members, l) in enumerate(groups):
        if l is None:
            (c,) = members
            z = _tz(c)
            pos = list(range(z, B))
            name = f"{prefix}_ge{c}"
            nodes.append(Node(name, [("x", p) for p in pos], _table(len(pos), lambda v, c=c: _value(v, pos) >= c)))
            out[c] = name
            continue
        vs, zl, k = _group_shape(members, B, l)
        lo_pos, hi_pos = list(range(zl, l)), list(range(l, B))
        code = [f"{prefix}_g{g}r{b}" for b in range(k)]

        def region(vals, vs=vs, lo_pos=lo_pos):
            lo = _value(vals, lo_pos)
            return sum(1 for v in vs if lo >= v)

        for b in range(k):
            nodes.append(Node(code[b], [("x", p) for p in lo_pos],
                              _table(len(lo_pos), lambda v, b=b, region=region: (region(v) >> b) & 1)))
        for c in members:
            c_hi, c_lo = c >> l, c & ((1 << l) - 1)
            idx = vs.index(c_lo) + 1 if c_lo else 0
            ins = [("x", p) for p in hi_pos] + ([("s", s) for s in code] if idx else [])
            nh = len(hi_pos)

            def fn(v, c_hi=c_hi, idx=idx, nh=nh):
                hi = _value(v[:nh], range(nh))
                r = _value(v[nh:], range(len(v) - nh))
                return hi > c_hi or (hi == c_hi and r >= idx)

            name = f"{prefix}_ge{c}"
            nodes.append(Node(name, ins, _table(len(ins), fn)))
            out[c] = name
    return nodes, out


def _chain_nodes(prefix: str, cs, B: int, K: int):
    """``u >= c`` as a chain from the lowest significant bit up, equal prefixes shared."""
    nodes, out, seen = [], {}, {}
    for c in sorted(cs):
        z = _tz(c)
        pos, prev = z, None
        while pos < B:
            carry = prev is not None
            m = min(B - pos, K - int(carry))
            bits = list(range(pos, pos + m))
            cv = (c >> pos) & ((1 << m) - 1)
            # The first LUT tests chunk >= cv (the bits below are zero in c); later ones > or == with carry.
            first = not carry

            def fn(v, cv=cv, m=m, first=first):
                x = _value(v[:m], range(m))
                return x >= cv if first else (x > cv or (x == cv and v[m]))

            key = (tuple(bits), prev, cv)
            if key not in seen:
                name = f"{prefix}_ge{c}" if pos + m == B else f"{prefix}_k{len(nodes)}"
                ins = [("x", p) for p in bits] + ([("s", prev)] if carry else [])
                nodes.append(Node(name, ins, _table(len(ins), fn)))
                seen[key] = name
            prev = seen[key]
            pos += m
        out[c] = prev
    return nodes, out


def pack_pairs(nodes, key=lambda n: n.inputs):
    """Pairs of nodes (as index pairs) whose inputs together are at most 5 signals, and the singles.

    Within a feature's nodes first (the caller passes one list per feature), most shared inputs first.
    """
    sets = [frozenset(key(n)) for n in nodes]
    free = [i for i, s in enumerate(sets) if len(s) <= 5]
    pairs, used = [], set()
    for i in free:
        if i in used:
            continue
        best = None
        for j in free:
            if j <= i or j in used:
                continue
            u = len(sets[i] | sets[j])
            if u <= 5 and (best is None or u < best[0]):
                best = (u, j)
        if best is not None:
            used |= {i, best[1]}
            pairs.append((i, best[1]))
    singles = [i for i in range(len(nodes)) if i not in used]
    return pairs, singles


def pair_across(sizes):
    """Pairs of items (indices) from different features whose input counts sum to at most 5."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    by_size = {s: [i for i in order if sizes[i] == s] for s in range(1, 6)}
    pairs, used = [], set()
    for i in order:
        if i in used or sizes[i] > 4:
            continue
        for s in range(5 - sizes[i], 0, -1):
            cand = next((j for j in by_size.get(s, []) if j not in used and j != i), None)
            if cand is not None:
                used |= {i, cand}
                pairs.append((i, cand))
                break
    return pairs
