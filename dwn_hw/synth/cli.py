"""``dwn-hw synth``, ``dwn-hw run`` and ``dwn-hw report``. No torch here."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl import protocol


def _board_names():
    from dwn_hw.synth.boards import list_boards

    return list_boards()


@click.command("synth")
@click.argument("bundle", type=click.Path(exists=True))  # read_bundle says what a file is not
@click.option("--board", "board", required=True, help=f"Board: {', '.join(_board_names())}.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write the report here (replaces only a report dwn-hw wrote, unless --force).")
@click.option("--seed", default=1, show_default=True, help="nextpnr placement seed (the first of --seeds).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Place and route N times (seeds SEED..SEED+N-1), core and board build; the report gives min / "
                   "median / max Fmax and each seed's P&R time, the summary the median.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Placements run at once with --seeds [default: the CPU count].")
@click.option("--uart-format", type=click.Choice(["auto", "raw", "stream"]), default="auto", show_default=True,
              help="Board wrapper request format: stream encodes features as they arrive and keeps only the used "
                   "thermometer bits (auto: stream when the bundle has its dwn.ir.json and takes features).")
@click.option("--placer", type=click.Choice(["heap", "static"]), default="heap", show_default=True,
              help="nextpnr placer (open flows); static spreads large random netlists, which eases routing.")
@click.option("--router", type=click.Choice(["router1", "router2"]), default="router1", show_default=True,
              help="nextpnr router (open flows).")
@click.option("--core-mhz", type=click.FloatRange(min=0, min_open=True, max=1000), default=None,
              help="Clock target of the core's own place-and-route [default: 60 on iCE40, 150 on ECP5, above what "
                   "the parts reach]; a lower one eases routing of large cores (Fmax is still the achieved one).")
@click.option("--toolchain", type=click.Choice(["yowasp", "system"]), default="yowasp", show_default=True,
              help="YoWASP wheels, or yosys/nextpnr on PATH after a version check.")
@click.option("--baud", type=click.IntRange(min=1), default=protocol.DEFAULT_BAUD, show_default=True,
              help="UART rate of the board wrapper.")
@click.option("--core-pnr/--no-core-pnr", default=True, show_default=True,
              help="Place and route the core alone for its own Fmax (open flows).")
@click.option("--board-build/--no-board-build", default=True, show_default=True,
              help="Also build the core inside the UART wrapper (resources, Fmax at the board clock, bitstream); "
                   "off: the core's figures only, which saves a second place-and-route of large designs.")
@click.option("--force", is_flag=True, help="Replace a --json file that dwn-hw did not write.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def synth_cmd(bundle, board, json_path, seed, seeds, jobs, uart_format, placer, router, core_mhz, toolchain, baud, core_pnr, board_build,
              force, quiet):
    """Synthesize an export BUNDLE for a board: resources, Fmax and a bitstream where an open flow exists.

    iCE40 and ECP5 boards go through yosys, nextpnr and icepack/ecppack; Xilinx boards get yosys
    estimates plus Vivado Tcl and XDC. The core alone and the board build (core inside the UART
    wrapper) are reported separately in BUNDLE/synth/BOARD/report.json; the bitstream and the tools'
    scripts, logs and netlists go to BUNDLE/build/synth/BOARD/. The latency reported is the latency
    of the core that was built (the family's own core, which may differ from rtl/'s).
    """
    from dwn_hw.synth.flows import synth

    report = synth(bundle, board, seed=seed, toolchain=toolchain, baud=baud, core_pnr=core_pnr,
                   board_build=board_build, placer=placer, router=router,
                   core_mhz=core_mhz, quiet=quiet, json_out=json_path, force=force, seeds=seeds, jobs=jobs,
                   uart_format=uart_format)
    click.echo(summary_line(report))


def summary_line(r: dict) -> str:
    core = r["core"]
    fmax = lambda v: "n/a (no place-and-route)" if v is None else f"{v:.1f} MHz"  # noqa: E731
    core_fmax = fmax(core["fmax_mhz"]) if core.get("fmax_source") or r["flow"] != "open" else "not run"
    seeds = core.get("pnr_seeds") or {}
    if len(seeds.get("seeds", [])) > 1 and core["fmax_mhz"] is not None:
        core_fmax = (f"{core['fmax_mhz']:.1f} MHz median of {len(seeds['seeds'])} seeds "
                     f"({seeds['fmax_min_mhz']:.1f}-{seeds['fmax_max_mhz']:.1f})")
    latency = f"latency {r['latency_cycles']} cycles"
    portable = r.get("portable_latency_cycles")
    if portable is not None and portable != r["latency_cycles"]:
        latency += f" (rtl/'s portable core: {portable})"
    parts = [f"{r['board']} ({r['part']}): core {core['luts']} LUTs, {core['ffs']} FFs, Fmax {core_fmax},"
             f" {latency};"]
    if r.get("board_build") is False:
        return " ".join(parts + ["board build not run (--no-board-build)"])
    parts += [f"board build {r['luts']} LUTs, {r['ffs']} FFs ({100 * r['utilisation']['luts']:.1f} % of LUTs),"
             f" Fmax {fmax(r['fmax_mhz'])} at a {r['clock_mhz']:g} MHz clock"]
    bseeds = r.get("pnr_seeds") or {}
    if len(bseeds.get("seeds", [])) > 1 and r.get("fmax_mhz") is not None:
        parts.append(f"(median of {len(bseeds['seeds'])} seeds)")
    if r.get("uart"):
        u = r["uart"]
        parts.append(f"; UART {u['format']} {u['request_bytes']} B/request, {u['samples_per_s']:g} samples/s at "
                     f"{u['baud']} baud")
    if r.get("bitstream"):
        parts.append(f"; bitstream {r['bitstream']}")
    elif r.get("vivado"):
        parts.append(f"; Vivado: {r['vivado']['command']}")
    return " ".join(parts)


@click.command("run")
@click.option("--port", required=True, help="Serial port of the board (e.g. /dev/ttyUSB1, COM3, socket://host:port); "
              "`sim` runs the UART wrapper in cocotb + Verilator instead.")
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(exists=True),
              help="The export bundle the board was built from.")
@click.argument("data", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--baud", type=click.IntRange(min=1), default=protocol.DEFAULT_BAUD, show_default=True)
@click.option("--scores", is_flag=True, help="Also read and check the scores (slower).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N samples [default: all of them].")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Seconds to wait for each answer.")
@click.option("-v", "--verbose", is_flag=True, help="--port sim: show the Verilator build and simulator output.")
@click.option("--uart-format", type=click.Choice(["auto", "raw", "stream"]), default="auto", show_default=True,
              help="--port sim: the request format the simulated board is built for (auto: stream when the bundle "
                   "has its dwn.ir.json and takes features; a real board says its own in its info reply).")
@click.option("--clocks-per-bit", type=click.IntRange(min=4), default=None,
              help="--port sim: a baud divisor other than the board's real one, round(clock / --baud) (e.g. 4 = "
                   "3 Mbaud at 12 MHz on the iCEBreaker); without a board: 8.")
@click.option("--board", "board", default=None,
              help="--port sim: simulate what `dwn-hw synth --board BOARD --baud BAUD` builds (board top, the "
                   "family's device core, yosys' models of its primitives) [default: the bundle's one synth/<board>/; "
                   "none: the wrapper around rtl/'s portable core].")
def run_cmd(port, bundle_dir, data, baud, scores, limit, timeout, verbose, uart_format, clocks_per_bit, board):
    """Classify DATA on a board over its UART and print the accuracy.

    DATA is an .npz with `inputs` (grid integers [N, F], or bits) and optionally `labels`; by
    default the bundle's own vectors/vectors.npz, whose expected classes are checked too.
    `--port sim` sends the bundle's vectors through the UART wrapper in simulation (built once in
    BUNDLE/build/run-sim/, reused while the core is unchanged).
    """
    from dwn_hw.bundle import read_bundle
    from dwn_hw.synth import host
    from dwn_hw.synth.uart_sim import load_npz

    bundle = read_bundle(bundle_dir)
    if port == "sim":
        return _run_in_simulation(bundle_dir, data, limit, verbose, uart_format, clocks_per_bit, board, baud)
    path = Path(data) if data else Path(bundle_dir) / "vectors" / "vectors.npz"
    if not path.is_file():
        raise DwnHwError(f"{path} is missing: export the bundle again, or give DATA")
    arrays = load_npz(path)
    n = len(arrays["inputs"]) if limit is None else min(limit, len(arrays["inputs"]))
    inputs = arrays["inputs"][:n]
    layout = None
    if (Path(bundle_dir) / "dwn.ir.json").is_file() and bundle.get("inputs", "features") == "features":
        from dwn_hw import ir as irmod

        layout = protocol.stream_layout(irmod.load(Path(bundle_dir) / "dwn.ir.json"))
    ser = host.open_port(port, baud, timeout)
    try:
        info = host.identify(ser, bundle, layout)
        layout = layout if info["format"] == "stream" else None
        with click.progressbar(length=n, label="classifying on the board", file=sys.stderr) as bar:
            last = [0]

            def step(i):
                bar.update(i - last[0])
                last[0] = i
            classes, got_scores = host.classify(ser, bundle, inputs, scores, step, layout)
    finally:
        if hasattr(ser, "close"):
            ser.close()
    bad = 0
    if "labels" in arrays:
        acc = float(np.mean(classes == arrays["labels"][:n]))
        click.echo(f"accuracy on the board: {acc:.2%} ({int(np.sum(classes == arrays['labels'][:n]))}/{n})")
    if "classes" in arrays:
        agree = classes == arrays["classes"][:n]
        if scores and "scores" in arrays:
            agree &= np.all(got_scores == arrays["scores"][:n], axis=1)
        bad = int(np.sum(~agree))
        what = "classes and scores" if scores else "classes"
        click.echo(f"{what} equal to the expected outputs: {n - bad}/{n}")
    if "labels" not in arrays and "classes" not in arrays:
        click.echo(json.dumps({"classes": classes.tolist()}))
    if bad:
        raise click.exceptions.Exit(1)


# Where `run --port sim` builds and runs, inside the bundle's one folder of tool outputs.
RUN_SIM_DIR = ("build", "run-sim")


def sim_board(bundle_dir, board: str | None) -> str | None:
    """The board `--port sim` simulates: ``board``, else the bundle's one ``synth/<board>/``, else None."""
    from dwn_hw.synth.boards import list_boards

    if board is not None:
        return board
    found = sorted(p.parent.name for p in Path(bundle_dir).glob("synth/*/board.v") if p.parent.name in list_boards())
    if len(found) > 1:
        raise DwnHwError(f"the bundle has board files for {', '.join(found)}: say which with --board")
    return found[0] if found else None


