"""``dwn-hw sim OUT``: run the bundle's cocotb bench (the one in ``sim/``) on Verilator.

The bench itself (``sim/run_sim.py`` + ``sim/test_dwn.py``) is standalone so that a bundle
runs without dwn-hw; this module loads that same file and adds the CLI, the pinned
Verilator environment and :class:`~dwn_hw.errors.DwnHwError` messages. No torch here.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from dwn_hw import tools
from dwn_hw.errors import DwnHwError
from dwn_hw.resources import data_path


def load_bench():
    """The bench runner module (``sim/run_sim.py`` as shipped with dwn-hw)."""
    name = "dwn_hw_sim_bench"
    if name in sys.modules:
        return sys.modules[name]
    path = data_path("sim") / "run_sim.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def harness_verilog(units: list[dict], name: str = "dwn_harness") -> str:
    """A top module that instantiates many designs side by side, for one Verilator build.

    Each unit names its module (``top``, e.g. from ``build_top(..., prefix="m3_")``), its port
    prefix (``ports``) and its widths (``in_width``, ``classes``, ``score_width``,
    ``class_width``); the harness exposes that design's ports as ``<ports>in_data`` and so on,
    sharing ``clk`` and ``rst``.
    """
    decl, body = ["  input wire clk", "  input wire rst"], []
    for i, u in enumerate(units):
        p = u["ports"]
        widths = {"in_valid": 1, "in_data": u["in_width"], "out_valid": 1,
                  "out_class": u["class_width"], "out_scores": u["classes"] * u["score_width"]}
        for port, w in widths.items():
            kind = "input" if port.startswith("in_") else "output"
            decl.append(f"  {kind} wire [{w - 1}:0] {p}{port}")
        conns = ", ".join(f".{port}({p}{port})" for port in widths)
        body.append(f"  {u['top']} u{i} (.clk(clk), .rst(rst), {conns});")
    return f"module {name} (\n" + ",\n".join(decl) + "\n);\n" + "\n".join(body) + "\nendmodule\n"


def run_units(units: list[dict], sources: list, toplevel: str, build_dir, sim: str = "verilator",
              jobs: int | None = None, max_report: int = 10, verbose: bool = False, tuned: bool = True) -> dict:
    """Build once and stream every unit's vectors (see ``run_sim.run``); bench errors become DwnHwError."""
    bench = load_bench()
    env = tools.verilator_env() if sim == "verilator" else {}
    try:
        return bench.run(units, sources, toplevel, build_dir, sim=sim, jobs=jobs, max_report=max_report,
                         env=env, verbose=verbose, tuned=tuned)
    except bench.SimError as exc:
        raise DwnHwError(str(exc)) from exc


def simulate(bundle, sim: str = "verilator", build_dir=None, jobs: int | None = None,
             max_report: int = 10, verbose: bool = False) -> dict:
    """Simulate an export bundle; return the bench's result (``ok``, ``units``, ``build_s``, ``run_s``)."""
    from dwn_hw.bundle import read_bundle

    bench = load_bench()
    bundle = Path(bundle)
    if not bundle.exists():
        raise DwnHwError(f"bundle folder {bundle} does not exist (dwn-hw export ... -o {bundle})")
    read_bundle(bundle)          # a file or a folder that is not a bundle: one clear line
    try:
        spec, sources = bench.load_bundle(bundle)
    except bench.SimError as exc:
        raise DwnHwError(str(exc)) from exc
    return run_units([spec], sources, spec["top"], build_dir or bundle / "build" / "sim", sim=sim, jobs=jobs,
                     max_report=max_report, verbose=verbose)


@click.command("sim")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--sim", "simulator", type=click.Choice(["verilator", "icarus"]), default="verilator",
              show_default=True, help="Simulator (Icarus is only usable for small designs).")
@click.option("--build-dir", type=click.Path(path_type=Path), default=None,
              help="Where to build [default: OUT/build/sim].")
@click.option("--jobs", type=int, default=None, help="C++ build jobs [default: all cores].")
@click.option("--max-report", type=int, default=10, show_default=True, help="Mismatches to list.")
@click.option("-v", "--verbose", is_flag=True, help="Show the build and simulator output.")
def sim_cmd(out, simulator, build_dir, jobs, max_report, verbose):
    """Check the bundle OUT's Verilog bit-exact against its vectors (scores and class of every vector).

    Exits 0 when all match, 1 with a table of the first mismatches otherwise.
    """
    result = simulate(out, sim=simulator, build_dir=build_dir, jobs=jobs, max_report=max_report,
                      verbose=verbose)
    click.echo(load_bench().format_report(result))
    if not result["ok"]:
        sys.exit(1)
