"""The UART board wrapper: the core behind a serial byte stream, for boards with few pins.

A board cannot bring ``in_data`` (hundreds or thousands of bits) out to pins, so the wrapper
receives a sample as bytes, pulses the core's ``in_valid`` once, waits for ``out_valid`` and
sends the class (and the scores when asked) back. The protocol is documented in
:mod:`dwn_hw.hdl.protocol`. The core is instantiated as a black box by module name, so the
wrapper works with any Verilog that has the ports of docs/design.md. No torch here.
"""

from amaranth.hdl import Array, C, Cat, ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError, show
from dwn_hw.hdl import protocol
from dwn_hw.hdl.verilog import to_verilog


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit; refuses rates the clock cannot make within 2 %."""
    if baud <= 0:
        raise DwnHwError(f"baud rate must be positive, not {baud}")
    div = round(clk_hz / baud)
    if div < 4:
        raise DwnHwError(f"a {clk_hz / 1e6:g} MHz clock is too slow for {baud} baud (need ≥ 4 cycles per bit)")
    if abs(clk_hz / div - baud) / baud > 0.02:
        raise DwnHwError(f"{baud} baud is {abs(clk_hz / div - baud) / baud:.1%} off with a {clk_hz / 1e6:g} MHz clock")
    return div


_RX_IDLE, _RX_START, _RX_DATA, _RX_STOP = range(4)
_W_IDLE, _W_LOAD, _W_FIRE, _W_WAIT = range(4)


class UARTReceiver(wiring.Component):
    """8N1 receiver sampling the middle of each bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (≥ 4).

    ``valid`` is high for one cycle with the received ``data``; a byte whose stop bit is low
    (framing error) is dropped.
    """

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4, not {show(divisor)}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)  # the pin is asynchronous
        count = Signal(range(self.divisor))
        nbit = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += self.valid.eq(0)
        # A plain state register and an if-chain, not m.FSM: Amaranth writes an FSM as a case
        # without a default, which Verilator's lint flags (CASEINCOMPLETE).
        state = Signal(2)
        with m.If(state == _RX_IDLE):
            with m.If(~rx):
                m.d.sync += [count.eq(self.divisor // 2 - 1), state.eq(_RX_START)]
        with m.Elif(state == _RX_START):
            m.d.sync += count.eq(count - 1)
            with m.If(~count.any()):
                m.d.sync += [count.eq(self.divisor - 1), nbit.eq(0)]
                # rx high again: a glitch, not a start bit
                m.d.sync += state.eq(Mux(rx, _RX_IDLE, _RX_DATA))
        with m.Elif(state == _RX_DATA):
            m.d.sync += count.eq(count - 1)
            with m.If(~count.any()):
                m.d.sync += [count.eq(self.divisor - 1), shreg.eq(Cat(shreg[1:], rx)), nbit.eq(nbit + 1)]
                with m.If(nbit == 7):
                    m.d.sync += state.eq(_RX_STOP)
        with m.Else():  # stop bit
            m.d.sync += count.eq(count - 1)
            with m.If(~count.any()):
                m.d.sync += [self.data.eq(shreg), self.valid.eq(rx), state.eq(_RX_IDLE)]
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter: ``start`` while not ``busy`` sends ``data``; ``tx`` comes from a register."""

    data: In(8)
    start: In(1)
    busy: Out(1)
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor must be at least 4, not {show(divisor)}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        shreg = Signal(10, init=0x3FF)
        count = Signal(range(self.divisor))
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(left.any())]
        with m.If(~left.any()):
            with m.If(self.start):
                m.d.sync += [shreg.eq(Cat(C(0, 1), self.data, C(1, 1))), count.eq(self.divisor - 1), left.eq(10)]
        with m.Elif(~count.any()):
            m.d.sync += [shreg.eq(Cat(shreg[1:], C(1, 1))), count.eq(self.divisor - 1), left.eq(left - 1)]
        with m.Else():
            m.d.sync += count.eq(count - 1)
        return m


