"""The training loop: one process or many (``torchrun``, DistributedDataParallel).

Every epoch ends with an atomic checkpoint write, so ``--resume`` after a crash or ``kill -9``
loses at most the epoch in flight, and a resumed run continues exactly as an uninterrupted one
would (optimizer, scheduler and the shuffling generator are all restored).

With ``W`` processes, each global batch of ``batch_size`` samples is cut into ``W`` contiguous
chunks; each process's loss is its summed cross-entropy times ``W / batch_size``, so after DDP's
gradient averaging every step equals a one-process step on the joined batch.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from dwn_hw import outputs
from dwn_hw.errors import DwnHwError, Interrupted, show
from dwn_hw.fsutil import atomic_write_text
from dwn_hw.train import arch as arch_mod
from dwn_hw.train import augment, locality
from dwn_hw.train import checkpoint as ckpt
from dwn_hw.train import hardware
from dwn_hw.datasets import DataSet, load_dataset


@dataclass
class TrainConfig:
    """Everything that decides a training run (recorded in the checkpoint as ``options``).

    The defaults train the embedded digits model: one learnable layer of 500 four-input LUTs (one
    iCE40 LUT4 each) into GroupSum. Over seeds 0..7 it reached 95.8-97.2 % test accuracy (mean
    96.3 %), against 95.0-96.7 % for 500 six-input LUTs and 93.6-95.0 % for 300,100 six-input LUTs;
    30 epochs take about 5 s on one unloaded core (see ``bench/train_digits.py``).
    """

    dataset: str = "digits"
    encoder: str = "distributive"
    bits: int = 3
    layers: list = field(default_factory=lambda: [500])
    n: list = field(default_factory=lambda: [4])
    mapping: str = "learnable"
    tau: float = 3.0
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-2
    lr_step: int = 20
    gamma: float = 0.1
    seed: int = 0
    shift: int = 0  # training images moved by a random -shift..shift pixels per axis (image data sets)
    val_split: float = 0.0
    input_bits: int | None = None
    csv_label_column: str | None = None
    csv_header: str = "auto"
    # hardware-aware options (dwn_hw.train.hardware)
    init_from: str | None = None      # start from this checkpoint's weights
    init_encoder: str = "keep"        # with init_from: keep its thresholds, or refit them on this run's data
    threshold_bits: int | None = None  # each comparison reads only the top K bits of the input
    max_input_bits: int | None = None  # the first layer's learnable mapping reads at most M encoder bits
    cap_warmup: int = 1               # epochs before the cap is applied
    receptive_field: int | None = None  # local mappings: first-layer LUTs read pixels within R of their center
    local_fanin: int | None = None    # with receptive_field: later LUTs read among the F nearest
    keep_best: bool = False           # also keep the checkpoint of the best validation epoch (best_path)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"], d["n"] = [int(v) for v in self.layers], [int(v) for v in self.n]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def check(self) -> None:
        for name in ("epochs", "batch_size", "lr_step", "bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise DwnHwError(f"--{name.replace('_', '-')} must be a positive integer, not {show(v)}")
        for name in ("lr", "gamma", "tau"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise DwnHwError(f"--{name.replace('_', '-')} must be a positive number, not {show(v)}")
        if self.input_bits is not None and not 1 <= self.input_bits <= 32:
            raise DwnHwError(f"--input-bits must be in 1..32, not {show(self.input_bits)}")
        hardware.check_options(self)
        if self.keep_best and not self.val_split:
            raise DwnHwError("--keep-best picks the epoch by validation accuracy: it needs --val-split above 0")


def best_path(output) -> Path:
    """Where ``--keep-best`` keeps the best validation epoch's checkpoint: ``model.pt`` -> ``model.best.pt``."""
    p = Path(output)
    return p.with_name(p.stem + ".best" + (p.suffix or ".pt"))


