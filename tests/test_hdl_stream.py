"""The ready/valid wrapper under random stalls on both sides (Amaranth simulation)."""
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.stream import StreamWrapper, stream_verilog

K, W = 3, 4


class FakeCore(wiring.Component):
    """A fixed-latency core that never stalls: class = data % K, scores = data repeated."""

    def __init__(self, latency, in_width=8):
        self.latency = latency
        super().__init__({"in_valid": In(1), "in_data": In(in_width), "out_valid": Out(1),
                          "out_class": Out(2), "out_scores": Out(K * W)})

    def elaborate(self, platform):
        m = Module()
        valid, data = self.in_valid, self.in_data
        for i in range(self.latency):
            v, d = Signal(name=f"v{i}"), Signal(len(self.in_data), name=f"d{i}")
            m.d.sync += [v.eq(valid), d.eq(data)]
            valid, data = v, d
        m.d.comb += [self.out_valid.eq(valid), self.out_class.eq(data % K),
                     self.out_scores.eq(data[:W].replicate(K))]
        return m


def info(latency):
    return {"top": "core", "latency": latency, "in_width": 8, "class_width": 2, "classes": K, "score_width": W}


@pytest.mark.parametrize("latency,p_in,p_out", [(1, 0.7, 0.5), (3, 0.9, 0.3), (5, 1.0, 1.0), (2, 0.5, 0.9)])
def test_every_sample_comes_out_once_in_order_under_random_stalls(latency, p_in, p_out):
    dut = StreamWrapper(info(latency), core=FakeCore(latency))
    rng = random.Random(latency)
    sent, got = [], []
    cycles = 400

    async def bench(ctx):
        nxt = 0
        for _ in range(cycles):
            ctx.set(dut.s_valid, rng.random() < p_in)
            ctx.set(dut.s_data, nxt & 0xFF)
            ctx.set(dut.m_ready, rng.random() < p_out)
            # Sample the handshakes just before the edge that completes them.
            s_fire = ctx.get(dut.s_valid) and ctx.get(dut.s_ready)
            m_fire = ctx.get(dut.m_valid) and ctx.get(dut.m_ready)
            if m_fire:
                got.append((ctx.get(dut.m_class), ctx.get(dut.m_scores)))
            if s_fire:
                sent.append(nxt & 0xFF)
                nxt += 1
            await ctx.tick()
        ctx.set(dut.s_valid, 0)
        ctx.set(dut.m_ready, 1)
        for _ in range(latency + dut.depth + 2):
            if ctx.get(dut.m_valid):
                got.append((ctx.get(dut.m_class), ctx.get(dut.m_scores)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(sent) > cycles * min(p_in, p_out) * 0.5  # back-pressure did not starve the input
    want = [(d % K, sum((d & 0xF) << (W * c) for c in range(K))) for d in sent]
    assert got == want


def test_full_throughput_when_the_consumer_is_always_ready():
    latency = 4
    dut = StreamWrapper(info(latency), core=FakeCore(latency))
    accepted, first_out = [], []

    async def bench(ctx):
        ctx.set(dut.m_ready, 1)
        ctx.set(dut.s_valid, 1)
        for cycle in range(50):
            accepted.append(ctx.get(dut.s_ready))
            if ctx.get(dut.m_valid) and not first_out:
                first_out.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert all(accepted)
    assert first_out == [latency + 1]  # the stream latency stream_verilog reports


def test_depth_below_latency_is_refused():
    with pytest.raises(DwnHwError, match="depth 2"):
        StreamWrapper(info(3), depth=2)


def test_stream_verilog_is_lint_clean_with_its_core(tmp_path):
    from dwn_hw.hdl import build_top
    from dwn_hw.check.lint import lint
    from dwn_hw.ir import random_ir

    text, top_info = build_top(random_ir(2, layers=[(16, 4), (8, 3)], k=3), pipeline="max", prefix="s_")
    stream, sinfo = stream_verilog(top_info, prefix="s_")
    assert sinfo["depth"] >= top_info["latency"] and sinfo["top"] == "s_dwn_stream"
    (tmp_path / "core.v").write_text(text)
    (tmp_path / "stream.v").write_text(stream)
    paths = [tmp_path / "stream.v", tmp_path / "core.v"]
    assert lint(paths, "s_dwn_stream") == []
    assert lint(paths, "s_dwn_stream", wall=True, waivers=True) == []
