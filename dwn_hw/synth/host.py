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


def identify(ser, bundle: dict) -> dict:
    """Ask the board what it holds and refuse a board built from another bundle."""
    time.sleep(0.2)  # longer than the board's payload timeout: whatever was half sent is dropped
    ser.reset_input_buffer()
    ser.write(bytes([protocol.CMD_INFO]))
    info = protocol.parse_info(ser.read(protocol.INFO_LEN))
    want = {k: int(bundle[k]) for k in ("in_width", "classes", "score_width")}
    if info != want:
        raise DwnHwError(f"the board holds a core with {info}, but the bundle describes {want}")
    return info


def classify(ser, bundle: dict, inputs: np.ndarray, scores: bool = False, progress=None):
    """Classes (int64 [N]) and, with ``scores``, scores (int64 [N, K]; else None) from the board."""
    K, sw = int(bundle["classes"]), int(bundle["score_width"])
    want = protocol.reply_length(K, sw, scores)
    classes = np.zeros(len(inputs), dtype=np.int64)
    all_scores = np.zeros((len(inputs), K), dtype=np.int64) if scores else None
    for i, payload in enumerate(protocol.pack_inputs(inputs, bundle)):
        ser.write(protocol.request(payload, scores))
        cls, sc = protocol.parse_reply(ser.read(want), K, sw, scores)
        classes[i] = cls
        if scores:
            all_scores[i] = sc
        if progress is not None:
            progress(i + 1)
    return classes, all_scores