# ----------------------------------------------------------------------------- processes

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    """Rank and world size as torchrun sets them (one process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, d: Dist) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise DwnHwError(f"--device must be auto, cpu or cuda, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DwnHwError("--device cuda asked for, but this PyTorch sees no CUDA device")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "cuda" and d.world > gpus:
        # NCCL refuses two processes on one GPU
        raise DwnHwError(f"--device cuda with {d.world} processes needs {d.world} GPUs, this machine has {gpus}; "
                         "use fewer processes or --device cpu")
    if name == "cuda" or (name == "auto" and 0 < gpus and d.world <= gpus):
        return torch.device("cuda", d.local_rank)
    return torch.device("cpu")


def init_process_group(d: Dist, device: torch.device) -> None:
    import torch.distributed as dist

    if d.world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=d.rank, world_size=d.world)


def wrap_ddp(model: torch.nn.Module, d: Dist, device: torch.device) -> torch.nn.Module:
    if d.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    from dwn_hw.nn import fused

    # the fused mapping update computes its gradient inside optimizer.step(), after DDP's
    # all-reduce: every process would step on its own gradient. Real .grad tensors instead.
    fused.enabled = False
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_sum(values: list[float], d: Dist, device: torch.device) -> list[float]:
    if d.world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ----------------------------------------------------------------------------- steps

def local_chunk(batch_idx: torch.Tensor, d: Dist) -> torch.Tensor:
    """This process's contiguous share of a global batch."""
    return torch.tensor_split(batch_idx, d.world)[d.rank]


def train_step(model, optimizer, bits: torch.Tensor, y: torch.Tensor, global_batch: int, world: int):
    """One optimizer step on this process's chunk; returns (summed loss, correct) of the chunk.

    The loss is scaled so that DDP's mean over ``world`` processes gives the mean over the
    global batch.
    """
    out = model(bits)
    loss_sum = torch.nn.functional.cross_entropy(out, y, reduction="sum")
    optimizer.zero_grad(set_to_none=True)
    (loss_sum * (world / global_batch)).backward()
    optimizer.step()
    correct = (out.detach().argmax(dim=1) == y).sum()
    return loss_sum.detach(), correct


@torch.no_grad()
def accuracy(model, encoder, x: torch.Tensor, y: torch.Tensor, batch: int = 4096) -> float:
    """Test-time accuracy (eval mode; argmax picks the lowest index among ties, as hardware does)."""
    if len(y) == 0:
        return float("nan")
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        out = model(encoder.binarize(x[i:i + batch]))
        correct += int((out.argmax(dim=1) == y[i:i + batch]).sum())
    model.train(was)
    return correct / len(y)


# ----------------------------------------------------------------------------- the run

def _data(cfg: TrainConfig) -> DataSet:
    csv = {}
    if cfg.csv_label_column is not None:
        csv["label_column"] = cfg.csv_label_column
    if cfg.csv_header != "auto":
        csv["header"] = cfg.csv_header
    return load_dataset(cfg.dataset, input_bits=cfg.input_bits, val_split=cfg.val_split, seed=cfg.seed,
                        csv_options=csv)


def _record(cfg, ds, encoder, arch, model, optimizer, scheduler, shuffle, epoch, history, metrics,
            hw=None) -> dict:
    cpu = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    return {"hardware": dict(hw or {}),
        "architecture": arch, "encoder": ckpt.encoder_record(encoder), "grid": ds.grid.to_meta(),
        "classes": list(ds.class_names), "tau": float(cfg.tau), "data": ds.meta, "seed": int(cfg.seed),
        "options": cfg.to_dict(), "state_dict": cpu, "metrics": metrics,
        "train_state": {"epoch": int(epoch), "optimizer": _to_cpu(optimizer.state_dict()),
                        "scheduler": scheduler.state_dict(),
                        "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
                        "history": history},
    }


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def run(cfg: TrainConfig, output: str, *, device: str = "auto", resume: bool = False, force: bool = False,
        metrics_json: str | None = None, progress: bool = True, epochs_override: int | None = None,
        threads: int | None = 1, log=None, on_epoch=None) -> dict:
    """Train, writing ``output`` after every epoch; returns the final metrics dict.

    Parameters
    ----------
    cfg : TrainConfig
        The run's options (ignored in favour of the recorded ones when resuming).
    output : str
        Checkpoint path.
    resume : bool
        Continue the run recorded in ``output`` (start afresh when it does not exist yet).
    force : bool
        Overwrite an existing ``output`` instead of refusing.
    epochs_override : int, optional
        On resume: train to this many epochs in all instead of the recorded number.
    threads : int or None
        CPU threads per process (None: PyTorch's default). One is the default because the
        small batches of LUT training lose more to thread hand-offs than they gain (measured:
        1.1 s against 9.3 s per digits epoch on a busy two-core machine).
    on_epoch : callable, optional
        Called on the main process after each epoch's checkpoint is written, with that epoch's
        history entry (``epoch``, ``loss``, ``train_accuracy``, ``val_accuracy`` when there is a
        validation split, ``test_accuracy``, ``seconds``). An exception it raises ends the run
        there (``dwn-hw sweep`` stops poor trials this way); the checkpoint keeps that epoch.
    """
    if metrics_json:  # refused now, not after the training
        outputs.check_replaceable(metrics_json, force)
    saved = {"epoch": None, "epochs": None}  # the last whole epoch on disk, for the Ctrl-C message
    try:
        return _run(cfg, output, device, resume, force, metrics_json, progress, epochs_override, threads, log,
                    saved, on_epoch)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(interrupt_message(output, saved)) from None


