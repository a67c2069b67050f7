"""Simulate a bundle's core inside the UART wrapper (cocotb + Verilator), end to end.

The bench (:mod:`dwn_hw.synth.uart_bench`) sends each vector's bytes over the simulated serial
line and reads the class and scores back; this module builds the simulation, runs it and compares
the answers with the bundle's expected outputs. No torch here.

The Verilator build is kept to rerun fast, but only what a rerun needs: the linked simulator and a
stamp of what it was built from. The object files, precompiled headers and generated C++ (most of
the build's size) are removed after a successful link; a changed core or wrapper builds anew.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from dwn_hw import tools
from dwn_hw.bundle import read_bundle
from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text
from dwn_hw.hdl import protocol
from dwn_hw.synth.cores import core_sources, device_core, resolve_format, stream_core

TOP = "dwn_uart"
BUILD_ARGS = ["-O2"]
STAMP = "built_from.json"
LOG_LINES = 20  # lines of a failed build's log shown with the error



def load_vectors(bundle_dir: str | os.PathLike) -> dict:
    """The bundle's ``vectors/vectors.npz`` arrays, or a one-line error that says what is wrong."""
    path = Path(bundle_dir) / "vectors" / "vectors.npz"
    if not path.is_file():
        raise DwnHwError(f"{path} is missing: export the bundle again")
    return load_npz(path, ("inputs", "classes", "scores"))


def load_npz(path: Path, required: tuple[str, ...] = ("inputs",)) -> dict:
    """The arrays of an ``.npz`` file, checked for ``required`` names."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise DwnHwError(f"{path} is a single .npy array; give an .npz with an 'inputs' array")
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DwnHwError(f"{path} is not an .npz file ({exc}); give an .npz with an 'inputs' array") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DwnHwError(f"{path} has no {', '.join(repr(k) for k in missing)} array")
    return arrays




def _stamp(sources: list[Path], args: list[str]) -> dict:
    digest = hashlib.sha256()
    for src in sources:
        digest.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    from cocotb_tools import config

    return {"sources": digest.hexdigest(), "args": args, "verilator": str(tools.verilator_root()),
            "cocotb": str(config.libs_dir)}


def _shown(paths: list[Path], bundle_dir) -> str:
    """Paths as the user reads them: relative to the bundle where they lie in it."""
    root = Path(bundle_dir).resolve()
    out = []
    for path in paths:
        path = Path(path).resolve()
        out.append(str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
    return ", ".join(out)


def _tail(log: Path, n: int = LOG_LINES) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _prune(build: Path) -> None:
    """Keep the linked simulator and the stamp; the rest of Verilator's build is not needed to rerun."""
    for item in build.iterdir():
        if item.name in (TOP, STAMP, "build.log"):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink()


SHIM = """// The simulated board: synth's board top (synth/<board>/board.v's text) with the bench's port names.
// The board's own power-on reset holds it for 15 cycles; the bench's rst is not connected.
module dwn_uart(input clk, input rst, input rx, output tx);
  dwn_board board(.clk(clk), .uart_rx(rx), .uart_tx(tx));
endmodule
"""


def board_design(bundle_dir: str | os.PathLike, bundle: dict, board_name: str, baud: int, fmt: str,
                 cache: str | os.PathLike, clocks_per_bit: int | None = None) -> dict:
    """What ``dwn-hw synth BUNDLE --board NAME --baud BAUD`` builds, for the simulator.

    The same core (:func:`dwn_hw.synth.cores.device_core`; for ``stream``, the ``--inputs bits`` core in
    the family's LUT style, :func:`stream_core`), the same board top (``board_verilog`` at the board's
    clock and ``baud``, as :func:`dwn_hw.synth.boards.write_board_files` writes it) and the primitives'
    models from yosys' share folder (:mod:`dwn_hw.synth.cellmodels`). ``clocks_per_bit``: a divisor
    other than the real one (``round(clk / baud)``), with the baud rate that makes it at the board's
    clock; nothing else changes. Returns ``{"sources", "board_v", "core", "core_style", "models",
    "models_text", "clocks_per_bit", "clk_hz", "baud", "bundle"}``.
    """
    from dwn_hw.hdl.uart import board_verilog, uart_divisor
    from dwn_hw.synth import cellmodels
    from dwn_hw.synth.boards import grid_fields, load_board

    board = load_board(board_name)
    bundle_dir, cache = Path(bundle_dir).resolve(), Path(cache)
    clk_hz = board.clk_mhz * 1e6
    if clocks_per_bit is None:
        clocks_per_bit = uart_divisor(clk_hz, baud)
    else:
        baud = clk_hz / clocks_per_bit
    chosen = device_core(bundle_dir, bundle, board.family, cache)
    board_bundle, latency, sources = bundle, chosen.latency, list(chosen.sources)
    if fmt == "stream":
        bits_file, uart = stream_core(bundle_dir, bundle, cache, lut_style=chosen.lut_style)
        board_bundle, latency, sources = {**bundle, "uart": uart}, uart["latency"], [bits_file]
    board_v = board_verilog({**grid_fields(board_bundle), "latency": int(latency)}, clk_hz, baud, "dwn_board")
    models_text, taken = cellmodels.models_for(chosen.lut_style, sources)

    core = _shown(sources, bundle_dir)
    core += (f" (the --inputs bits core of dwn.ir.json, {chosen.lut_style} LUTs)" if fmt == "stream"
             else f" ({chosen.lut_style} LUTs)")
    return {"sources": sources, "board_v": board_v, "core": core, "core_style": chosen.lut_style,
            "models": cellmodels.describe(taken), "models_text": models_text, "clocks_per_bit": int(clocks_per_bit),
            "clk_hz": clk_hz, "baud": baud, "bundle": board_bundle, "board": board.name}


