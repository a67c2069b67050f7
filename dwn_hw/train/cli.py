"""``dwn-hw train``: from a data set to a self-contained checkpoint in one command."""
from __future__ import annotations

from dataclasses import fields

import click

from dwn_hw.errors import DwnHwError
from dwn_hw.train.loop import TrainConfig

_D = TrainConfig()
_POS = click.FloatRange(min=0.0, min_open=True)  # a positive number


def _int_list(name: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise DwnHwError(f"{name} must be comma-separated integers, not {text!r}") from None
    if not values:
        raise DwnHwError(f"{name} needs at least one value, not {text!r}")
    return values


@click.command("train")
@click.option("--dataset", default=_D.dataset, show_default=True,
              help="digits, mnist, fashion-mnist, csv:PATH or npz:PATH (x_train, y_train, x_test, y_test).")
@click.option("--encoder", type=click.Choice(["uniform", "distributive", "gaussian"]), default=_D.encoder,
              show_default=True, help="Thermometer encoder fitted on the training data.")
@click.option("--bits", type=click.IntRange(min=1), default=_D.bits, show_default=True, help="Thermometer bits per feature.")
@click.option("--layers", default=",".join(map(str, _D.layers)), show_default=True,
              help="LUTs per layer, comma-separated.")
@click.option("--n", "--lut-inputs", "n", default=",".join(map(str, _D.n)), show_default=True,
              help="Inputs per LUT: one value, or one per layer (under torchrun spell it --lut-inputs: "
              "torchrun takes --n for a prefix of its own options).")
@click.option("--mapping", type=click.Choice(["learnable", "random"]), default=_D.mapping, show_default=True,
              help="Mapping of the first layer (later layers are random).")
@click.option("--tau", type=_POS, default=_D.tau, show_default=True, help="GroupSum temperature.")
@click.option("--epochs", type=click.IntRange(min=1), default=_D.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=_D.batch_size, show_default=True,
              help="Global batch size (split across processes under torchrun).")
@click.option("--lr", type=_POS, default=_D.lr, show_default=True, help="Adam learning rate.")
@click.option("--lr-step", type=click.IntRange(min=1), default=_D.lr_step, show_default=True,
              help="Multiply the learning rate by --gamma every this many epochs.")
@click.option("--gamma", type=_POS, default=_D.gamma, show_default=True)
@click.option("--seed", type=int, default=_D.seed, show_default=True,
              help="Seeds initialisation, shuffling and the validation split (the test split is fixed).")
@click.option("--shift", type=click.IntRange(min=0), default=_D.shift, show_default=True,
              help="Augment image data sets (digits, mnist, fashion-mnist): move each training image by a random "
                   "-N..N pixels along each axis, every epoch anew.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--val-split", type=click.FloatRange(0.0, 1.0, max_open=True), default=_D.val_split, show_default=True,
              help="Fraction of the training set held out for validation.")
@click.option("--input-bits", type=click.IntRange(1, 32), default=None,
              help="Put raw inputs on a B-bit grid (per-feature scale). Default: the data set's own grid.")
@click.option("--label-column", default=None, help="csv: label column, a name or a 0-based index "
              "[default: the column named 'label', else 0].")
@click.option("--csv-header", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="csv: whether the first row names the columns.")
@click.option("--init-from", type=click.Path(dir_okay=False), default=None,
              help="Start from this checkpoint's LUT tables, mapping weights and thresholds (fine-tuning, e.g. "
              "onto a narrower --input-bits grid); its architecture options are the default.")
@click.option("--init-encoder", type=click.Choice(["keep", "refit"]), default=_D.init_encoder, show_default=True,
              help="With --init-from: keep its thresholds, or fit them again on this run's data.")
@click.option("--threshold-bits", type=click.IntRange(1, 32), default=None,
              help="Place each threshold so that its comparison reads only the top K bits of the input.")
@click.option("--max-input-bits", type=click.IntRange(min=1), default=None,
              help="After --cap-warmup epochs, let the first layer's learnable mapping read only the M encoder "
              "bits it uses most (one comparator each in hardware).")
@click.option("--cap-warmup", type=click.IntRange(min=0), default=_D.cap_warmup, show_default=True,
              help="Epochs before --max-input-bits applies (0 with --init-from: at once).")
@click.option("--receptive-field", type=click.IntRange(min=0), default=None,
              help="Image data sets: local mappings that place and route fast. First-layer LUTs read only pixels "
              "at most R rows/columns from their center (centers spread over the image); later LUTs read among "
              "the --local-fanin LUTs nearest to them.")
@click.option("--local-fanin", type=click.IntRange(min=1), default=None,
              help="With --receptive-field: later layers choose their inputs among this many nearest LUTs "
              "[default: max(4n, 2 x the layer's inputs / its distinct anchors)].")
@click.option("--keep-best", is_flag=True,
              help="Also keep the checkpoint of the epoch with the highest validation accuracy so far in "
              "OUTPUT's name with .best (model.pt -> model.best.pt); needs --val-split. Freeze that file to "
              "select on validation, never on the test set.")
@click.option("-o", "--output", default="model.pt", show_default=True, type=click.Path(dir_okay=False),
              help="Checkpoint written after every epoch.")
@click.option("--metrics-json", type=click.Path(dir_okay=False), default=None,
              help="Write the final metrics (test_accuracy, train_seconds, epochs, ...) here as JSON (replaces an "
              "earlier metrics file of dwn-hw; any other existing file needs --force).")
@click.option("--resume", is_flag=True, help="Continue the run recorded in --output (its options win).")
@click.option("--force", is_flag=True, help="Overwrite an existing --output (and --metrics-json).")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="CPU threads per process (0: PyTorch's default); small batches run fastest on one.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or per-epoch lines.")
@click.pass_context
def train(ctx, dataset, encoder, bits, layers, n, mapping, tau, epochs, batch_size, lr, lr_step, gamma, seed,
          shift, device, val_split, input_bits, label_column, csv_header, init_from, init_encoder, threshold_bits,
          max_input_bits, cap_warmup, receptive_field, local_fanin, keep_best, output, metrics_json, resume, force, threads,
          quiet):
    """Train a DWN and write a self-contained checkpoint (thresholds, grid, weights, training state).

    \b
    dwn-hw train -o model.pt                        the embedded default: digits, ~96 % in seconds
    dwn-hw train --dataset mnist --layers 2000,1000 --n 6 --tau 3.33 -o mnist.pt
    torchrun --nproc_per_node 2 -m dwn_hw.train -o model.pt   several processes (DDP; say --lut-inputs, not --n)
    """
    from dwn_hw.train import loop

    cfg = config_from_params(ctx.params)
    epochs_override = None
    if resume:
        # a resumed run keeps its recorded options; only --epochs may extend it
        src = click.core.ParameterSource
        given = [p for p in _CONFIG_PARAMS if p != "epochs" and ctx.get_parameter_source(p) == src.COMMANDLINE]
        if given:
            raise DwnHwError(f"--resume continues with the recorded options; drop {', '.join('--' + g.replace('_', '-') for g in given)}")
        if ctx.get_parameter_source("epochs") == src.COMMANDLINE:
            epochs_override = epochs
    elif init_from:
        _from_source(ctx, cfg, init_from)
    try:
        loop.run(cfg, output, device=device, resume=resume, force=force, metrics_json=metrics_json,
                 progress=not quiet, epochs_override=epochs_override,
                 threads=threads or None)
    finally:
        loop.shutdown()