def interrupt_message(output, saved: dict) -> str:
    """What a Ctrl-C left: the checkpoint of the last whole epoch and how to continue, or that none exists."""
    if saved.get("epoch"):
        return (f"the checkpoint of epoch {saved['epoch']} of {saved['epochs']} (the last whole epoch) is at "
                f"{output}; `dwn-hw train -o {shlex.quote(str(output))} --resume` continues")
    return f"stopped before the first epoch ended; nothing was written to {output}"


def _run(cfg, output, device, resume, force, metrics_json, progress, epochs_override, threads, log, saved,
         on_epoch=None):
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    d, dev = _processes(device, threads)
    cfg, prev = _options(cfg, output, resume, force, epochs_override, d, log)
    ds = _data(cfg)
    if prev is not None and ds.meta["test_sha256"] != prev["data"].get("test_sha256"):
        raise DwnHwError(f"the data of {cfg.dataset!r} changed since {output} was written; cannot resume")
    augment.check_shift(cfg.shift, ds.meta.get("image_shape"))
    locality.check(cfg.receptive_field, cfg.local_fanin, ds.meta.get("image_shape"), cfg.layers, cfg.n)
    torch.manual_seed(cfg.seed)
    t = _tensors(ds, dev)
    r = _start(cfg, ds, t, prev, dev, d, log)
    r.output = output
    if prev is not None:
        saved.update(epoch=r.start_epoch or None, epochs=cfg.epochs)
        if d.main:
            log(f"resuming {output} after epoch {r.start_epoch} of {cfg.epochs}")
    if d.main:
        log(f"{cfg.dataset}: {t.n_train} train / {len(t.y_test)} test samples, {ds.num_features} features on a "
            f"{ds.grid.input_bits}-bit grid, {ds.num_classes} classes; {arch_mod.lut_count(r.arch)} LUTs "
            f"{cfg.layers} n={cfg.n}, {cfg.encoder} encoder {cfg.bits} bits; device {dev}"
            + (f", {d.world} processes" if d.world > 1 else ""))
        for line in r.notes:
            log(line)
    if cfg.max_input_bits is not None and cfg.cap_warmup == 0 and r.start_epoch == 0:
        _cap(r, log)
    train_seconds = sum(h["seconds"] for h in r.history)
    metrics = {}
    for epoch in range(r.start_epoch, cfg.epochs):
        entry = _train_epoch(r, t, epoch, progress)
        train_seconds += entry["seconds"]
        if cfg.max_input_bits is not None and epoch + 1 == cfg.cap_warmup:
            _cap(r, log if d.main else None)
        if d.main:
            metrics = _end_epoch(r, t, ds, entry, train_seconds, progress, log, on_epoch)
            saved.update(epoch=epoch + 1, epochs=cfg.epochs)
        else:
            r.history.append(entry)
        _barrier(d)
    if d.main:
        _finish(output, metrics, metrics_json, t_start, log)
    _barrier(d)
    return metrics


def _processes(device: str, threads: int | None) -> tuple[Dist, torch.device]:
    """This process's rank and device; thread count; the process group under torchrun."""
    d = dist_from_env()
    dev = pick_device(device, d)
    if threads is not None:
        if threads < 1:
            raise DwnHwError(f"--threads must be a positive integer, not {show(threads)}")
        torch.set_num_threads(threads)
    init_process_group(d, dev)
    return d, dev


