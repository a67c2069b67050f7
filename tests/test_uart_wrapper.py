"""The UART board wrapper: its receiver/transmitter in Amaranth's simulator, and the whole wrapper
around a real core in cocotb + Verilator (bytes in, classes and scores out, against the expected outputs)."""
import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from dwn_hw import ir as irmod
from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.uart import UARTReceiver, UARTTransmitter, uart_divisor
from test_synth_standin import make_bundle


def test_receiver_and_transmitter_loop_back():
    div = 5
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(div)
    m.submodules.rx = rx = UARTReceiver(div)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = [0x00, 0xFF, 0xA5, 0x3C, 0x81]
    got = []

    async def bench(ctx):
        for byte in sent:
            while ctx.get(tx.busy):
                await ctx.tick()
            ctx.set(tx.data, byte)
            ctx.set(tx.start, 1)
            await ctx.tick()
            ctx.set(tx.start, 0)
        for _ in range(12 * div):
            await ctx.tick()

    async def watch(ctx):
        async for _, _, valid, data in ctx.tick().sample(rx.valid, rx.data):
            if valid:
                got.append(data)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run_until(1e-6 * (len(sent) * 11 * div + 40 * div))
    assert got == sent


def test_divisor_refuses_impossible_rates():
    assert uart_divisor(12e6, 115200) == 104
    with pytest.raises(DwnHwError, match="too slow"):
        uart_divisor(1e6, 500000)
    with pytest.raises(DwnHwError, match="off"):
        uart_divisor(1e6, 190000)


@pytest.mark.parametrize("seed,signed,layers,k", [(11, True, [(40, 4), (24, 3)], 4)])
def test_wrapper_end_to_end_in_cocotb(tmp_path, seed, signed, layers, k):
    from dwn_hw.synth.uart_sim import simulate_uart

    ir = irmod.random_ir(seed, features=5, bits_per_feature=3, input_bits=4, signed=signed, layers=layers, k=k)
    bundle = make_bundle(tmp_path / "bundle", ir, n_vectors=10, seed=seed)
    vec = np.load(tmp_path / "bundle" / "vectors" / "vectors.npz")
    assert len(set(vec["classes"].tolist())) > 1  # the vectors exercise more than one class
    res = simulate_uart(tmp_path / "bundle", tmp_path / "sim", count=10, uart_format="raw")
    assert res["info"] == {"format": "raw", **{k: bundle[k] for k in ("in_width", "classes", "score_width")}}
    assert res["count"] == 10 and res["mismatches"] == []
    assert res["classes"] == vec["classes"].tolist()
    assert res["scores"][0] == vec["scores"][0].tolist()


@pytest.mark.parametrize("in_width,classes,score_width,clk_hz,baud", [
    (20, 4, 3, 125e6, 115200), (320, 10, 6, 12e6, 115200), (9, 2, 9, 1e6, 9600), (6272, 100, 12, 25e6, 57600)])
def test_wrapper_and_board_top_are_lint_clean(tmp_path, in_width, classes, score_width, clk_hz, baud):
    """`verilator --lint-only` with its default warnings: nothing, with no waiver and no -Wno-*."""
    from dwn_hw.check.lint import lint
    from dwn_hw.hdl.uart import board_verilog, wrapper_verilog
    from dwn_hw.synth.flows import core_stub

    bundle = {"in_width": in_width, "classes": classes, "score_width": score_width, "top": "dwn_top"}
    # A core with the right ports whose outputs depend on its inputs, so nothing is unused.
    cw = max(1, (classes - 1).bit_length())
    core = core_stub(bundle).replace("(* blackbox *)\n", "").replace(
        "endmodule", f"  reg v = 0; reg [{in_width - 1}:0] d = 0;\n"
        "  always @(posedge clk) begin v <= in_valid & ~rst; d <= in_data; end\n"
        f"  assign out_valid = v;\n  assign out_class = {cw}'(^d);\n"
        f"  assign out_scores = {classes * score_width}'(d);\nendmodule")
    (tmp_path / "core.v").write_text(core)
    (tmp_path / "wrapper.v").write_text(wrapper_verilog(bundle, clk_hz, baud))
    (tmp_path / "board.v").write_text(board_verilog(bundle, clk_hz, baud))
    assert lint([tmp_path / "core.v"], "dwn_top") == []
    assert lint([tmp_path / "core.v", tmp_path / "wrapper.v"], "dwn_uart") == []
    assert lint([tmp_path / "core.v", tmp_path / "board.v"], "dwn_board") == []


def test_comparisons_with_narrow_constants_are_widened():
    from dwn_hw.hdl.verilog import widen_constants as _widen_comparisons

    cell = ("  cell $eq $9\n    parameter \\A_SIGNED 0\n    parameter \\B_SIGNED 0\n    parameter \\A_WIDTH 8\n"
            "    parameter \\B_WIDTH {bw}\n    parameter \\Y_WIDTH 1\n    connect \\A \\x [7:0]\n"
            "    connect \\B {b}\n    connect \\Y $1\n  end\n")
    out = _widen_comparisons(cell.format(bw=7, b="7'1000011"))
    assert "parameter \\B_WIDTH 8" in out and "connect \\B 8'01000011" in out
    out = _widen_comparisons(cell.format(bw=0, b="{  }"))
    assert "parameter \\B_WIDTH 8" in out and "connect \\B 8'00000000" in out
    same = cell.format(bw=8, b="\\y [7:0]")
    assert _widen_comparisons(same) == same