# the command's options that make its TrainConfig (option name -> field name where they differ)
_FIELD_OF = {"label_column": "csv_label_column"}
_CONFIG_PARAMS = [p.name for p in train.params
                  if _FIELD_OF.get(p.name, p.name) in {f.name for f in fields(TrainConfig)}]


def config_from_params(params: dict) -> TrainConfig:
    """The :class:`TrainConfig` that ``dwn-hw train`` builds from its parsed options (``ctx.params``)."""
    values = {_FIELD_OF.get(name, name): params[name] for name in _CONFIG_PARAMS}
    values["layers"] = _int_list("--layers", values["layers"])
    values["n"] = _int_list("--n", values["n"])
    return TrainConfig(**values)


def train_argv(cfg: TrainConfig) -> list[str]:
    """The ``dwn-hw train`` options that make ``cfg`` (those at their default left out), without ``-o``.

    ``config_from_params`` of these options, parsed, gives ``cfg`` back (``tests/test_train_argv.py``): the
    sweep's by-hand baseline and the IR's ``meta.training_command`` are built with it.
    """
    argv = []
    by_name = {p.name: p for p in train.params}
    for name in _CONFIG_PARAMS:
        value = getattr(cfg, _FIELD_OF.get(name, name))
        if isinstance(value, (list, tuple)):
            value = ",".join(str(int(v)) for v in value)
        if value == by_name[name].default:
            continue
        flag = by_name[name].opts[0]
        if by_name[name].is_flag:
            if value:
                argv.append(flag)
            continue
        argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def _from_source(ctx, cfg: TrainConfig, path: str) -> None:
    """Architecture options not given on the command line come from the ``--init-from`` checkpoint."""
    from dwn_hw.train import checkpoint as ckpt
    from dwn_hw.train.hardware import ARCH_OPTIONS

    opts = ckpt.read_record(path).get("options") or {}
    src = click.core.ParameterSource
    for name in ARCH_OPTIONS:
        if name in opts and ctx.get_parameter_source(name) != src.COMMANDLINE:
            setattr(cfg, name, list(opts[name]) if isinstance(opts[name], list) else opts[name])
