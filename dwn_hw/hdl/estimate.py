"""Resource estimate per stage with yosys ``synth_xilinx`` (for the bundle README).

The design is synthesised with its hierarchy kept and LUTs written as ``LUT6`` primitives
(so the LUT layers cost exactly what they hold); ``stat -json`` then gives each module's cells,
summed here per stage: encoder, each LUT layer, popcount, argmax and registers.
"""
from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

XILINX_SCRIPT = "synth_xilinx -top {top}{flatten}; tee -q -o {stat} stat -json"


def run_yosys(verilog_paths, top: str, *, flatten: bool = True, timeout: int = 1800) -> dict:
    """Synthesise with ``synth_xilinx``; return ``{"seconds", "cpu_seconds", "modules": {name: cell counts}}``."""
    from dwn_hw import tools

    # YoWASP's yosys sees only its working folder: run it in a scratch folder holding copies.
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for i, p in enumerate(verilog_paths):
            names.append(f"in{i}.v")
            (Path(tmp) / names[-1]).write_bytes(Path(p).read_bytes())
        reads = "; ".join(f"read_verilog {n}" for n in names)
        script = reads + "; " + XILINX_SCRIPT.format(top=top, flatten=" -flatten" if flatten else "", stat="stat.json")
        start, cpu = time.perf_counter(), _children_cpu()
        tools.run_yosys(["-q", "-p", script], tmp, timeout=timeout)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
        data = json.loads((Path(tmp) / "stat.json").read_text())
    modules = {name.lstrip("\\"): mod.get("num_cells_by_type", {}) for name, mod in data["modules"].items()}
    return {"seconds": seconds, "cpu_seconds": cpu, "modules": modules}


def _children_cpu() -> float:
    # CPU time of finished children: on a shared machine wall time says little about yosys itself.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def luts(cells: dict) -> int:
    return sum(v for k, v in cells.items() if k.startswith("LUT"))


def flops(cells: dict) -> int:
    return sum(v for k, v in cells.items() if k.startswith("FD"))


def stage_of(module: str, top: str) -> str:
    rest = module[len(top):]
    if rest.startswith("_encoder"):
        return "encoder"
    if rest.startswith("_layer"):
        return f"layer {rest[len('_layer'):]}"
    if rest.startswith("_pop") or rest.startswith(".pop"):
        return "popcount"
    if rest.startswith(".argmax"):
        return "argmax"
    return "top (registers, glue)"


def stage_estimate(ir: dict, inputs: str, pipeline, name: str = "dwn_top") -> dict:
    """``{"seconds", "stages": {stage: {"luts", "flops", "carry4"}}}`` for the design of ``ir``.

    Module instance counts are not multiplied out, which is exact here: every module of a
    top is instantiated once.
    """
    from dwn_hw.hdl.top import build_top

    text, info = build_top(ir, inputs=inputs, pipeline=pipeline, name=name, lut_style="xilinx")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "design.v"
        path.write_text(text)
        result = run_yosys([path], info["top"], flatten=False)
    stages: dict = {}
    for module, cells in result["modules"].items():
        if not module.startswith(info["top"]):
            continue
        s = stages.setdefault(stage_of(module, info["top"]), {"luts": 0, "flops": 0, "carry4": 0})
        s["luts"] += luts(cells)
        s["flops"] += flops(cells)
        s["carry4"] += cells.get("CARRY4", 0)
    return {"seconds": round(result["seconds"], 1), "stages": stages}
