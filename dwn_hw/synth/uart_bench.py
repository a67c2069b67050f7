"""cocotb bench of the UART wrapper around a bundle's core: bytes in, classes and scores out.

Run through :func:`dwn_hw.synth.uart_sim.simulate_uart`, which passes the settings in the
environment: ``DWN_UART_SETUP`` (a JSON file with the bundle's widths, the bit period in ns,
the payloads and the expected classes and scores) and ``DWN_UART_RESULT`` (where the bench
writes what the board answered). The host side is the same protocol code ``dwn-hw run`` uses.
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, Timer
from cocotb.utils import get_sim_time

from dwn_hw.hdl import protocol


async def _send(dut, data: bytes, bit_ns: int):
    for byte in data:
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            dut.rx.value = bit
            await Timer(bit_ns, unit="ns")


async def _recv(dut, count: int, bit_ns: int, timeout_bits: int = 400, started=None) -> bytes:
    out = bytearray()
    for n in range(count):
        # Wait for a start bit, giving up after timeout_bits bit periods of silence.
        if int(dut.tx.value) == 1:
            fired = await First(FallingEdge(dut.tx), Timer(timeout_bits * bit_ns, unit="ns"))
            if isinstance(fired, Timer):
                return bytes(out)
        if n == 0 and started is not None:
            started.append(get_sim_time("ns"))
        await Timer(bit_ns // 2, unit="ns")
        byte = 0
        for i in range(8):
            await Timer(bit_ns, unit="ns")
            byte |= int(dut.tx.value) << i
        await Timer(bit_ns, unit="ns")
        assert int(dut.tx.value) == 1, "stop bit is low"
        out.append(byte)
    return bytes(out)


async def _exchange(dut, data: bytes, reply_len: int, bit_ns: int, times=None) -> bytes:
    # Listen while sending (the answer may start before the last stop bit ends), with a timeout
    # that counts the request's own time on the line. ``times`` gets (end of the request's last
    # stop bit, start of the reply) in ns.
    started = []
    rx_task = cocotb.start_soon(_recv(dut, reply_len, bit_ns, timeout_bits=400 + 10 * len(data), started=started))
    await _send(dut, data, bit_ns)
    sent = get_sim_time("ns")
    reply = await rx_task
    if times is not None and started:
        times.append((sent, started[0]))
    return reply


@cocotb.test()
async def uart_classifies_vectors(dut):
    with open(os.environ["DWN_UART_SETUP"]) as f:
        setup = json.load(f)
    bit_ns = int(setup["bit_ns"])
    K, sw = setup["classes"], setup["score_width"]
    dut.rx.value = 1
    dut.rst.value = 1
    Clock(dut.clk, setup["clk_ns"], unit="ns").start()
    await Timer(10 * setup["clk_ns"], unit="ns")
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await Timer(2 * bit_ns, unit="ns")

    result = {"info": None, "classes": [], "scores": []}
    # A stray byte before a command is ignored by the board.
    await _send(dut, b"\x00", bit_ns)
    result["cycles"] = []
    info = await _exchange(dut, bytes([protocol.CMD_INFO]), protocol.INFO2_LEN, bit_ns)
    result["info"] = protocol.parse_info(info)
    for i, hex_payload in enumerate(setup["payloads"]):
        scores = i % 2 == 0  # alternate the two commands
        want = protocol.reply_length(K, sw, scores)
        times = []
        reply = await _exchange(dut, protocol.request(bytes.fromhex(hex_payload), scores), want, bit_ns, times)
        result["cycles"].append(round((times[0][1] - times[0][0]) / setup["clk_ns"]) if times else None)
        cls, sc = protocol.parse_reply(reply, K, sw, scores)
        result["classes"].append(cls)
        result["scores"].append(sc)
    with open(os.environ["DWN_UART_RESULT"], "w") as f:
        json.dump(result, f)
