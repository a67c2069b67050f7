"""One trial of ``dwn-hw sweep``: train (validation split) -> freeze -> export -> synthesize.

The objectives are the validation accuracy (maximised) and the LUTs of the exported core with the
encoder, counted by yosys for the ``board``'s family (minimised). A model whose board build (core
inside the UART wrapper) does not fit the part is *infeasible*: the trial completes with its
figures and a positive constraint (Optuna's constrained optimisation), and never enters the front.

What a trial keeps in ``DIR/trials/<number>/``: ``dwn.ir.json``, ``metrics.json``,
``synth_report.json``, the logs and ``model.pt`` (the checkpoint; :mod:`dwn_hw.sweep.outputs`
deletes it once the trial is off the Pareto front). The export bundle is removed after synthesis.

A space that fixes ``keep_best: true`` makes the best validation epoch the trial's model (its
accuracy is the objective, its checkpoint is ``model.pt``), as ``dwn-hw train --keep-best`` does
by hand; otherwise the last epoch is the model. ``model_epoch`` records which.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text

__all__ = ["TrialSettings", "PruneRule", "Objective", "trial_dir", "data_shape"]


@dataclass
class PruneRule:
    """Stop a trial whose validation accuracy trails a smaller finished model at the same epoch.

    Optuna's pruners are single-objective; this rule is the sweep's own. At epoch ``e >= after``
    a trial is pruned when some complete trial with no larger model (``size``: DWN LUTs plus
    thermometer bits, known before training) had a validation accuracy at epoch ``e`` higher by
    more than ``margin``, once at least ``min_trials`` trials are complete. A small model that
    trails a large one is never pruned: it may still be on the front. The decision is recorded
    in the trial's user attribute ``pruned``.
    """

    after: int = 2
    margin: float = 0.03
    min_trials: int = 4
    enabled: bool = True

    def check(self, completed, epoch: int, val: float, size: int) -> dict | None:
        if not self.enabled or epoch < self.after or len(completed) < self.min_trials:
            return None
        best = None
        for t in completed:
            hist = t.user_attrs.get("val_history") or []
            if len(hist) >= epoch and t.user_attrs.get("size", float("inf")) <= size and hist[epoch - 1] is not None:
                if hist[epoch - 1] - val > self.margin and (best is None or hist[epoch - 1] > best[1]):
                    best = (t.number, hist[epoch - 1])
        if best is None:
            return None
        return {"epoch": epoch, "val_accuracy": val, "by_trial": best[0], "their_val_accuracy": best[1],
                "rule": f"trails complete trial {best[0]} (no larger model) by more than {self.margin:g} at epoch {epoch}"}


@dataclass
class TrialSettings:
    out: Path
    dataset: str
    board: str
    val_split: float
    seed: int
    fmax: bool = False          # place and route the core alone for its Fmax (open flows; slower)
    threads: int = 1
    prune: PruneRule = field(default_factory=PruneRule)
    worker: str = ""


def trial_dir(out: Path, number: int) -> Path:
    return Path(out) / "trials" / f"{number:04d}"


def _one_line(text) -> str:
    return " ".join(str(text).split())


class Objective:
    """The callable handed to ``study.optimize``: returns ``(accuracy, luts)``."""

    def __init__(self, space, settings: TrialSettings, num_classes: int):
        self.space, self.s, self.num_classes = space, settings, num_classes

    def __call__(self, trial):
        import optuna

        t0 = time.monotonic()
        s = self.s
        params = self.space.suggest(trial)
        cfg, export_opts = self.space.settings(params, dataset=s.dataset, seed=s.seed, val_split=s.val_split,
                                               num_classes=self.num_classes)
        same = _same_params(trial, params)
        if same is not None:
            # already measured: the same parameters give the same model (training is seeded by --seed)
            for k, v in same.user_attrs.items():
                if k not in ("dir", "worker", "same_as"):
                    trial.set_user_attr(k, v)
            trial.set_user_attr("same_as", same.number)
            trial.set_user_attr("dir", same.user_attrs.get("dir"))
            trial.set_user_attr("seconds", round(time.monotonic() - t0, 2))
            if hasattr(trial, "set_constraint"):
                trial.set_constraint("fits", (same.user_attrs.get("constraint") or [0.0])[0])
            return tuple(same.values)
        tdir = trial_dir(s.out, trial.number)
        if tdir.exists():
            shutil.rmtree(tdir)
        tdir.mkdir(parents=True)
        trial.set_user_attr("dir", str(tdir.relative_to(s.out)))
        trial.set_user_attr("worker", s.worker or f"{socket.gethostname()}")
        trial.set_user_attr("layers", list(cfg.layers))
        stage = "train"
        try:
            from dwn_hw.train import loop

            cfg.check()
            size = sum(cfg.layers)
            trial.set_user_attr("dwn_luts", int(size))
            history: list = []
            logf = open(tdir / "train.log", "w")

            def log(msg):
                logf.write(msg + "\n")
                logf.flush()

            def on_epoch(entry):
                log(loop.epoch_line(entry, cfg.epochs))
                history.append(entry.get("val_accuracy"))
                trial.set_user_attr("val_history", list(history))
                if entry.get("val_accuracy") is None:
                    return
                completed = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                verdict = s.prune.check(completed, entry["epoch"], entry["val_accuracy"], model_size)
                if verdict is not None:
                    trial.set_user_attr("pruned", verdict)
                    trial.set_user_attr("seconds", round(time.monotonic() - t0, 2))
                    raise optuna.TrialPruned(verdict["rule"])

            # the model's size proxy for pruning, known before training: LUTs + thermometer bits
            model_size = int(size + data_shape(s.dataset)[0] * cfg.bits)
            trial.set_user_attr("size", model_size)
            try:
                metrics = loop.run(cfg, str(tdir / "model.pt"), progress=False, force=True, threads=s.threads,
                                   log=log, on_epoch=on_epoch)
            finally:
                logf.close()
            if cfg.keep_best and metrics.get("best_epoch") is not None:
                # the space asks for the best validation epoch: that checkpoint is the trial's model
                os.replace(loop.best_path(tdir / "model.pt"), tdir / "model.pt")
                metrics = {**metrics, "val_accuracy": metrics["best_val_accuracy"],
                           "test_accuracy": metrics["best_test_accuracy"], "model_epoch": metrics["best_epoch"]}
            stage = "export"
            from dwn_hw.export import export_bundle
            from dwn_hw.freeze import bundle_inputs

            bundle_dir = tdir / "bundle"
            frozen = {"name": "model.pt", **bundle_inputs(tdir / "model.pt")}
            export_bundle(frozen, bundle_dir, boards=[s.board], force=True,
                          pipeline=export_opts.get("pipeline", "balanced"))
            shutil.copy2(bundle_dir / "dwn.ir.json", tdir / "dwn.ir.json")
            stage = "synth"
            report = _synth(bundle_dir, s.board, s.fmax)
            shutil.copy2(bundle_dir / "synth" / s.board / "report.json", tdir / "synth_report.json")
            shutil.rmtree(bundle_dir, ignore_errors=True)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", f"{stage}: interrupted (Ctrl-C)")
            trial.set_user_attr("seconds", round(time.monotonic() - t0, 2))
            raise
        except Exception as exc:  # noqa: BLE001 - a failed trial is recorded with its reason, the study goes on
            trial.set_user_attr("fail_reason", _one_line(f"{stage}: {exc}")[:500])
            trial.set_user_attr("seconds", round(time.monotonic() - t0, 2))
            raise
        core = report["core"]
        fits = bool(report.get("fits"))
        attrs = {
            "accuracy": metrics.get("val_accuracy"), "test_accuracy": metrics.get("test_accuracy"),
            "luts": core["luts"], "ffs": core.get("ffs"), "carry": core.get("carry"),
            "fmax_mhz": core.get("fmax_mhz"), "board_luts": report.get("luts"), "fits": fits,
            "part": report.get("part"), "family": report.get("family"),
            "constraint": [_constraint(report)], "epochs": metrics.get("epochs"),
            "model_epoch": metrics.get("model_epoch", metrics.get("epochs")),
            "seconds": round(time.monotonic() - t0, 2), "train_seconds": round(metrics.get("train_seconds", 0), 2),
        }
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        if hasattr(trial, "set_constraint"):  # Optuna >= 5; 4.x reads the user attribute (study.make_sampler)
            trial.set_constraint("fits", attrs["constraint"][0])
        atomic_write_text(tdir / "metrics.json", json.dumps({**attrs, "params": params,
                                                             "train": metrics}, indent=1) + "\n")
        if attrs["accuracy"] is None:
            raise DwnHwError("no validation accuracy: --val-split must be above 0")
        return float(attrs["accuracy"]), float(attrs["luts"])


def _same_params(trial, params: dict):
    """A complete trial of the study with exactly these parameters, or None."""
    import optuna

    for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.params == params and t.values is not None:
            return t
    return None


def data_shape(dataset: str) -> tuple[int, int]:
    """``(features, classes)`` of a data set (cached per process: the same for every trial)."""
    if dataset not in _SHAPES:
        from dwn_hw.datasets import load_dataset

        ds = load_dataset(dataset)
        _SHAPES[dataset] = (int(ds.num_features), int(ds.num_classes))
    return _SHAPES[dataset]


_SHAPES: dict = {}


def _synth(bundle_dir: Path, board: str, fmax: bool) -> dict:
    """yosys counts of the core and the board build; a board build that does not fit is a result, not an error."""
    from dwn_hw.synth.flows import synth

    try:
        return synth(bundle_dir, board, core_pnr=fmax, board_build=True, board_pnr=False, quiet=True)
    except DwnHwError as exc:
        path = bundle_dir / "synth" / board / "report.json"
        if "does not fit" in str(exc) and path.is_file():
            report = json.loads(path.read_text())
            if report.get("fits") is False or report["core"].get("fits") is False:
                report["fits"] = False
                return report
        raise


def _constraint(report: dict) -> float:
    """<= 0 when the board build fits; else the largest overshoot of a capacity (0.25 = 25 % too big)."""
    if report.get("fits"):
        return 0.0
    util = report.get("utilisation") or report["core"].get("utilisation") or {}
    over = [v - 1.0 for v in util.values() if v is not None]
    return max([1e-6] + over)
