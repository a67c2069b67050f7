"""Ready/valid streaming wrapper around a fixed-latency core.

The core never stalls: a sample accepted at the input comes out ``latency`` clocks later
whatever the consumer does. The wrapper therefore accepts a sample only when it holds a free
slot for its result (a credit): ``count`` (samples accepted and not yet taken) stays below
``depth``, and results wait in a FIFO of ``depth`` entries (the skid buffer). With
``depth ≥ latency + 2`` (a result holds its credit from the edge that accepts the sample to
the edge that hands it over: latency + 2 edges) a consumer that is always ready gets one
result per clock.
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError


class StreamWrapper(wiring.Component):
    """``s_*`` in, ``m_*`` out, both ready/valid (a transfer is a clock edge with valid and ready high).

    Parameters
    ----------
    info : dict
        ``build_top``'s info (``top``, ``latency``, ``in_width``, ``class_width``, ``classes``,
        ``score_width``).
    core : Elaboratable or None
        The core; None instantiates the Verilog module ``info["top"]`` (ports ``clk``, ``rst``,
        ``in_valid``, ``in_data``, ``out_valid``, ``out_class``, ``out_scores``). A component with
        those members (but clock and reset from the ``sync`` domain) can stand in for tests.
    depth : int or None
        FIFO entries; default ``latency + 2`` (full throughput), and never below ``latency``.

    Attributes
    ----------
    s_valid, s_data : in; s_ready : out
    m_valid, m_class, m_scores : out; m_ready : in
    """

    def __init__(self, info: dict, core=None, depth: int | None = None):
        self.latency = int(info["latency"])
        self.depth = self.latency + 2 if depth is None else int(depth)
        if self.depth < max(1, self.latency):
            self._MustUse__silence = True  # refused, so never elaborated: no "unused" warning
            raise DwnHwError(f"stream depth {self.depth} is below the core latency {self.latency}")
        self.info, self.core = info, core
        sw = info["classes"] * info["score_width"]
        super().__init__({
            "s_valid": In(1), "s_ready": Out(1), "s_data": In(info["in_width"]),
            "m_valid": Out(1), "m_ready": In(1), "m_class": Out(info["class_width"]), "m_scores": Out(sw),
        })

    def elaborate(self, platform):
        m = Module()
        info, depth = self.info, self.depth
        cw, sw = info["class_width"], info["classes"] * info["score_width"]
        out_valid, out_class, out_scores = Signal(), Signal(cw), Signal(sw)
        accept = Signal()
        m.d.comb += accept.eq(self.s_valid & self.s_ready)
        if self.core is None:
            m.submodules.core = Instance(
                info["top"], i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=accept, i_in_data=self.s_data,
                o_out_valid=out_valid, o_out_class=out_class, o_out_scores=out_scores)
        else:
            m.submodules.core = core = self.core
            m.d.comb += [core.in_valid.eq(accept), core.in_data.eq(self.s_data),
                         out_valid.eq(core.out_valid), out_class.eq(core.out_class), out_scores.eq(core.out_scores)]

        # Counters are thermometer codes and pointers one-hot rings: Amaranth writes a comparison
        # with a constant using a trimmed constant width, which Verilator's lint flags, and these
        # need no comparison at all.
        # Credits: samples accepted and not yet taken by the consumer.
        used = Signal(depth)
        take = Signal()
        m.d.comb += [take.eq(self.m_valid & self.m_ready), self.s_ready.eq(~used[depth - 1])]
        with m.If(accept & ~take):
            m.d.sync += used.eq(Cat(1, used[:-1]))
        with m.Elif(take & ~accept):
            m.d.sync += used.eq(Cat(used[1:], 0))

        # The FIFO of results; it cannot overflow because every stored result holds a credit.
        slots_c = [Signal(cw, name=f"fifo_class{i}", reset_less=True) for i in range(depth)]
        slots_s = [Signal(sw, name=f"fifo_scores{i}", reset_less=True) for i in range(depth)]
        wp, rp = Signal(depth, init=1), Signal(depth, init=1)
        level = Signal(depth)
        with m.If(out_valid):
            m.d.sync += wp.eq(Cat(wp[-1], wp[:-1]) if depth > 1 else wp)
        for i in range(depth):
            with m.If(out_valid & wp[i]):
                m.d.sync += [slots_c[i].eq(out_class), slots_s[i].eq(out_scores)]
        with m.If(take):
            m.d.sync += rp.eq(Cat(rp[-1], rp[:-1]) if depth > 1 else rp)
        with m.If(out_valid & ~take):
            m.d.sync += level.eq(Cat(1, level[:-1]))
        with m.Elif(take & ~out_valid):
            m.d.sync += level.eq(Cat(level[1:], 0))
        head_c, head_s = slots_c[0], slots_s[0]
        for i in range(1, depth):
            head_c, head_s = Mux(rp[i], slots_c[i], head_c), Mux(rp[i], slots_s[i], head_s)
        m.d.comb += [self.m_valid.eq(level[0]), self.m_class.eq(head_c), self.m_scores.eq(head_s)]
        return m


def stream_verilog(info: dict, name: str = "dwn_stream", prefix: str = "", depth: int | None = None):
    """Verilog of the wrapper around the top ``info["top"]`` (which it instantiates by name).

    Returns ``(text, stream_info)`` with ``top``, ``depth``, ``core``, ``latency`` (clocks from an
    ``s_*`` transfer to ``m_valid`` when nothing stalls: the core's plus one) and the ports.
    """
    from dwn_hw.hdl.verilog import to_verilog

    ident = prefix + name
    wrapper = StreamWrapper(info, depth=depth)
    text = to_verilog(wrapper, ident, private_wires=True)
    # A result reaches m_valid one clock after the core's out_valid (it passes the FIFO).
    stream_info = {"top": ident, "depth": wrapper.depth, "core": info["top"], "latency": wrapper.latency + 1,
                   "ports": ["clk", "rst", "s_valid", "s_ready", "s_data", "m_valid", "m_ready", "m_class",
                             "m_scores"]}
    return stream_header(info, stream_info) + text, stream_info


def stream_header(info: dict, stream_info: dict) -> str:
    """The header comment of the wrapper's Verilog (deterministic: no dates, no paths)."""
    from dwn_hw.hdl.top import verilog_header

    K, W = info["classes"], info["score_width"]
    ports = [("input", "clk", 1, "clock, rising edge"),
             ("input", "rst", 1, "synchronous, active high"),
             ("input", "s_valid", 1, "s_data holds a sample"),
             ("output", "s_ready", 1, "the wrapper takes the sample at this edge when s_valid is high"),
             ("input", "s_data", info["in_width"], f"the sample: in_data of {info['top']} (below)"),
             ("output", "m_valid", 1, "m_class and m_scores hold a result"),
             ("input", "m_ready", 1, "the consumer takes the result at this edge when m_valid is high"),
             ("output", "m_class", info["class_width"], "predicted class: lowest index among the highest scores"),
             ("output", "m_scores", K * W, f"score of class c at m_scores[c*{W} +: {W}]")]
    L = stream_info["latency"]
    facts = [f"Ready/valid wrapper {stream_info['top']} around the core {info['top']} (compile the core's Verilog "
             "with it); a transfer is a rising edge with valid and ready both high.",
             f"Result FIFO of {stream_info['depth']} entries; a result shows on m_valid {L} clock(s) after its "
             "sample's transfer when nothing stalls; one sample per clock while m_ready stays high."]
    return verilog_header(f"{stream_info['top']}: ready/valid streaming wrapper of a dwn-hw DWN core.", facts,
                          ports, ["Inputs (s_data):", *("  " + line for line in info.get("input_doc", []))])