def simulate_uart(bundle_dir: str | os.PathLike, work: str | os.PathLike, count: int | None = None,
                  clocks_per_bit: int | None = None, verbose: bool = False, echo=None, uart_format: str = "auto",
                  board: str | None = None, baud: int = protocol.DEFAULT_BAUD) -> dict:
    """Send the bundle's vectors (the first ``count``; None: all) through the simulated wrapper.

    ``uart_format``: the request format the wrapper is built for (:func:`resolve_format`). With
    ``stream`` the wrapper holds the ``--inputs bits`` core built from the bundle's ``dwn.ir.json``
    (:func:`stream_core`), so what is checked is the board as it ships. The result also holds
    ``format``, ``request_bytes``, ``reply_bytes`` (class only / with scores) and ``cycles``: the most
    clock cycles any sample took from the end of its request's last stop bit to its reply's start bit.

    ``board``: simulate what ``dwn-hw synth --board BOARD --baud BAUD`` builds (:func:`board_design`):
    the board top with its power-on reset, the family's device core and the vendor primitives' models
    from yosys, at the real divisor ``round(clk / baud)`` (``clocks_per_bit`` overrides it); the result
    names them (``core``, ``models``, ``board``, ``baud``). Without a board: the wrapper alone around
    ``rtl/``'s portable core (``stream``: the ``mux``-style bits core), 8 clocks per bit unless told.

    Returns the answers and the indices of the mismatches. The simulator's clock is 8 ns per cycle
    whatever the board's (every counter of the wrapper is in cycles: the divisor, not the absolute
    rate, is what its logic depends on), and the bench's bit period ``clocks_per_bit`` cycles. The build's and the simulator's output go to ``work/build/build.log`` and
    ``work/sim.log``; with ``verbose`` to the terminal instead. When the build fails, the error
    quotes the last lines of its log through ``echo`` (a callable taking a text; default: nothing).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    from dwn_hw.hdl.uart import wrapper_verilog
    from dwn_hw.synth import cellmodels

    if count is not None and (not isinstance(count, int) or count < 1):
        raise DwnHwError(f"count must be a positive integer, not {count!r}")
    bundle = read_bundle(bundle_dir)
    vec = load_vectors(bundle_dir)
    stop = None if count is None else count
    inputs, classes, scores = vec["inputs"][:stop], vec["classes"][:stop], vec["scores"][:stop]
    if len(inputs) == 0:
        raise DwnHwError(f"{Path(bundle_dir) / 'vectors' / 'vectors.npz'} holds no vectors: export the bundle again")
    work = Path(work).resolve()
    build = work / "build"
    build.mkdir(parents=True, exist_ok=True)
    clk_ns = 8
    clk_hz = 1e9 / clk_ns
    fmt = resolve_format(bundle_dir, bundle, uart_format)
    design = None
    if board is not None:
        design = board_design(bundle_dir, bundle, board, baud, fmt, work / "core", clocks_per_bit)
        clocks_per_bit = design["clocks_per_bit"]
        bundle = design["bundle"]
        layout = (bundle.get("uart") or {}).get("layout")
        payloads = (protocol.pack_stream_inputs(inputs, layout, int(bundle["features"])) if fmt == "stream"
                    else protocol.pack_inputs(inputs, bundle))
        models = work / "cell_models.v"
        if design["models_text"] and not (models.is_file() and models.read_text() == design["models_text"]):
            atomic_write_text(models, design["models_text"])
        board_v = work / "board.v"
        if not (board_v.is_file() and board_v.read_text() == design["board_v"]):
            atomic_write_text(board_v, design["board_v"])
        wrapper = work / f"{TOP}.v"
        if not (wrapper.is_file() and wrapper.read_text() == SHIM):
            atomic_write_text(wrapper, SHIM)
        sources = [*design["sources"], *([models] if design["models_text"] else []), board_v, wrapper]
    else:
        clocks_per_bit = 8 if clocks_per_bit is None else clocks_per_bit
        core_files = None
        if fmt == "stream":
            core_file, uart = stream_core(bundle_dir, bundle, work / "core")
            core_files = [core_file]
            bundle = {**bundle, "uart": uart}
            payloads = protocol.pack_stream_inputs(inputs, uart["layout"], int(bundle["features"]))
        else:
            payloads = protocol.pack_inputs(inputs, bundle)
        wrapper = work / f"{TOP}.v"
        text = wrapper_verilog(bundle, clk_hz, int(clk_hz / clocks_per_bit))
        if not (wrapper.is_file() and wrapper.read_text() == text):
            atomic_write_text(wrapper, text)
        sources = [*(core_files or core_sources(bundle_dir)), wrapper]
    setup = {"clk_ns": clk_ns, "bit_ns": clk_ns * clocks_per_bit, "classes": int(bundle["classes"]),
             "score_width": int(bundle["score_width"]), "payloads": [p.hex() for p in payloads]}
    atomic_write_text(work / "setup.json", json.dumps(setup))
    result_path = work / "result.json"
    result_path.unlink(missing_ok=True)  # ours, from an earlier run: never read a stale answer

    build_args = BUILD_ARGS + (cellmodels.VERILATOR_WAIVERS if design and design["models_text"] else [])
    stamp = _stamp(sources, build_args)
    stamp_path = build / STAMP
    try:
        built = json.loads(stamp_path.read_text()) == stamp and (build / TOP).is_file()
    except (OSError, json.JSONDecodeError):
        built = False
    env = tools.verilator_env()
    runner = get_runner("verilator")
    if not built:
        stamp_path.unlink(missing_ok=True)
        log = build / "build.log"
        old_env = dict(os.environ)
        os.environ.update(env)  # the runner's build has no environment argument
        try:
            runner.build(sources=sources, hdl_toplevel=TOP, build_dir=build, timescale=("1ns", "1ps"),
                         build_args=build_args, always=True, log_file=None if verbose else log)
        except (RuntimeError, SystemExit) as exc:
            if echo is not None and not verbose:
                echo(_tail(log))
            raise DwnHwError(f"the Verilator build of the UART simulation failed ({exc}); log: {log}") from None
        finally:
            os.environ.clear()
            os.environ.update(old_env)
        _prune(build)
        atomic_write_text(stamp_path, json.dumps(stamp) + "\n")
    sim_log = work / "sim.log"
    try:
        xml = runner.test(test_module="dwn_hw.synth.uart_bench", hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
                          build_dir=build, test_dir=work,
                          extra_env={"DWN_UART_SETUP": str(work / "setup.json"),
                                     "DWN_UART_RESULT": str(result_path)},
                          results_xml=str(work / "results.xml"), log_file=None if verbose else sim_log)
    except (RuntimeError, SystemExit) as exc:
        if echo is not None and not verbose:
            echo(_tail(sim_log))
        raise DwnHwError(f"the UART simulation did not run ({exc}); log: {sim_log}") from None
    _, failed = get_results(Path(xml))
    if failed or not result_path.is_file():
        if echo is not None and not verbose:
            echo(_tail(sim_log))
        raise DwnHwError(f"the UART simulation failed; log: {sim_log}")
    got = json.loads(result_path.read_text())
    want_scores = [s.tolist() if i % 2 == 0 else None for i, s in enumerate(scores)]
    mismatches = [i for i in range(len(inputs))
                  if got["classes"][i] != int(classes[i]) or got["scores"][i] != want_scores[i]]
    K, sw = int(bundle["classes"]), int(bundle["score_width"])
    return {"info": got["info"], "classes": got["classes"], "scores": got["scores"],
            "expected_classes": classes.tolist(), "mismatches": mismatches, "count": len(inputs),
            "format": fmt, "request_bytes": 1 + len(payloads[0]),
            "reply_bytes": [protocol.reply_length(K, sw, False), protocol.reply_length(K, sw, True)],
            "cycles": max([c for c in got["cycles"] if c is not None], default=None), "clocks_per_bit": clocks_per_bit,
            "board": design["board"] if design else None,
            "baud": design["baud"] if design else None,
            "core": design["core"] if design else _shown(sources[:-1], bundle_dir) + " (portable; no board)",
            "models": design["models"] if design else "no vendor cells"}