def _options(cfg, output, resume, force, epochs_override, d, log) -> tuple[TrainConfig, dict | None]:
    """The run's options and, when resuming, the recorded checkpoint they come from."""
    prev = None
    if resume and os.path.exists(output):
        prev = ckpt.read_record(output)
        if "train_state" not in prev or not prev.get("options"):
            raise DwnHwError(f"{output} holds no training state to resume from")
        cfg = TrainConfig.from_dict(prev["options"])
        if prev["data"].get("path"):  # a csv/npz file named relative to another working folder
            cfg.dataset = f"{cfg.dataset.partition(':')[0]}:{prev['data']['path']}"
        if epochs_override is not None:
            cfg.epochs = int(epochs_override)
    elif os.path.exists(output) and not force:
        raise DwnHwError(f"{output} already exists; pass --resume to continue it or --force to overwrite it")
    elif cfg.keep_best and best_path(output).exists() and not force:
        raise DwnHwError(f"{best_path(output)} already exists (the best epoch of an earlier run); pass --force to "
                         "overwrite it")
    elif resume and d.main:
        log(f"note: {output} does not exist yet; starting a new run")
    cfg.check()
    return cfg, prev


@dataclass
class _Tensors:
    """The data on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    fill: float
    image_shape: list | None

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def _tensors(ds: DataSet, dev) -> _Tensors:
    val = len(ds.y_val) > 0
    # the value of a pixel at the bottom of the grid (black), for pixels shifted in from outside
    fill = float(ds.grid.to_x(np.full((1, ds.num_features), ds.grid.qmin, np.int64))[0, 0])
    return _Tensors(torch.from_numpy(ds.grid.to_x(ds.q_train)).to(dev), torch.from_numpy(ds.y_train).to(dev),
                    torch.from_numpy(ds.grid.to_x(ds.q_test)).to(dev), torch.from_numpy(ds.y_test).to(dev),
                    torch.from_numpy(ds.grid.to_x(ds.q_val)).to(dev) if val else None,
                    torch.from_numpy(ds.y_val).to(dev) if val else None, fill, ds.meta.get("image_shape"))


@dataclass
class _State:
    """What one run trains and records."""

    cfg: TrainConfig
    d: Dist
    dev: torch.device
    encoder: object
    arch: dict
    model: torch.nn.Module
    ddp_model: torch.nn.Module
    optimizer: object
    scheduler: object
    shuffle: torch.Generator
    start_epoch: int = 0
    history: list = field(default_factory=list)
    hw: dict = field(default_factory=dict)      # the checkpoint's "hardware" record
    notes: list = field(default_factory=list)   # lines for the log
    output: str = ""


def _start(cfg, ds, t: _Tensors, prev, dev, d, log) -> _State:
    """Encoder, model, optimizer: fitted afresh, taken from ``--init-from``, or restored from ``prev``."""
    hw, notes, src = {}, [], None
    if prev is not None:
        encoder, arch, hw = ckpt.encoder_from_record(prev["encoder"]), prev["architecture"], dict(prev.get("hardware") or {})
    else:
        arch = arch_mod.make_arch(ds.num_features * cfg.bits, cfg.layers, cfg.n, ds.num_classes, cfg.tau,
                                  cfg.mapping)
        if cfg.init_from:
            src, hw["init_from"] = hardware.read_source(cfg.init_from)
            hardware.check_compatible(src, arch, ds.num_features, ds.num_classes, cfg.init_from)
            arch = hardware.init_arch(src, arch)
            notes.append(f"starting from {cfg.init_from} (sha256 {hw['init_from']['sha256'][:12]}...), "
                         f"{'its' if cfg.init_encoder == 'keep' else 'refitted'} thresholds")
        if src is not None and cfg.init_encoder == "keep":
            encoder = ckpt.encoder_from_record(src["encoder"])
        else:
            encoder = ckpt.make_encoder(cfg.encoder, cfg.bits).fit(t.x_train.cpu())
        if cfg.threshold_bits is not None:
            hw["threshold_bits"] = hardware.place_thresholds(encoder, ds.grid, cfg.threshold_bits)
            notes.append(f"--threshold-bits {cfg.threshold_bits}: {hw['threshold_bits']['moved']} of "
                         f"{hw['threshold_bits']['of']} thresholds moved to comparisons of the top "
                         f"{cfg.threshold_bits} of {ds.grid.input_bits} bits")
    model = arch_mod.build(arch).to(dev)
    if prev is not None:
        model.load_state_dict(prev["state_dict"])
    elif src is not None:
        hardware.load_weights(model, src, cfg.init_from)
        if cfg.receptive_field is not None:
            hw["locality"] = hardware.source_locality(src, cfg)
    elif cfg.receptive_field is not None:
        hw["locality"] = locality.apply(model, ds.meta["image_shape"], cfg.bits, t.x_train.cpu().numpy(),
                                        cfg.receptive_field, cfg.local_fanin, cfg.seed, ds.num_classes)
        rec = hw["locality"]
        notes.append(f"--receptive-field {cfg.receptive_field}: first-layer LUTs read pixels at most "
                     f"{cfg.receptive_field} rows/columns from their centers (box rows {rec['box'][0]}..{rec['box'][1] - 1}, "
                     f"columns {rec['box'][2]}..{rec['box'][3] - 1})" + (f"; later LUTs read among their "
                     f"{'/'.join(map(str, rec['fanin']))} nearest inputs" if rec["fanin"] else ""))
    ddp_model = wrap_ddp(model, d, dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.gamma)
    shuffle = torch.Generator().manual_seed(cfg.seed + 1)
    r = _State(cfg, d, dev, encoder, arch, model, ddp_model, optimizer, scheduler, shuffle, hw=hw, notes=notes)
    if prev is not None:
        ts = prev["train_state"]
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        torch.set_rng_state(ts["rng"]["torch"])
        shuffle.set_state(ts["rng"]["shuffle"])
        r.start_epoch, r.history = int(ts["epoch"]), list(ts["history"])
    return r


def _cap(r: _State, log) -> None:
    """Apply ``--max-input-bits`` (once: a resumed run has it in its architecture already)."""
    if r.arch["layers"][0].get("allowed_inputs") is not None:
        return
    rep = hardware.apply_input_cap(r.model, r.arch, r.cfg.max_input_bits)
    loc = r.hw.get("locality")
    if loc:
        bad = locality.model_outside_patches(r.model, loc, r.cfg.bits)
        if bad:
            raise DwnHwError(f"--max-input-bits {r.cfg.max_input_bits} leaves {bad} first-layer LUTs no encoder bit "
                             f"inside their --receptive-field {loc['radius']} patch; raise the cap or the radius")
    r.hw["input_cap"] = {**rep, "after_epoch": len(r.history)}
    if log:
        log(f"--max-input-bits {r.cfg.max_input_bits}: the mapping read {rep['read_before']} encoder bits, "
            f"now {rep['read_after']} (of {rep['kept']} allowed)")


def _train_epoch(r: _State, t: _Tensors, epoch: int, progress: bool) -> dict:
    """One pass over the training set; the epoch's history entry (without evaluation)."""
    from tqdm import tqdm

    cfg, d, dev = r.cfg, r.d, r.dev
    t0 = time.perf_counter()
    r.ddp_model.train()
    n_train, bs = t.n_train, cfg.batch_size
    # every process must get at least one sample of each batch: a last batch smaller than the
    # number of processes is dropped (the same on all of them)
    n_batches = n_train // bs + (1 if n_train % bs >= d.world else 0)
    perm = torch.randperm(n_train, generator=r.shuffle)
    loss_sum = correct = seen = 0.0
    bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not (progress and d.main and sys.stderr.isatty()), leave=False, file=sys.stderr,
               dynamic_ncols=True)
    for b in range(n_batches):
        idx = perm[b * bs:(b + 1) * bs]
        mine = local_chunk(idx, d).to(dev)
        xb = t.x_train[mine]
        if cfg.shift:
            off = local_chunk(augment.draw_offsets(len(idx), cfg.shift, r.shuffle), d)
            xb = augment.shift_images(xb, t.image_shape, off, t.fill)
        loss, corr = train_step(r.ddp_model, r.optimizer, r.encoder.binarize(xb), t.y_train[mine], len(idx), d.world)
        loss_sum += float(loss)
        correct += float(corr)
        seen += len(mine)
        if b % 10 == 0 or b == n_batches - 1:
            bar.set_postfix(loss=f"{loss_sum / max(seen, 1):.4f}", acc=f"{correct / max(seen, 1):.4f}")
        bar.update()
    bar.close()
    r.scheduler.step()
    loss_sum, correct, seen = all_sum([loss_sum, correct, seen], d, dev)
    return {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "lr": float(r.optimizer.param_groups[0]["lr"]), "seconds": time.perf_counter() - t0}


