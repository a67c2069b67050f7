"""Argmax of the class scores: a binary tree; the lowest index wins ties."""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError


def argmax_levels(classes: int) -> int:
    return max(0, (classes - 1).bit_length())


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

    Attributes
    ----------
    scores : Signal(K*W), in
    index : Signal(max(1, ⌈log2 K⌉)), out
    scores_out : Signal(K*W), out
    """

    def __init__(self, classes: int, score_width: int, *, every: int = 0, zero_from: int | None = None):
        if classes < 1:
            raise DwnHwError(f"Argmax needs at least one class, not {classes}")
        self.classes, self.score_width, self.every = classes, score_width, every
        self.zero_from = classes if zero_from is None else zero_from
        self.levels = argmax_levels(classes)
        self.index_width = max(1, (classes - 1).bit_length())
        super().__init__({"scores": In(classes * score_width), "index": Out(self.index_width),
                          "scores_out": Out(classes * score_width)})

    def registers(self) -> int:
        if not self.every or self.levels == 0:
            return 0
        return (self.levels - 1) // self.every

    def elaborate(self, platform):
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
