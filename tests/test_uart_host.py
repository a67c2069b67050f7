"""The host side of the UART protocol (`dwn-hw run`) against a board emulated with the IR evaluator."""
import numpy as np
import pytest
from click.testing import CliRunner

from dwn_hw import ir as irmod
from dwn_hw.errors import DwnHwError
from dwn_hw.hdl import protocol
from dwn_hw.synth import host


class FakeBoard:
    """A serial-like object that answers like the UART wrapper, computing with the IR evaluator."""

    def __init__(self, ir, bundle, corrupt_class_of=None):
        self.ir, self.bundle, self.out, self.buf = ir, bundle, bytearray(), bytearray()
        self.corrupt = corrupt_class_of
        self.F, self.B = int(bundle["features"]), int(bundle["input_bits"])
        self.P = protocol.payload_bytes(bundle["in_width"])

    def reset_input_buffer(self):
        self.out.clear()

    def close(self):
        pass

    def write(self, data):
        self.buf += data
        while self.buf:
            cmd = self.buf[0]
            if cmd == protocol.CMD_INFO:
                self.out += protocol.info_reply(self.bundle["in_width"], self.bundle["classes"],
                                                self.bundle["score_width"])
                del self.buf[:1]
            elif cmd in (protocol.CMD_CLASS, protocol.CMD_SCORES):
                if len(self.buf) < 1 + self.P:
                    return
                word = int.from_bytes(bytes(self.buf[1:1 + self.P]), "little")
                del self.buf[:1 + self.P]
                q = [(word >> (f * self.B)) & ((1 << self.B) - 1) for f in range(self.F)]
                if self.bundle["signed"]:
                    q = [v - (1 << self.B) if v >> (self.B - 1) else v for v in q]
                scores, classes = irmod.evaluate(self.ir, np.array([q], dtype=np.int64))
                cls = int(classes[0])
                if self.corrupt is not None and q == list(self.corrupt):
                    cls = (cls + 1) % self.bundle["classes"]
                self.out.append(cls)
                if cmd == protocol.CMD_SCORES:
                    sb = protocol.score_bytes(self.bundle["score_width"])
                    for s in scores[0]:
                        self.out += int(s).to_bytes(sb, "little")
            else:
                del self.buf[:1]

    def read(self, n):
        data, self.out = bytes(self.out[:n]), self.out[n:]
        return data


def _setup(signed):
    ir = irmod.random_ir(5, features=6, bits_per_feature=3, input_bits=5, signed=signed,
                         layers=[(40, 4), (30, 3)], k=5)
    bundle = {"in_width": 30, "classes": 5, "score_width": irmod.score_width(ir), "features": 6,
              "input_bits": 5, "signed": signed, "inputs": "features", "top": "dwn_top", "latency": 1}
    qmin, qmax = irmod.grid_range(ir["encoder"])
    q = np.random.default_rng(1).integers(qmin, qmax + 1, size=(25, 6))
    return ir, bundle, q


@pytest.mark.parametrize("signed", [False, True])
def test_classify_over_the_protocol_matches_the_evaluator(signed):
    ir, bundle, q = _setup(signed)
    board = FakeBoard(ir, bundle)
    assert host.identify(board, bundle) == {"format": "raw",
                                            **{k: bundle[k] for k in ("in_width", "classes", "score_width")}}
    want_s, want_c = irmod.evaluate(ir, q)
    classes, scores = host.classify(board, bundle, q, scores=True)
    assert np.array_equal(classes, want_c) and np.array_equal(scores, want_s)
    classes, none = host.classify(board, bundle, q, scores=False)
    assert np.array_equal(classes, want_c) and none is None


def test_identify_refuses_another_core():
    ir, bundle, _ = _setup(False)
    with pytest.raises(DwnHwError, match="the board holds a core"):
        host.identify(FakeBoard(ir, dict(bundle, in_width=31)), bundle)


def test_pack_row_bit_layout():
    # feature f in bits [f*B +: B], two's complement, least significant byte first
    assert protocol.pack_row([1, 2, 3], 4, 12) == bytes([0x21, 0x03])
    assert protocol.pack_row([-1, 0], 3, 6) == bytes([0x07])
    with pytest.raises(DwnHwError, match="in_width"):
        protocol.pack_row([255], 8, 7)