def epoch_line(entry: dict, epochs: int) -> str:
    """The one-line summary of a finished epoch (``dwn-hw train``'s log, a sweep trial's ``train.log``)."""
    return (f"epoch {entry['epoch']}/{epochs}: loss {entry['loss']:.4f}  train {entry['train_accuracy']:.4f}"
            + (f"  val {entry['val_accuracy']:.4f}" if entry.get("val_accuracy") is not None else "")
            + f"  test {entry['test_accuracy']:.4f}  ({entry['seconds']:.1f} s)")


def _end_epoch(r: _State, t: _Tensors, ds, entry, train_seconds, progress, log, on_epoch) -> dict:
    """Main process: evaluate, write the checkpoint, log, call ``on_epoch``; the metrics so far."""
    cfg = r.cfg
    if t.x_val is not None:
        entry["val_accuracy"] = accuracy(r.model, r.encoder, t.x_val, t.y_val)
    entry["test_accuracy"] = accuracy(r.model, r.encoder, t.x_test, t.y_test)
    r.history.append(entry)
    metrics = _metrics(cfg, ds, r.arch, r.history, train_seconds, r.d, r.dev)
    record = _record(cfg, ds, r.encoder, r.arch, r.model, r.optimizer, r.scheduler, r.shuffle,
                     entry["epoch"], r.history, metrics, r.hw)
    ckpt.save_record(record, r.output)
    if progress:
        log(epoch_line(entry, cfg.epochs))
    if metrics.get("best_epoch") == entry["epoch"]:  # this epoch is the best on validation so far
        record["selected"] = {"epoch": entry["epoch"], "val_accuracy": entry["val_accuracy"],
                              "rule": "highest validation accuracy so far (ties: the earlier epoch)"}
        ckpt.save_record(record, best_path(r.output))
        if progress:
            log(f"  best validation accuracy so far: kept epoch {entry['epoch']} in {best_path(r.output)}")
    if on_epoch is not None:
        on_epoch(dict(entry))
    return metrics


