"""The stream request format (DWN2): features encoded as their bytes arrive, only the used thermometer
bits kept. Packing in the protocol, and the wrapper around the real ``--inputs bits`` core in cocotb +
Verilator at the tightest divisor (4 clocks per bit: 3 Mbaud at 12 MHz), every vector, bit-exact."""
import numpy as np
import pytest

from dwn_hw import ir as irmod
from dwn_hw.errors import DwnHwError
from dwn_hw.hdl import protocol
from test_synth_standin import make_bundle


def test_packing_never_straddles_a_byte():
    lay = {"features": [0, 2, 3], "input_bits": 3, "per_byte": 2, "signed": False, "qmin": 0, "qmax": 7}
    assert protocol.pack_stream_row([5, 7, 1, 6], lay) == bytes([5 | 1 << 3, 6])
    lay = {"features": [1], "input_bits": 10, "per_byte": 0, "signed": True, "qmin": -512, "qmax": 511}
    assert protocol.pack_stream_row([0, -2], lay) == (1022).to_bytes(2, "little")
    lay2 = {**lay, "used": [3, 4]}
    info = protocol.info2_reply(lay2, 10, 7)
    assert protocol.parse_info(info) == {"format": "stream", "features": 1, "classes": 10, "score_width": 7,
                                         "input_bits": 10, "signed": True, "used_bits": 2}
    assert protocol.info_length(info[:4]) == len(info) == protocol.INFO2_LEN


def test_layout_keeps_only_what_a_lut_reads():
    ir = irmod.random_ir(3, features=12, bits_per_feature=5, input_bits=4, layers=[(6, 2), (4, 2)], k=2)
    lay = protocol.stream_layout(ir)
    from dwn_hw.hdl.plan import plan

    assert lay["used"] == plan(ir, "bits").sources and len(lay["used"]) < 60
    assert lay["features"] == sorted({s // 5 for s in lay["used"]})


def test_a_byte_that_needs_more_cycles_than_the_line_gives_is_refused():
    from dwn_hw.hdl.uart import StreamUARTWrapper

    lay = {"used": list(range(40)), "features": [0], "thresholds": list(range(40)), "input_bits": 8,
           "signed": False, "qmin": 0, "qmax": 255, "per_byte": 1, "bits_per_feature": 40}
    StreamUARTWrapper(lay, 120, 2, 3, clk_hz=12e6, baud=115200)  # 104 clocks a bit: fine
    with pytest.raises(DwnHwError, match="comparator cycles"):
        StreamUARTWrapper(lay, 120, 2, 3, clk_hz=12e6, baud=3_000_000)


@pytest.mark.parametrize("seed,input_bits,signed,T", [
    (31, 4, True, 3),    # 2 features a byte, signed (offset binary)
    (32, 5, False, 3),   # one feature a byte, unused upper bits (the digits grid)
    (33, 2, False, 3),   # 4 features a byte, thresholds off the grid included
    (34, 10, True, 6),   # two bytes a feature
])
def test_stream_wrapper_end_to_end(tmp_path, seed, input_bits, signed, T):
    from dwn_hw.synth.uart_sim import simulate_uart

    ir = irmod.random_ir(seed, features=9, bits_per_feature=T, input_bits=input_bits, signed=signed,
                         layers=[(30, 4), (12, 3)], k=3)
    bundle = make_bundle(tmp_path / "b", ir, n_vectors=12, seed=seed)
    vec = np.load(tmp_path / "b" / "vectors" / "vectors.npz")
    res = simulate_uart(tmp_path / "b", tmp_path / "sim", clocks_per_bit=4, uart_format="stream")
    lay = protocol.stream_layout(ir)
    assert res["format"] == "stream"
    assert res["info"] == {"format": "stream", "features": len(lay["features"]), "classes": bundle["classes"],
                           "score_width": bundle["score_width"], "input_bits": input_bits, "signed": signed,
                           "used_bits": len(lay["used"])}
    assert res["count"] == 12 and res["mismatches"] == []
    assert res["classes"] == vec["classes"].tolist()
    assert res["request_bytes"] == 1 + protocol.stream_payload_bytes(lay)
    assert 0 < res["cycles"] < 100
