"""Argmax of the class scores; the lowest index wins ties.

Two structures compute the same function:

``tree``
    a balanced tree of ``>=`` nodes, each keeping the winner's index and score (``K - 1``
    comparators, ``ceil(log2 K)`` comparisons and score multiplexers in series).
``pairs``
    every pair compared at once (``K (K - 1) / 2`` comparators side by side, none in series);
    class ``c`` wins when it beats every lower index strictly and every higher one or ties it,
    and the index is the binary code of the one winner. One comparison and a few LUT levels
    deep, so pipelined it needs one register (after the comparisons) where the tree needs
    ``(levels - 1) // every``.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError


STRUCTURES = ("tree", "pairs")


def argmax_levels(classes: int) -> int:
    return max(0, (classes - 1).bit_length())


def argmax_registers(classes: int, every: int, structure: str = "tree") -> int:
    """Register stages inside an :class:`Argmax` (the latency it adds).

    ``tree``: one after every ``every`` levels, never after the last one. ``pairs``: one (after the
    comparisons) exactly when the tree would have at least one, so it is never deeper than the tree.
    """
    if structure not in STRUCTURES:
        raise DwnHwError(f"argmax structure must be one of {', '.join(STRUCTURES)}, not {structure!r}")
    levels = argmax_levels(classes)
    tree = (levels - 1) // every if every and levels else 0
    return tree if structure == "tree" else min(1, tree)


class Argmax(wiring.Component):
    """Index of the highest of ``classes`` unsigned scores (the lowest such index on a tie).

    Each tree node compares its left subtree (lower indices) with its right one and keeps the
    left when ``left >= right``, so ties resolve to the lower index at every level and so overall.

    Parameters
    ----------
    classes : int
        Number of scores K (≥ 1).
    score_width : int
        Bits of one score W; score ``c`` is ``scores[c*W +: W]``.
    every : int
        A register after every ``every`` tree levels, never after the last one (0: none).
        ``scores_out`` is delayed by as many registers, so it stays aligned with ``index``.
    zero_from : int or None
        Classes from this index on are known to score 0 (groups made only of zero padding):
        they lose every comparison against a lower index, so no comparator is built for them.
    structure : str
        ``"tree"`` or ``"pairs"`` (module docstring); the function is the same.

    Attributes
    ----------
    scores : Signal(K*W), in
    index : Signal(max(1, ⌈log2 K⌉)), out
    scores_out : Signal(K*W), out
    """

    def __init__(self, classes: int, score_width: int, *, every: int = 0, zero_from: int | None = None,
                 structure: str = "tree"):
        if classes < 1:
            raise DwnHwError(f"Argmax needs at least one class, not {classes}")
        argmax_registers(classes, every, structure)  # checks the structure
        self.classes, self.score_width, self.every, self.structure = classes, score_width, every, structure
        self.zero_from = classes if zero_from is None else zero_from
        self.levels = argmax_levels(classes)
        self.index_width = max(1, (classes - 1).bit_length())
        super().__init__({"scores": In(classes * score_width), "index": Out(self.index_width),
                          "scores_out": Out(classes * score_width)})

    def registers(self) -> int:
        return argmax_registers(self.classes, self.every, self.structure)

    def elaborate(self, platform):
        if self.structure == "pairs":
            return self._pairs()
        m = Module()
        K, W, IW = self.classes, self.score_width, self.index_width
        # A node is (index, score); score None means "known to be 0".
        nodes = [(Const(c, IW), self.scores[c * W:(c + 1) * W] if c < self.zero_from else None)
                 for c in range(K)]
        passthrough = self.scores
        level = 0
        while len(nodes) > 1:
            level += 1
            last = level == self.levels
            merged = []
            for i in range(0, len(nodes) - 1, 2):
                (ia, sa), (ib, sb) = nodes[i], nodes[i + 1]
                if sb is None:  # the right side scores 0 and has the higher index: left wins
                    merged.append((ia, sa))
                    continue
                keep_left = Signal(name=f"ge{level}_{i // 2}")
                m.d.comb += keep_left.eq(sa >= sb)  # sa is not None: zeros only trail
                idx = Signal(IW, name=f"idx{level}_{i // 2}")
                m.d.comb += idx.eq(Mux(keep_left, ia, ib))
                # The winner's score is only needed by a later level.
                score = None
                if not last:
                    score = Signal(W, name=f"max{level}_{i // 2}")
                    m.d.comb += score.eq(Mux(keep_left, sa, sb))
                merged.append((idx, score))
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes = merged
            if self.every and not last and level % self.every == 0:
                regs = []
                for j, (idx, score) in enumerate(nodes):
                    ri = Signal(IW, name=f"ri{level}_{j}", reset_less=True)
                    m.d.sync += ri.eq(idx)
                    rs = None
                    if score is not None:
                        rs = Signal(W, name=f"rs{level}_{j}", reset_less=True)
                        m.d.sync += rs.eq(score)
                    regs.append((ri, rs))
                nodes = regs
                delayed = Signal(K * W, name=f"scores{level}", reset_less=True)
                m.d.sync += delayed.eq(passthrough)
                passthrough = delayed
        m.d.comb += [self.index.eq(nodes[0][0]), self.scores_out.eq(passthrough)]
        return m

    def _pairs(self):
        m = Module()
        K, W, IW = self.classes, self.score_width, self.index_width
        live = min(self.zero_from, K)  # classes 0..live-1 have a score; the rest score 0
        staged = self.registers() > 0
        # lt[i, j] (i < j < live): score i < score j, so j beats i. Against a class that scores 0 a lower
        # index always wins, so a zero class never wins, except class 0 when no class has a score.
        # (The register holds "<", not ">=": its all-zero initial state then reads as all ties, class 0.)
        lt = {}
        for i in range(live):
            for j in range(i + 1, live):
                g = Signal(name=f"lt_{i}_{j}")
                m.d.comb += g.eq(self.scores[i * W:(i + 1) * W] < self.scores[j * W:(j + 1) * W])
                if staged:
                    r = Signal(name=f"rlt_{i}_{j}", reset_less=True)
                    m.d.sync += r.eq(g)
                    g = r
                lt[i, j] = g
        passthrough = self.scores
        if staged:
            delayed = Signal(K * W, name="scores1", reset_less=True)
            m.d.sync += delayed.eq(self.scores)
            passthrough = delayed
        # win[c]: c beats every lower index strictly and every higher one or ties it. Exactly one class
        # wins: the first of the highest scores.
        win = []
        for c in range(max(1, live)):
            terms = [lt[j, c] for j in range(c)] + [~lt[c, j] for j in range(c + 1, live)]
            w = Signal(name=f"win{c}")
            m.d.comb += w.eq(Cat(*terms).all() if terms else 1)
            win.append(w)
        bits = []
        for b in range(IW):
            ones = [win[c] for c in range(len(win)) if (c >> b) & 1]
            bits.append(Cat(*ones).any() if ones else Const(0, 1))
        m.d.comb += [self.index.eq(Cat(*bits)), self.scores_out.eq(passthrough)]
        return m