def _finish(output, metrics, metrics_json, t_start, log) -> None:
    if not metrics:  # nothing left to train (resumed a finished run)
        metrics.update(ckpt.read_record(output).get("metrics") or {})
    metrics["total_seconds"] = time.perf_counter() - t_start
    if metrics_json:
        atomic_write_text(metrics_json, json.dumps(outputs.mark(metrics, "train-metrics"), indent=2) + "\n")
    log(f"test accuracy {metrics['test_accuracy']:.4f} after {metrics['epochs']} epochs "
        f"({metrics['train_seconds']:.1f} s training); wrote {output}")


def _metrics(cfg, ds, arch, history, train_seconds, d, dev) -> dict:
    last = history[-1]
    best = {}
    scored = [h for h in history if h.get("val_accuracy") is not None]
    if cfg.keep_best and scored:
        top = max(scored, key=lambda h: (h["val_accuracy"], -h["epoch"]))  # a tie keeps the earlier epoch
        best = {"best_epoch": top["epoch"], "best_val_accuracy": top["val_accuracy"],
                "best_test_accuracy": top["test_accuracy"]}
    return {**best, "test_accuracy": last["test_accuracy"], "train_accuracy": last["train_accuracy"],
            "val_accuracy": last.get("val_accuracy"), "loss": last["loss"], "epochs": last["epoch"],
            "train_seconds": train_seconds, "dataset": cfg.dataset, "luts": arch_mod.lut_count(arch),
            "n_train": int(len(ds.y_train)), "n_test": int(len(ds.y_test)), "processes": d.world,
            "device": str(dev), "history": history}


def _barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
