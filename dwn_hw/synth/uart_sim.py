"""Simulate a bundle's core inside the UART wrapper (cocotb + Verilator), end to end.

The bench (:mod:`dwn_hw.synth.uart_bench`) sends each vector's bytes over the simulated serial
line and reads the class and scores back; this module builds the simulation, runs it and compares
the answers with the bundle's expected outputs. No torch here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dwn_hw import tools
from dwn_hw.errors import DwnHwError
from dwn_hw.synth import protocol


def read_bundle(bundle_dir: str | os.PathLike) -> dict:
    """``bundle.json`` of an export bundle, with a clear error when it is not one."""
    path = Path(bundle_dir) / "bundle.json"
    if not path.is_file():
        raise DwnHwError(f"{bundle_dir} is not an export bundle: {path} is missing (run `dwn-hw export` first)")
    try:
        bundle = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DwnHwError(f"{path} is not valid JSON: {exc}") from exc
    for key in ("top", "in_width", "classes", "score_width", "latency"):
        if key not in bundle:
            raise DwnHwError(f"{path} lacks the field {key!r}")
    return bundle


def core_sources(bundle_dir: str | os.PathLike) -> list[Path]:
    rtl = sorted((Path(bundle_dir) / "rtl").glob("*.v"))
    if not rtl:
        raise DwnHwError(f"{bundle_dir}/rtl holds no Verilog (.v) file")
    return rtl


def simulate_uart(bundle_dir: str | os.PathLike, work: str | os.PathLike, count: int = 8,
                  clocks_per_bit: int = 8) -> dict:
    """Send the first ``count`` vectors through the simulated wrapper; return answers and mismatches.

    The clock is 8 ns per cycle and the baud rate ``clk / clocks_per_bit`` (the divisor, not the
    absolute rate, is what the wrapper's logic depends on).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    from dwn_hw.hdl.uart import wrapper_verilog

    bundle = read_bundle(bundle_dir)
    vec = np.load(Path(bundle_dir) / "vectors" / "vectors.npz")
    inputs, classes, scores = vec["inputs"][:count], vec["classes"][:count], vec["scores"][:count]
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    clk_ns = 8
    clk_hz = 1e9 / clk_ns
    wrapper = work / "dwn_uart.v"
    wrapper.write_text(wrapper_verilog(bundle, clk_hz, int(clk_hz / clocks_per_bit)))
    setup = {"clk_ns": clk_ns, "bit_ns": clk_ns * clocks_per_bit, "classes": int(bundle["classes"]),
             "score_width": int(bundle["score_width"]),
             "payloads": [p.hex() for p in protocol.pack_inputs(inputs, bundle)]}
    (work / "setup.json").write_text(json.dumps(setup))

    old_env = dict(os.environ)
    os.environ.update(tools.verilator_env())
    try:
        runner = get_runner("verilator")
        runner.build(sources=[*core_sources(bundle_dir), wrapper], hdl_toplevel="dwn_uart",
                     build_dir=work / "build", timescale=("1ns", "1ps"), build_args=["-O2"])
        xml = runner.test(test_module="dwn_hw.synth.uart_bench", hdl_toplevel="dwn_uart",
                          build_dir=work / "build", test_dir=work,
                          extra_env={"DWN_UART_SETUP": str(work / "setup.json"),
                                     "DWN_UART_RESULT": str(work / "result.json")})
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    _, failed = get_results(Path(xml))
    result_path = work / "result.json"
    if failed or not result_path.is_file():
        raise DwnHwError(f"the UART simulation failed; see {work}")
    got = json.loads(result_path.read_text())
    want_scores = [s.tolist() if i % 2 == 0 else None for i, s in enumerate(scores)]
    mismatches = [i for i in range(len(inputs))
                  if got["classes"][i] != int(classes[i]) or got["scores"][i] != want_scores[i]]
    return {"info": got["info"], "classes": got["classes"], "scores": got["scores"],
            "expected_classes": classes.tolist(), "mismatches": mismatches, "count": len(inputs)}
