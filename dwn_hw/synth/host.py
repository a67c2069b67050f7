"""Host side of ``dwn-hw run``: classify samples on a board over its serial port (pyserial).

The protocol is in :mod:`dwn_hw.hdl.protocol`. ``port`` may be anything pyserial opens
(``/dev/ttyUSB1``, ``COM3``, ``socket://host:port``) or an already open serial-like object with
``write``, ``read`` and ``reset_input_buffer``. No torch here.
"""
from __future__ import annotations

import time

import numpy as np

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl import protocol


def open_port(port, baud: int, timeout: float):
    if not isinstance(port, str):
        return port
    try:
        import serial
    except ImportError as exc:
        raise DwnHwError("dwn-hw run needs pyserial: pip install pyserial") from exc
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout)
    except (serial.SerialException, ValueError) as exc:
        raise DwnHwError(f"cannot open serial port {port!r}: {exc}") from exc


def identify(ser, bundle: dict, layout: dict | None = None) -> dict:
    """Ask the board what it holds and refuse a board built from another bundle.

    A ``raw`` board (``DWN1``) must have the bundle's ports; a ``stream`` board (``DWN2``) the sent
    features and used bits of ``layout`` (:func:`dwn_hw.hdl.protocol.stream_layout` of the bundle's IR;
    None: the bundle has no IR, so a stream board is refused).
    """
    time.sleep(0.2)  # longer than the board's payload timeout: whatever was half sent is dropped
    ser.reset_input_buffer()
    ser.write(bytes([protocol.CMD_INFO]))
    head = ser.read(4)
    info = protocol.parse_info(head + ser.read(protocol.info_length(head) - 4))
    if info["format"] == "raw":
        want = {"format": "raw", **{k: int(bundle[k]) for k in ("in_width", "classes", "score_width")}}
    elif layout is None:
        raise DwnHwError("the board speaks the stream format, which needs the bundle's dwn.ir.json: export the "
                         "bundle again")
    else:
        want = {"format": "stream", "features": len(layout["features"]), "classes": int(bundle["classes"]),
                "score_width": int(bundle["score_width"]), "input_bits": layout["input_bits"],
                "signed": layout["signed"], "used_bits": len(layout["used"])}
    if info != want:
        raise DwnHwError(f"the board holds a core with {info}, but the bundle describes {want}")
    return info


def classify(ser, bundle: dict, inputs: np.ndarray, scores: bool = False, progress=None,
             layout: dict | None = None):
    """Classes (int64 [N]) and, with ``scores``, scores (int64 [N, K]; else None) from the board.

    With ``layout`` (a ``stream`` board) the requests carry the sent features only.
    """
    K, sw = int(bundle["classes"]), int(bundle["score_width"])
    want = protocol.reply_length(K, sw, scores)
    classes = np.zeros(len(inputs), dtype=np.int64)
    all_scores = np.zeros((len(inputs), K), dtype=np.int64) if scores else None
    payloads = (protocol.pack_inputs(inputs, bundle) if layout is None
                else protocol.pack_stream_inputs(inputs, layout, int(bundle["features"])))
    for i, payload in enumerate(payloads):
        ser.write(protocol.request(payload, scores))
        cls, sc = protocol.parse_reply(ser.read(want), K, sw, scores)
        classes[i] = cls
        if scores:
            all_scores[i] = sc
        if progress is not None:
            progress(i + 1)
    return classes, all_scores
