"""Amaranth hardware of a DWN, generated from the IR (never from torch).

``build_top(ir, ...) -> (verilog_text, info)`` is the entry point (docs/hardware.md); the
components (:class:`ThermometerEncoder`, :class:`LUTArray` / :class:`LUTLayer`,
:class:`Popcount`, :class:`Argmax`, :class:`DwnTop`, :class:`StreamWrapper`) can be used on
their own.
"""
from dwn_hw.hdl.argmax import Argmax
from dwn_hw.hdl.encoder import ThermometerEncoder
from dwn_hw.hdl.lut import LUT_STYLES, LUTArray, LUTLayer
from dwn_hw.hdl.pipeline import PRESETS, PipelineSpec, parse_pipeline, preset
from dwn_hw.hdl.popcount import Popcount
from dwn_hw.hdl.stream import StreamWrapper, stream_verilog
from dwn_hw.hdl.top import DwnTop, build_top

__all__ = ["Argmax", "DwnTop", "LUTArray", "LUTLayer", "LUT_STYLES", "PRESETS", "PipelineSpec", "Popcount",
           "StreamWrapper", "ThermometerEncoder", "build_top", "parse_pipeline", "preset", "stream_verilog"]
