"""The IR: the one door between the PyTorch world and the hardware world.

numpy, the standard library and jsonschema only; importing this never imports torch.
Format: ``docs/ir.md``; schema: ``schema_v1.json``.
"""
from dwn_hw.ir.core import (FORMAT, VERSION, IRError, class_width, dumps, group_size,
                            input_width, load, loads, num_input_bits, save, score_width, validate)
from dwn_hw.ir.evaluate import decode_table, encode, evaluate, evaluate_bits, layer_tables, table_hex
from dwn_hw.ir.grid import grid_bounds, grid_range, grid_thresholds, grid_x
from dwn_hw.ir.quantize import quantize
from dwn_hw.ir.random import random_ir, used_bits
from dwn_hw.ir.simplify import simplify

__all__ = [
    "FORMAT", "VERSION", "IRError", "class_width", "decode_table", "dumps", "encode", "evaluate",
    "evaluate_bits", "grid_bounds", "grid_range", "grid_thresholds", "grid_x", "group_size", "input_width",
    "layer_tables", "load", "loads", "num_input_bits", "quantize", "random_ir", "save", "score_width",
    "simplify", "table_hex", "used_bits", "validate",
]
