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

Two request formats; a board is built for one, and its ``'I'`` reply says which (the magic):

* ``DWN1`` (format ``raw``, the original one): the payload is ``in_data`` as above, held whole in
  the wrapper's flip-flops (``8 * P`` of them).
* ``DWN2`` (format ``stream``): the payload is only the *sent features*, the features some LUT reads
  (:func:`stream_layout`), in increasing feature index, as grid integers ``q_f`` (B = ``input_bits``
  bits, two's complement when signed). With B <= 4, ``G = 8 // B`` features share one byte, feature
  ``j`` of a byte at bits ``[j*B +: B]`` (a feature never straddles two bytes; the last byte may be
  partly filled, its upper bits are ignored); with 5 <= B <= 8 one byte per feature (upper bits
  ignored); with 9 <= B <= 16 two bytes per feature, least significant first. The wrapper compares
  each feature with its used thresholds as it arrives and keeps just those bits. ``'I'`` answers
  12 bytes: ``b"DWN2"``, sent features (u16), K (u8), score width (u8), B (u8), signed (u8), used
  thermometer bits (u16).

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
INFO2_MAGIC = b"DWN2"
INFO2_LEN = 12
FORMATS = ("raw", "stream")
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


def info_length(magic: bytes) -> int:
    """Length of the whole ``'I'`` reply that starts with ``magic`` (its first 4 bytes)."""
    if magic == INFO_MAGIC:
        return INFO_LEN
    if magic == INFO2_MAGIC:
        return INFO2_LEN
    raise DwnHwError(f"no dwn-hw board answered the info request (got {magic!r}); check --port and --baud")


def parse_info(data: bytes) -> dict:
    """The fields of an ``'I'`` reply of either format (``format`` says which)."""
    if data[:4] == INFO2_MAGIC and len(data) == INFO2_LEN:
        return {"format": "stream", "features": int.from_bytes(data[4:6], "little"), "classes": data[6],
                "score_width": data[7], "input_bits": data[8], "signed": bool(data[9]),
                "used_bits": int.from_bytes(data[10:12], "little")}
    if len(data) != INFO_LEN or data[:4] != INFO_MAGIC:
        raise DwnHwError(f"no dwn-hw board answered the info request (got {data!r}); check --port and --baud")
    return {"format": "raw", "in_width": int.from_bytes(data[4:6], "little"), "classes": data[6],
            "score_width": data[7]}


# ---- format ``stream`` (DWN2) ----

def stream_layout(ir: dict) -> dict:
    """What a ``stream`` board receives and keeps, from the IR (deterministic).

    ``used``: the thermometer bits (index ``f*T + t`` into the ``--inputs bits`` core's ``in_data``) some
    live LUT reads, ascending (feature-major); ``features``: the features they belong to, ascending
    (the sent features); ``thresholds``: per used bit its threshold; ``input_bits``, ``signed``,
    ``qmin``, ``qmax``, ``per_byte`` (features per byte, 0 when a feature takes two bytes),
    ``bits_per_feature`` (T).
    """
    from dwn_hw.hdl.plan import plan
    from dwn_hw.ir.grid import grid_bounds

    enc = ir["encoder"]
    if enc["kind"] != "thermometer":
        raise DwnHwError("the stream UART format needs an IR with a thermometer encoder")
    B, T = int(enc["input_bits"]), int(enc["bits_per_feature"])
    if not 1 <= B <= 16:
        raise DwnHwError(f"the stream UART format carries features of 1..16 bits, not {B}: use --uart-format raw")
    used = [int(s) for s in plan(ir, "bits").sources]
    if not used:
        raise DwnHwError("no LUT reads any input bit: nothing to send (use --uart-format raw)")
    qmin, qmax = grid_bounds(B, bool(enc["signed"]))
    return {"used": used, "features": sorted({s // T for s in used}),
            "thresholds": [int(enc["thresholds"][s // T][s % T]) for s in used],
            "input_bits": B, "signed": bool(enc["signed"]), "qmin": int(qmin), "qmax": int(qmax),
            "per_byte": 8 // B if B <= 8 else 0, "bits_per_feature": T}


def stream_payload_bytes(layout: dict) -> int:
    n = len(layout["features"])
    return 2 * n if layout["per_byte"] == 0 else -(-n // layout["per_byte"])


def info2_reply(layout: dict, classes: int, score_width: int) -> bytes:
    return (INFO2_MAGIC + len(layout["features"]).to_bytes(2, "little") + bytes([classes, score_width])
            + bytes([layout["input_bits"], int(layout["signed"])]) + len(layout["used"]).to_bytes(2, "little"))


def pack_stream_row(values, layout: dict) -> bytes:
    """The ``stream`` payload of one sample: ``values`` = grid integers of every feature (length F)."""
    B, G = layout["input_bits"], layout["per_byte"]
    mask = (1 << B) - 1
    sent = [int(values[f]) & mask for f in layout["features"]]
    if G == 0:
        return b"".join(v.to_bytes(2, "little") for v in sent)
    out = bytearray()
    for i in range(0, len(sent), G):
        out.append(sum(v << (j * B) for j, v in enumerate(sent[i:i + G])))
    return bytes(out)


def pack_stream_inputs(inputs: np.ndarray, layout: dict, features: int) -> list[bytes]:
    inputs = np.asarray(inputs)
    if inputs.ndim != 2 or inputs.shape[1] != features:
        raise DwnHwError(f"inputs of shape {list(inputs.shape)} are not [N, {features}] grid integers")
    lo, hi = layout["qmin"], layout["qmax"]
    if inputs.size and (inputs.min() < lo or inputs.max() > hi):
        raise DwnHwError(f"inputs must lie on the grid [{lo}, {hi}], found [{inputs.min()}, {inputs.max()}]")
    return [pack_stream_row(row, layout) for row in inputs.tolist()]


def stream_request_bytes(layout: dict) -> int:
    """Command + payload of one ``stream`` request."""
    return 1 + stream_payload_bytes(layout)


def samples_per_s(request_bytes: int, reply_bytes: int, baud: int, cycles: int = 0, clk_hz: float = 0.0) -> float:
    """Stop-and-wait samples/s over an 8N1 link: the bytes' time on the line plus the board's own cycles."""
    t = 10 * (request_bytes + reply_bytes) / baud + (cycles / clk_hz if clk_hz else 0.0)
    return 1.0 / t
