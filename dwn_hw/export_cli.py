"""``dwn-hw export``: the command around :func:`dwn_hw.export.export_bundle`.

The one place where the hardware wing meets the torch wing: a checkpoint (anything but an IR ``.json``) is frozen
by ``dwn_hw.freeze.bundle_inputs`` (imported only then), and the IR it gives is exported; an IR file goes straight
to the exporter, with no torch.
"""
from __future__ import annotations

from pathlib import Path

import click

from dwn_hw.export import WRAPS, check_out, export_bundle, resolve_out


@click.command("export")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", type=click.Choice(["verilog"]), default="verilog", show_default=True,
              help="What to write (Verilog bundle).")
@click.option("-o", "--out", required=True, type=click.Path(), help="Bundle folder to write.")
@click.option("--inputs", type=click.Choice(["features", "bits"]), default=None,
              help="in_data carries integer features (encoder in hardware) or thermometer bits. "
                   "[default: features when the model has an encoder]")
@click.option("--pipeline", default="balanced", show_default=True,
              help="none|balanced|max, or tokens: enc, l<i>, layers, pop=<m>, arg=<m> (e.g. enc,l0,l1,pop=2,arg=2).")
@click.option("--board", "boards", multiple=True, help="Also write synth/<board>/ (repeatable).")
@click.option("--wrap", type=click.Choice(list(WRAPS)), default="none", show_default=True,
              help="stream: add a ready/valid wrapper with a skid buffer (rtl/dwn_stream.v).")
@click.option("--prefix", default="", help="Prefix for every module name (several tops in one build).")
@click.option("--lut-style", type=click.Choice(["mux", "cell", "expr", "xilinx", "ice40", "ecp5"]), default="mux",
              show_default=True,
              help="How a LUT is written; xilinx/ice40/ecp5 emit device primitives (no plain simulation).")
@click.option("--estimate/--no-estimate", default=False, show_default=True,
              help="Run yosys synth_xilinx for a per-stage LUT/FF table in the README (slow for big models).")
@click.option("--force", is_flag=True,
              help="Replace OUT if it is a dwn-hw bundle (files it did not write are kept; other folders are refused).")
def export_cmd(model, target, out, inputs, pipeline, boards, wrap, prefix, lut_style, estimate, force):
    """Write a hardware bundle for MODEL (a checkpoint .pt or an IR .json) into OUT."""
    if Path(model).suffix != ".json" and Path(model).exists():
        # A checkpoint: the torch wing freezes it (and computes PyTorch's expectations), then the IR is exported.
        from dwn_hw.freeze import bundle_inputs

        check_out(resolve_out(out), force)  # refuse a bad OUT before the (slow) freeze
        model = {"name": Path(model).name, **bundle_inputs(model)}
    bundle = export_bundle(model, out, inputs=inputs, pipeline=pipeline, boards=boards, force=force, wrap=wrap,
                           prefix=prefix, lut_style=lut_style, estimate=estimate)
    click.echo(f"wrote {out}: top {bundle['top']}, latency {bundle['latency']}, in_width {bundle['in_width']}, "
               f"{bundle['vectors']} vectors (expected from {bundle['expected_from']})")