def test_short_reply_is_a_clear_error():
    with pytest.raises(DwnHwError, match="answered 0 byte"):
        protocol.parse_reply(b"", 10, 5, False)
    with pytest.raises(DwnHwError, match="class 12"):
        protocol.parse_reply(bytes([12]), 10, 5, False)


def test_run_command_reports_accuracy_and_mismatches(tmp_path, monkeypatch):
    import json

    from dwn_hw.synth.cli import run_cmd

    ir, bundle, q = _setup(False)
    scores, classes = irmod.evaluate(ir, q)
    labels = classes.copy()
    labels[:5] = (labels[:5] + 1) % 5  # the model is wrong on 5 samples: accuracy 80 %
    (tmp_path / "vectors").mkdir()
    np.savez(tmp_path / "vectors" / "vectors.npz", inputs=q, scores=scores, classes=classes, labels=labels)
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    monkeypatch.setattr(host.time, "sleep", lambda s: None)
    monkeypatch.setattr(host, "open_port", lambda port, baud, timeout: FakeBoard(ir, bundle))
    res = CliRunner().invoke(run_cmd, ["--port", "fake", "--bundle", str(tmp_path), "--scores"])
    assert res.exit_code == 0, res.output
    assert "accuracy on the board: 80.00% (20/25)" in res.output
    assert "classes and scores equal to the expected outputs: 25/25" in res.output
    # A board that gets one sample wrong fails the run.
    monkeypatch.setattr(host, "open_port", lambda port, baud, timeout: FakeBoard(ir, bundle, q[3].tolist()))
    res = CliRunner().invoke(run_cmd, ["--port", "fake", "--bundle", str(tmp_path)])
    assert res.exit_code == 1 and "24/25" in res.output


class FakeStreamBoard(FakeBoard):
    """Answers like the stream (DWN2) wrapper: the sent features only, packed as the protocol says."""

    def __init__(self, ir, bundle):
        super().__init__(ir, bundle)
        self.layout = protocol.stream_layout(ir)
        self.P = protocol.stream_payload_bytes(self.layout)

    def write(self, data):
        self.buf += data
        while self.buf:
            cmd = self.buf[0]
            if cmd == protocol.CMD_INFO:
                self.out += protocol.info2_reply(self.layout, self.bundle["classes"], self.bundle["score_width"])
                del self.buf[:1]
            elif cmd in (protocol.CMD_CLASS, protocol.CMD_SCORES):
                if len(self.buf) < 1 + self.P:
                    return
                payload = bytes(self.buf[1:1 + self.P])
                del self.buf[:1 + self.P]
                q = [0] * self.F  # features nobody reads: any value
                G = self.layout["per_byte"]
                for i, f in enumerate(self.layout["features"]):
                    v = (payload[i // G] >> ((i % G) * self.B)) & ((1 << self.B) - 1)
                    q[f] = v - (1 << self.B) if self.bundle["signed"] and v >> (self.B - 1) else v
                scores, classes = irmod.evaluate(self.ir, np.array([q], dtype=np.int64))
                self.out.append(int(classes[0]))
                if cmd == protocol.CMD_SCORES:
                    for s in scores[0]:
                        self.out += int(s).to_bytes(protocol.score_bytes(self.bundle["score_width"]), "little")
            else:
                del self.buf[:1]


@pytest.mark.parametrize("signed", [False, True])
def test_classify_over_the_stream_format(signed):
    ir, bundle, q = _setup(signed)
    board = FakeStreamBoard(ir, bundle)
    layout = protocol.stream_layout(ir)
    with pytest.raises(DwnHwError, match="stream format"):
        host.identify(board, bundle)  # no IR given: refused
    assert host.identify(board, bundle, layout)["format"] == "stream"
    want_s, want_c = irmod.evaluate(ir, q)
    classes, scores = host.classify(board, bundle, q, scores=True, layout=layout)
    assert np.array_equal(classes, want_c) and np.array_equal(scores, want_s)
