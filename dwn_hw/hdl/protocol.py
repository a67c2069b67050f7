"""The byte protocol between a host and the UART board wrapper (``dwn_hw.hdl.uart``).

8 data bits, no parity, 1 stop bit, 115200 baud unless the bundle was built for another rate.
Every exchange is one command byte from the host and one reply from the board:

======== ============================ ==========================================================
command  host then sends              board answers
======== ============================ ==========================================================
``'C'``  ``P`` payload bytes          1 byte: the class
``'S'``  ``P`` payload bytes          1 byte class, then K scores of ``S`` bytes each
``'I'``  nothing                      8 bytes: ``b"DWN1"``, in_width (u16), K (u8), score width (u8)
======== ============================ ==========================================================

The payload is ``in_data`` of the core (docs/design.md) as ``P = ceil(in_width / 8)`` bytes, least
significant byte first: bit ``i`` of ``in_data`` is bit ``i % 8`` of byte ``i // 8``; bits above
``in_width`` are ignored. Scores are little-endian, ``S = ceil(score_width / 8)`` bytes each.
All multi-byte integers are little-endian. Any other command byte is ignored, and a payload
interrupted for more than ~100 ms is dropped, so a host resynchronises by waiting 0.2 s.
Nothing here imports torch.
"""
from __future__ import annotations

import numpy as np

from dwn_hw.errors import DwnHwError

CMD_CLASS = ord("C")
CMD_SCORES = ord("S")
CMD_INFO = ord("I")
INFO_MAGIC = b"DWN1"
INFO_LEN = 8
DEFAULT_BAUD = 115200


def payload_bytes(in_width: int) -> int:
    return -(-int(in_width) // 8)


def score_bytes(score_width: int) -> int:
    return -(-int(score_width) // 8)


def info_reply(in_width: int, classes: int, score_width: int) -> bytes:
    """The 8 bytes a board answers to ``'I'``."""
    check_shape(in_width, classes, score_width)
    return INFO_MAGIC + int(in_width).to_bytes(2, "little") + bytes([classes, score_width])


def check_shape(in_width: int, classes: int, score_width: int) -> None:
    """Refuse cores the protocol cannot carry (one class byte, a u16 width)."""
    if not 1 <= int(in_width) < 1 << 16:
        raise DwnHwError(f"the UART protocol carries in_width up to 65535 bits, not {in_width}")
    if not 2 <= int(classes) <= 255:
        raise DwnHwError(f"the UART protocol carries 2..255 classes, not {classes}")
    if not 1 <= int(score_width) <= 255:
        raise DwnHwError(f"score width must be 1..255 bits, not {score_width}")


def pack_row(values, bits_each: int, in_width: int) -> bytes:
    """``in_data`` bytes of one sample: ``values[f]`` in bits ``[f*bits_each +: bits_each]``.

    Negative values are written in two's complement (signed grids).
    """
    word = 0
    mask = (1 << bits_each) - 1
    for f, v in enumerate(values):
        word |= (int(v) & mask) << (f * bits_each)
    if word >> in_width:
        raise DwnHwError(f"sample needs more than in_width={in_width} bits")
    return word.to_bytes(payload_bytes(in_width), "little")


def pack_inputs(inputs: np.ndarray, bundle: dict) -> list[bytes]:
    """Payloads of every row of ``inputs`` (grid integers per feature, or bits) for a bundle."""
    inputs = np.asarray(inputs)
    in_width = int(bundle["in_width"])
    bits_each = int(bundle["input_bits"]) if bundle.get("inputs", "features") == "features" else 1
    if inputs.ndim != 2 or inputs.shape[1] * bits_each != in_width:
        raise DwnHwError(f"inputs of shape {list(inputs.shape)} do not fill in_width={in_width} "
                         f"with {bits_each} bit(s) per column")
    return [pack_row(row, bits_each, in_width) for row in inputs.tolist()]


def request(payload: bytes, scores: bool = False) -> bytes:
    return bytes([CMD_SCORES if scores else CMD_CLASS]) + payload


def reply_length(classes: int, score_width: int, scores: bool) -> int:
    return 1 + (int(classes) * score_bytes(score_width) if scores else 0)


def parse_reply(data: bytes, classes: int, score_width: int, scores: bool):
    """``(class, scores or None)`` from a reply; a short or impossible reply is an error."""
    want = reply_length(classes, score_width, scores)
    if len(data) != want:
        raise DwnHwError(f"board answered {len(data)} byte(s), expected {want} (timeout or wrong baud rate?)")
    cls = data[0]
    if cls >= classes:
        raise DwnHwError(f"board answered class {cls}, but the bundle has {classes} classes")
    if not scores:
        return cls, None
    sb = score_bytes(score_width)
    vals = [int.from_bytes(data[1 + c * sb: 1 + (c + 1) * sb], "little") for c in range(classes)]
    return cls, vals


def parse_info(data: bytes) -> dict:
    if len(data) != INFO_LEN or data[:4] != INFO_MAGIC:
        raise DwnHwError(f"no dwn-hw board answered the info request (got {data!r}); check --port and --baud")
    return {"in_width": int.from_bytes(data[4:6], "little"), "classes": data[6], "score_width": data[7]}