def _run_in_simulation(bundle_dir, data, limit, verbose=False, uart_format="auto", clocks_per_bit=None, board=None,
                       baud=protocol.DEFAULT_BAUD):
    """`--port sim`: the board build (or the UART wrapper around rtl/'s core) in cocotb + Verilator, on the
    bundle's vectors."""
    from dwn_hw.synth.uart_sim import load_vectors, simulate_uart

    if data:
        raise DwnHwError("--port sim runs the bundle's own vectors; leave out DATA")
    board = sim_board(bundle_dir, board)
    total = len(load_vectors(bundle_dir)["inputs"])
    n = total if limit is None else min(limit, total)
    work = Path(bundle_dir).joinpath(*RUN_SIM_DIR)
    what = f"the {board} board build" if board else "the UART wrapper (no board: rtl/'s portable core)"
    click.echo(f"simulating {what} on {n} of the bundle's {total} vectors "
               f"(Verilator build in {work}) ...", err=True)
    res = simulate_uart(bundle_dir, work, count=n, verbose=verbose, echo=lambda text: click.echo(text, err=True),
                        uart_format=uart_format, clocks_per_bit=clocks_per_bit, board=board, baud=baud)
    n, bad = res["count"], len(res["mismatches"])
    click.echo(f"{'board ' + board if board else 'UART wrapper'} in simulation: {n - bad}/{n} vectors matched "
               f"(classes, and every other vector's scores, equal to the expected outputs)")
    click.echo(f"core: {res['core']} with {res['models']}")
    rate = f" at the {res['board']} clock, {res['baud']:.0f} baud" if res["baud"] else ""
    click.echo(f"format {res['format']}: {res['request_bytes']} request bytes, {res['reply_bytes'][0]} reply byte(s), "
               f"at most {res['cycles']} clock cycles from a request's last stop bit to its reply "
               f"({res['clocks_per_bit']} clocks per bit{rate})")
    if bad:
        raise click.exceptions.Exit(1)


@click.command("report")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", "out_dir", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for report.md and the plots.")
@click.option("--force", is_flag=True, help="Replace report.md or plots that dwn-hw did not write.")
def report_cmd(bundles, out_dir, force):
    """Write report.md and PNG plots from the synth reports of one or more BUNDLES.

    A report.md (and plots beside it) that dwn-hw report wrote is replaced; any other file of
    those names is refused without --force.
    """
    from dwn_hw.synth.report import write_report

    path = write_report([Path(b) for b in bundles], Path(out_dir), force=force)
    click.echo(f"wrote {path}")