class UARTWrapper(wiring.Component):
    """The core behind a UART (protocol: :mod:`dwn_hw.hdl.protocol`).

    Parameters
    ----------
    in_width, classes, score_width : int
        The core's port widths (``bundle.json``).
    core : str
        Module name of the core (``bundle.json`` ``top``); instantiated as a black box.
    clk_hz : float
        Frequency of ``clk``.
    baud : int
        Serial rate, 115200 by default.
    timeout_s : float
        A payload that stalls this long is dropped, so the host can resynchronise.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, in_width: int, classes: int, score_width: int, core: str = "dwn_top",
                 clk_hz: float = 12e6, baud: int = protocol.DEFAULT_BAUD, timeout_s: float = 0.1):
        protocol.check_shape(in_width, classes, score_width)
        self.in_width, self.classes, self.score_width = int(in_width), int(classes), int(score_width)
        self.core, self.clk_hz, self.baud = core, clk_hz, baud
        self.divisor = uart_divisor(clk_hz, baud)
        # At least a few byte times, whatever the clock: never cut a payload that is still arriving.
        self.timeout = max(int(clk_hz * timeout_s), 40 * 10 * self.divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        nin = protocol.payload_bytes(self.in_width)
        sb = protocol.score_bytes(self.score_width)
        cw = max(1, (self.classes - 1).bit_length())
        # The payload register in pieces of at most 64 bits, each its own register: one
        # 6,272-bit register (MNIST) exhausts the YoWASP yosys' stack in techmap.
        pieces = [Signal(min(64, 8 * nin - lo), name=f"in_reg{lo // 64}") for lo in range(0, 8 * nin, 64)]
        in_reg = Cat(*pieces)
        in_valid = Signal()
        out_valid = Signal()
        out_class = Signal(cw)
        out_scores = Signal(self.classes * self.score_width)
        m.submodules.core = Instance(
            self.core, i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=in_valid,
            i_in_data=in_reg[: self.in_width], o_out_valid=out_valid, o_out_class=out_class,
            o_out_scores=out_scores)

        reply_len = 1 + self.classes * sb
        tx_reg = Signal(8 * max(protocol.INFO_LEN, reply_len))
        tx_left = Signal(range(max(protocol.INFO_LEN, reply_len) + 1))
        want_scores = Signal()
        got = Signal(range(nin + 1))
        idle = Signal(range(self.timeout + 1))
        info = protocol.info_reply(self.in_width, self.classes, self.score_width)

        padded = [out_class.as_unsigned(), C(0, 8 - cw)] if cw < 8 else [out_class]
        for c in range(self.classes):
            score = out_scores[c * self.score_width: (c + 1) * self.score_width]
            padded += [score] + ([C(0, 8 * sb - self.score_width)] if 8 * sb > self.score_width else [])
        reply = Cat(*padded)

        # Send whatever is queued, one byte per transmitter slot.
        with m.If(tx_left.any() & ~tx.busy):
            m.d.comb += [tx.start.eq(1), tx.data.eq(tx_reg[:8])]
            m.d.sync += [tx_reg.eq(tx_reg >> 8), tx_left.eq(tx_left - 1)]

        state = Signal(2)  # an if-chain, not m.FSM (see UARTReceiver)
        with m.If(state == _W_IDLE):
            with m.If(rx.valid & ~tx_left.any()):
                with m.If((rx.data == protocol.CMD_CLASS) | (rx.data == protocol.CMD_SCORES)):
                    m.d.sync += [want_scores.eq(rx.data == protocol.CMD_SCORES), got.eq(0), idle.eq(0),
                                 state.eq(_W_LOAD)]
                with m.Elif(rx.data == protocol.CMD_INFO):
                    m.d.sync += [tx_reg.eq(Const(int.from_bytes(info, "little"), 8 * len(info))),
                                 tx_left.eq(len(info))]
        with m.Elif(state == _W_LOAD):
            m.d.sync += idle.eq(idle + 1)
            with m.If(rx.valid):
                # The first byte sent ends at the bottom of in_reg after all have arrived.
                shifted = Cat(in_reg[8:], rx.data)
                m.d.sync += [p.eq(shifted[lo:lo + len(p)]) for p, lo in zip(pieces, range(0, 8 * nin, 64))]
                m.d.sync += [got.eq(got + 1), idle.eq(0)]
                with m.If(got == nin - 1):
                    m.d.sync += state.eq(_W_FIRE)
            with m.Elif(idle == self.timeout):
                m.d.sync += state.eq(_W_IDLE)
        with m.Elif(state == _W_FIRE):
            m.d.comb += in_valid.eq(1)
            m.d.sync += state.eq(_W_WAIT)
        with m.Else():  # waiting for the core's answer
            with m.If(out_valid):
                m.d.sync += [tx_reg.eq(reply), tx_left.eq(Mux(want_scores, reply_len, 1)), state.eq(_W_IDLE)]
        return m


def _reply_logic(m, tx, in_valid, out_valid, out_class, out_scores, classes, score_width, info: bytes):
    """What both wrappers share: the transmit queue, the reply of a result, the ``'I'`` reply.

    Returns ``(tx_left, want_scores, send_info, send_result)``: ``send_info`` and ``send_result`` are
    combinational strobes the caller drives (queue the info reply / the result now).
    """
    sb = protocol.score_bytes(score_width)
    cw = max(1, (classes - 1).bit_length())
    reply_len = 1 + classes * sb
    n = max(len(info), reply_len)
    tx_reg = Signal(8 * n)
    tx_left = Signal(range(n + 1))
    want_scores = Signal()
    send_info, send_result = Signal(), Signal()
    padded = [out_class.as_unsigned(), C(0, 8 - cw)] if cw < 8 else [out_class]
    for c in range(classes):
        score = out_scores[c * score_width: (c + 1) * score_width]
        padded += [score] + ([C(0, 8 * sb - score_width)] if 8 * sb > score_width else [])
    reply = Cat(*padded)
    with m.If(send_info):
        m.d.sync += [tx_reg.eq(Const(int.from_bytes(info, "little"), 8 * len(info))), tx_left.eq(len(info))]
    with m.Elif(send_result):
        m.d.sync += [tx_reg.eq(reply), tx_left.eq(Mux(want_scores, reply_len, 1))]
    with m.Elif(tx_left.any() & ~tx.busy):  # send whatever is queued, one byte per transmitter slot
        m.d.comb += [tx.start.eq(1), tx.data.eq(tx_reg[:8])]
        m.d.sync += [tx_reg.eq(tx_reg >> 8), tx_left.eq(tx_left - 1)]
    return tx_left, want_scores, send_info, send_result


_S_IDLE, _S_LOAD, _S_FIRE, _S_WAIT = range(4)


def stream_byte_work(layout: dict) -> int:
    """The most comparator cycles one received byte of the stream format needs (its features' used bits)."""
    T = layout["bits_per_feature"]
    per_feature: dict[int, int] = {}
    for s in layout["used"]:
        per_feature[s // T] = per_feature.get(s // T, 0) + 1
    counts = [per_feature[f] for f in layout["features"]]
    G = layout["per_byte"] or 1
    return max(sum(counts[i:i + G]) for i in range(0, len(counts), G))


class StreamUARTWrapper(wiring.Component):
    """The ``stream`` request format (``DWN2``, :mod:`dwn_hw.hdl.protocol`): encode features as they arrive.

    The core behind it is the ``--inputs bits`` core of the same IR (``in_data`` = every thermometer bit,
    ``F*T``). Of those bits the wrapper keeps only the ``U`` used ones (``layout["used"]``), in a shift
    register of ``U`` flip-flops; the rest of ``in_data`` is constant 0 (no LUT reads it). As each sent
    feature's byte arrives, a sequential comparator steps through a ROM of one entry per used bit
    (``q - qmin >= t - qmin + 1`` on B+1 bits, and a flag on the feature's last used bit), one entry
    per clock, and shifts each result in. The ROM is an Amaranth memory with a synchronous read port
    (block RAM where yosys maps it: EBR on iCE40/ECP5). The work of one byte must end before the next
    byte can arrive (checked here: at most ``10 * divisor - 3`` cycles per byte).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, layout: dict, core_width: int, classes: int, score_width: int, core: str = "dwn_top",
                 clk_hz: float = 12e6, baud: int = protocol.DEFAULT_BAUD, timeout_s: float = 0.1):
        protocol.check_shape(core_width, classes, score_width)
        self.layout, self.core_width = layout, int(core_width)
        self.classes, self.score_width, self.core = int(classes), int(score_width), core
        self.clk_hz, self.baud = clk_hz, baud
        self.divisor = uart_divisor(clk_hz, baud)
        self.timeout = max(int(clk_hz * timeout_s), 40 * 10 * self.divisor)
        if max(layout["used"]) >= self.core_width:
            raise DwnHwError(f"used bit {max(layout['used'])} is outside the core's in_data ({self.core_width} bits)")
        self.max_byte_work = stream_byte_work(layout)
        if self.max_byte_work + 3 > 10 * self.divisor:
            raise DwnHwError(f"a byte of the stream format needs {self.max_byte_work} comparator cycles, more than "
                             f"the {10 * self.divisor - 3} one byte time leaves at {baud} baud: use a lower --baud "
                             f"or --uart-format raw")
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        lay = self.layout
        B, G, signed = lay["input_bits"], lay["per_byte"], lay["signed"]
        used, qmin = lay["used"], lay["qmin"]
        U = len(used)
        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        # ROM: per used bit, g = t - qmin + 1 (0 .. 2^B: "q - qmin >= g" is "q > t", also for the
        # thresholds off the grid) and "last used bit of its feature".
        T = lay["bits_per_feature"]
        init = []
        for i, (s, t) in enumerate(zip(used, lay["thresholds"])):
            g = min(max(t - qmin + 1, 0), 1 << B)
            last = i == U - 1 or used[i + 1] // T != s // T
            init.append(g | (int(last) << (B + 1)))
        m.submodules.rom = rom = Memory(shape=B + 2, depth=U, init=init)
        rd = rom.read_port(domain="sync")
        entry_g, entry_last = rd.data[: B + 1], rd.data[B + 1]

        pieces = [Signal(min(64, U - lo), name=f"used{lo // 64}") for lo in range(0, U, 64)]
        used_reg = Cat(*pieces)
        in_bits = [C(0, 1)] * self.core_width
        for i, s in enumerate(used):
            in_bits[s] = used_reg[i]
        in_valid, out_valid = Signal(), Signal()
        out_class = Signal(max(1, (self.classes - 1).bit_length()))
        out_scores = Signal(self.classes * self.score_width)
        m.submodules.core = Instance(
            self.core, i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=in_valid,
            i_in_data=Cat(*in_bits), o_out_valid=out_valid, o_out_class=out_class, o_out_scores=out_scores)
        info = protocol.info2_reply(lay, self.classes, self.score_width)
        tx_left, want_scores, send_info, send_result = _reply_logic(
            m, tx, in_valid, out_valid, out_class, out_scores, self.classes, self.score_width, info)

        j = Signal(range(U))
        j_next = Signal(range(U))
        m.d.comb += [rd.addr.eq(j_next), j_next.eq(j)]
        m.d.sync += j.eq(j_next)
        work = Signal()
        idle = Signal(range(self.timeout + 1))
        if G:  # one byte holds G features
            hold = Signal(8)
            sub = Signal(range(max(G, 2)))
            raw = Array([hold[k * B:(k + 1) * B] for k in range(G)])[sub] if G > 1 else hold[:B]
        else:  # two bytes per feature
            hold = Signal(B)
            low = Signal(8)
            half = Signal()
            raw = hold
        q = Signal(B)  # offset binary: q - qmin
        m.d.comb += q.eq((raw ^ (1 << (B - 1))) if signed else raw)
        bit = Signal()
        # q >= g with g in 0 .. 2^B, as B-bit operands of equal width (Verilator's lint): g = 2^B never holds.
        m.d.comb += bit.eq(~entry_g[B] & (q >= entry_g[:B]))

        state = Signal(2)  # an if-chain, not m.FSM (see UARTReceiver)
        with m.If(state == _S_IDLE):
            with m.If(rx.valid & ~tx_left.any()):
                with m.If((rx.data == protocol.CMD_CLASS) | (rx.data == protocol.CMD_SCORES)):
                    m.d.sync += [want_scores.eq(rx.data == protocol.CMD_SCORES), idle.eq(0), work.eq(0),
                                 state.eq(_S_LOAD)]
                    m.d.comb += j_next.eq(0)
                    if not G:
                        m.d.sync += half.eq(0)
                with m.Elif(rx.data == protocol.CMD_INFO):
                    m.d.comb += send_info.eq(1)
        with m.Elif(state == _S_LOAD):
            m.d.sync += idle.eq(idle + 1)
            with m.If(work):
                m.d.sync += [p.eq(Cat(used_reg[1:], bit)[lo:lo + len(p)]) for p, lo in zip(pieces, range(0, U, 64))]
                m.d.comb += j_next.eq(j + 1)
                with m.If(entry_last):
                    with m.If(j == U - 1):
                        m.d.comb += j_next.eq(0)
                        m.d.sync += [work.eq(0), state.eq(_S_FIRE)]
                    if G > 1:
                        with m.Elif(sub != G - 1):
                            m.d.sync += sub.eq(sub + 1)
                    with m.Else():
                        m.d.sync += work.eq(0)
            with m.If(rx.valid):
                m.d.sync += idle.eq(0)
                if G:
                    m.d.sync += [hold.eq(rx.data), work.eq(1)]
                    if G > 1:
                        m.d.sync += sub.eq(0)
                else:
                    with m.If(~half):
                        m.d.sync += [low.eq(rx.data), half.eq(1)]
                    with m.Else():
                        m.d.sync += [hold.eq(Cat(low, rx.data)[:B]), half.eq(0), work.eq(1)]
            with m.Elif(~work & (idle == self.timeout)):
                m.d.sync += state.eq(_S_IDLE)
        with m.Elif(state == _S_FIRE):
            m.d.comb += in_valid.eq(1)
            m.d.sync += state.eq(_S_WAIT)
        with m.Else():
            with m.If(out_valid):
                m.d.comb += send_result.eq(1)
                m.d.sync += state.eq(_S_IDLE)
        return m


class BoardTop(Elaboratable):
    """A board's top: the board clock, a power-on reset, and the wrapper's ``uart_rx``/``uart_tx`` pins.

    Ports of the Verilog module: ``clk``, ``uart_rx``, ``uart_tx``.
    """

    def __init__(self, wrapper):
        self.wrapper = wrapper
        self.clk = Signal()
        self.uart_rx = Signal(init=1)
        self.uart_tx = Signal(init=1)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain()
        m.domains.por = por = ClockDomain(reset_less=True)
        m.d.comb += [sync.clk.eq(self.clk), por.clk.eq(self.clk)]
        # FPGAs load registers with their initial values: hold the design in reset for 15 cycles.
        timer = Signal(4, init=0)
        with m.If(timer != 15):
            m.d.por += timer.eq(timer + 1)
        m.d.comb += sync.rst.eq(timer != 15)
        m.submodules.uart = self.wrapper
        m.d.comb += [self.wrapper.rx.eq(self.uart_rx), self.uart_tx.eq(self.wrapper.tx)]
        return m


def make_wrapper(bundle: dict, clk_hz: float, baud: int = protocol.DEFAULT_BAUD, timeout_s: float = 0.1):
    """The wrapper of ``bundle``'s board format: ``bundle["uart"]`` (``{"format": "stream", "layout": ...,
    "core": name, "core_width": W}``) selects the stream wrapper; without it, the raw one around ``top``."""
    uart = bundle.get("uart") or {}
    if uart.get("format", "raw") == "stream":
        return StreamUARTWrapper(uart["layout"], uart["core_width"], bundle["classes"], bundle["score_width"],
                                 uart["core"], clk_hz, baud, timeout_s)
    return UARTWrapper(bundle["in_width"], bundle["classes"], bundle["score_width"], bundle["top"],
                       clk_hz, baud, timeout_s)


def wrapper_verilog(bundle: dict, clk_hz: float, baud: int = protocol.DEFAULT_BAUD, name: str = "dwn_uart",
                    timeout_s: float = 0.1) -> str:
    """Verilog of the wrapper alone (ports ``clk``, ``rst``, ``rx``, ``tx``), e.g. for simulation."""
    w = make_wrapper(bundle, clk_hz, baud, timeout_s)
    return to_verilog(w, name, [w.rx, w.tx], widen_comparisons=True)


def board_verilog(bundle: dict, clk_hz: float, baud: int = protocol.DEFAULT_BAUD, name: str = "dwn_board") -> str:
    """Verilog of a board top (ports ``clk``, ``uart_rx``, ``uart_tx``) around the bundle's core."""
    top = BoardTop(make_wrapper(bundle, clk_hz, baud))
    return to_verilog(top, name, [top.clk, top.uart_rx, top.uart_tx], widen_comparisons=True)
