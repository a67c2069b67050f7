"""``dwn-hw info`` and ``dwn-hw eval``: the commands around :mod:`dwn_hw.describe`.

Like :mod:`dwn_hw.export_cli`, this sits above both wings: an IR is described and scored by the
torch-free :mod:`dwn_hw.describe`; a checkpoint or a torch-dwn state dict goes to the torch wing,
:mod:`dwn_hw.freeze.cli`, imported only then.
"""
from __future__ import annotations

import json

import click
import numpy as np

from dwn_hw.describe import ir_summary, sniff, test_inputs
from dwn_hw.errors import DwnHwError


@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the table as a JSON object.")
def info_cmd(model, as_json):
    """Describe MODEL: a dwn-hw checkpoint, an IR file or a torch-dwn state dict."""
    if sniff(model) == "ir":
        import dwn_hw.ir as ir_mod

        rows = ir_summary(ir_mod.load(model))
    else:
        from dwn_hw.freeze.cli import torch_summary

        rows = torch_summary(model)
    if as_json:
        click.echo(json.dumps(dict(rows), indent=2))
        return
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def ir_predictions(path, spec: str | None = None):
    """``(pred, y, spec, how)``: the numpy evaluator's classes of the IR file ``path`` on a test set
    (``spec``, default: the data set the IR records), with the true labels."""
    import dwn_hw.ir as ir_mod

    ir = ir_mod.load(path)
    enc = ir["encoder"]
    spec = spec or ((ir.get("meta") or {}).get("accuracy") or {}).get("dataset")
    if not spec or spec == "given":
        raise DwnHwError(f"{path} records no data set; pass --dataset SPEC")
    if enc["kind"] != "thermometer":
        raise DwnHwError("this IR reads thermometer bits (encoder.kind 'none'); eval needs grid inputs")
    q, y, how = test_inputs(spec, (enc["scale"], int(enc["input_bits"]), bool(enc["signed"])), int(enc["features"]))
    _, pred = ir_mod.evaluate(ir, q)
    return pred, y, spec, how


@click.command("eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", "spec", default=None,
              help="digits, mnist, fashion-mnist, csv:PATH or npz:PATH (default: the one the model records).")
def eval_cmd(model, spec):
    """Print the test accuracy of MODEL (a dwn-hw checkpoint, or an IR file run by the numpy evaluator)."""
    if sniff(model) == "ir":
        pred, y, spec, how = ir_predictions(model, spec)
        engine = "IR evaluator (numpy)"
    else:
        from dwn_hw.freeze.cli import checkpoint_predictions

        pred, y, spec, how = checkpoint_predictions(model, spec)
        engine = "PyTorch forward"
    acc = float((np.asarray(pred) == y).mean())
    click.echo(f"accuracy {acc:.4f} ({int((np.asarray(pred) == y).sum())}/{len(y)}) on {spec} test set "
               f"({how}), {engine}")
