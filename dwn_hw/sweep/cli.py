"""``dwn-hw sweep``: the most accurate DWN that fits a board, found by Optuna."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from dwn_hw.errors import DwnHwError, Interrupted

DEFAULT_BOARD = "arty_a7"


def _board_names():
    from dwn_hw.synth.boards import list_boards

    return list_boards()


@click.command("sweep")
@click.option("--dataset", default="digits", show_default=True,
              help="digits, mnist, fashion-mnist, csv:PATH or npz:PATH (as for `dwn-hw train`).")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Folder of the study: study.db, trials.csv, pareto.json, pareto.png, trials/<number>/.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True,
              help=f"LUTs are counted by this board's family, and a model must fit it: {', '.join(_board_names())}.")
@click.option("--trials", type=int, default=20, show_default=True,
              help="Complete trials the study should have (failed and pruned ones do not count); "
                   "a rerun with a larger number continues the study.")
@click.option("--timeout", type=float, default=None,
              help="Seconds for this command; no trial starts after that (the one in flight finishes).")
@click.option("--space", "space_path", type=click.Path(dir_okay=False), default=None,
              help="Search space JSON (docs/sweep.md) [default: the data set's own].")
@click.option("--storage", default=None,
              help="Optuna RDB URL, e.g. postgresql://user:pw@host/db (psycopg 3), for several machines on one study "
                   "[default: sqlite:///OUT/study.db].")
@click.option("--study-name", default="dwn-sweep", show_default=True, help="Study name inside the storage.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes on this machine.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Training seed of every trial; the samplers' seeds derive from it per worker.")
@click.option("--val-split", type=float, default=0.2, show_default=True,
              help="Fraction of the training set held out: the accuracy objective (the test set is reported only).")
@click.option("--sampler", type=click.Choice(["tpe", "nsga2", "random"]), default="tpe", show_default=True,
              help="Multi-objective sampler: TPE (MOTPE), NSGA-II, or random.")
@click.option("--from", "from_csv", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Seed a new study with the trials of a trials.csv (from another machine), then continue.")
@click.option("--enqueue", "enqueue", multiple=True, metavar="POINT",
              help="Try this point of the space first: a JSON object of searched parameters (those left out are "
                   "sampled), a JSON list of them, or a file holding either; repeatable. A point the study has "
                   "already tried is not queued again.")
@click.option("--fmax", is_flag=True,
              help="Also place and route each core alone for its Fmax (iCE40/ECP5 boards; slower).")
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="Stop trials whose validation accuracy trails a no-larger complete trial's at the same epoch.")
@click.option("--prune-margin", type=float, default=0.03, show_default=True,
              help="How far (accuracy, 0-1) a trial may trail before it is pruned.")
@click.option("--prune-after", type=int, default=2, show_default=True, help="First epoch at which a trial may be pruned.")
@click.option("--heartbeat", type=int, default=60, show_default=True,
              help="Seconds between a worker's heartbeats; a trial silent for twice that is failed and retried once.")
@click.option("--published", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON list of {label, accuracy (0-1), luts} to draw on pareto.png.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (one line per finished trial stays).")
@click.option("--worker-index", type=int, default=None, hidden=True)
def sweep_cmd(dataset, out, board, trials, timeout, space_path, storage, study_name, jobs, seed, val_split, sampler,
              from_csv, enqueue, fmax, prune, prune_margin, prune_after, heartbeat, published, quiet, worker_index):
    """Search architectures and encoders for the best accuracy per LUT on a board (Optuna, multi-objective).

    One trial trains a model on the training set minus a validation split, freezes it, exports the
    Verilog bundle and counts its LUTs (core with encoder) with yosys for BOARD's family. Models
    whose board build does not fit the part are infeasible. The study lives in OUT/study.db (or
    --storage): run the same command again, elsewhere or with a larger --trials, to continue it.

    \b
    dwn-hw sweep --dataset digits --trials 20 --out sweeps/digits
    dwn-hw sweep --dataset mnist --board icebreaker --out sweeps/ice --jobs 2 --timeout 36000
    optuna-dashboard sqlite:///sweeps/digits/study.db      watch it live
    """
    from dwn_hw.sweep import objective as obj_mod
    from dwn_hw.sweep import outputs, study as study_mod
    from dwn_hw.sweep.space import load_space
    from dwn_hw.synth.boards import load_board

    for name, v in (("--trials", trials), ("--jobs", jobs), ("--heartbeat", heartbeat), ("--prune-after", prune_after)):
        if v < 1:
            raise DwnHwError(f"{name} must be a positive integer, not {v!r}")
    if not 0 < val_split < 1:
        raise DwnHwError(f"--val-split must be between 0 and 1 (the accuracy objective needs a validation split), "
                         f"not {val_split!r}")
    if timeout is not None and timeout <= 0:
        raise DwnHwError(f"--timeout must be a positive number of seconds, not {timeout!r}")
    if not 0 <= prune_margin < 1:
        raise DwnHwError(f"--prune-margin must be in [0, 1), not {prune_margin!r}")
    load_board(board)
    space = load_space(space_path, dataset)
    points = [pt for text in enqueue for pt in _points(text, space)]
    pub = _published(published)
    features, classes = obj_mod.data_shape(dataset)
    out_p = Path(out).resolve()
    out_p.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{out_p / 'study.db'}"
    attrs = {"dataset": dataset, "board": board, "space_version": space.version, "val_split": val_split,
             "seed": seed}
    meta = {"study": study_name, "storage": _safe_url(url), **attrs}
    index = worker_index or 0
    store = study_mod.open_storage(url, heartbeat)
    sseed = study_mod.worker_seed(seed, index, study_mod.trials_in(store, study_name))
    study = study_mod.open_study(store, study_name, study_mod.make_sampler(sampler, sseed), attrs)
    old_space = study.user_attrs.get("space")
    if old_space is None:
        study.set_user_attr("space", space.to_json())
    elif old_space != space.to_json():
        raise DwnHwError(f"study {study_name!r} in {out} was made with another search space of the same version "
                         f"{space.version!r}; give the same --space or use another --out")
    from dwn_hw.fsutil import atomic_write_text

    if worker_index is None:
        atomic_write_text(out_p / "space.json", json.dumps(space.to_json(), indent=1) + "\n")
        if from_csv:
            added = outputs.rebuild_from_csv(study, Path(from_csv), space, space.version)
            click.echo(f"sweep: seeded the study with {added} trials from {from_csv}", err=True)
        if points:
            before = len(study.get_trials(deepcopy=False))
            for pt in points:
                study.enqueue_trial(pt, skip_if_exists=True)
            queued = len(study.get_trials(deepcopy=False)) - before
            done = study_mod.counts(study).complete
            click.echo(f"sweep: --enqueue queued {queued} of {len(points)} point(s) to be tried first"
                       + (f"; the study has tried the other {len(points) - queued} already" if queued < len(points)
                          else "")
                       + (f"; it has its {trials} complete trials, so raise --trials to run them"
                          if queued and done >= trials else ""), err=True)
    deadline = time.time() + timeout if timeout else None

    def write():
        outputs.write_outputs(study, out_p, space, meta, pub)

    if jobs > 1 and worker_index is None:
        _run_workers(_worker_argv(click.get_current_context()), jobs, out_p, study, study_mod, trials, write, quiet)
        return _summary(study, out_p, trials, space, meta)

    settings = obj_mod.TrialSettings(out=out_p, dataset=dataset, board=board, val_split=val_split, seed=seed,
                                     fmax=fmax, prune=obj_mod.PruneRule(after=prune_after, margin=prune_margin,
                                                                         enabled=prune),
                                     worker=f"{os.uname().nodename}:{os.getpid()}#{index} (sampler seed {sseed})")
    objective = obj_mod.Objective(space, settings, classes)
    c0 = study_mod.counts(study)
    bar = None
    if worker_index is None and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=trials, initial=min(c0.complete, trials), desc="complete trials", unit="trial",
                   file=sys.stderr, dynamic_ncols=True, disable=not sys.stderr.isatty())
    if worker_index is None and c0.complete < trials:
        click.echo(f"sweep: study {study_name!r} ({_safe_url(url)}) has {c0.complete} complete trials, "
                   f"target {trials}; space {space.version}; {board}", err=True)

    def on_trial(st, ft):
        line = trial_line(ft)
        if bar is not None:
            bar.write(line, file=sys.stderr)
            bar.n = min(study_mod.counts(st).complete, trials)
            bar.refresh()
        else:
            click.echo(line, err=True)
        write()

    try:
        why = study_mod.run_worker(study, objective, trials, deadline, on_trial, max_failures=10)
    except KeyboardInterrupt:
        write()
        if bar is not None:
            bar.close()
        c = study_mod.counts(study)
        raise Interrupted(f"stopped by Ctrl-C with {c.complete} complete trials recorded in {out} "
                          f"(trials.csv and pareto.json rewritten; the trial in flight is recorded as failed); "
                          "run the same command again to continue") from None
    if bar is not None:
        bar.close()
    write()
    if worker_index is not None:
        return None
    if why == "failures":
        last = [t for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"][-1]
        raise DwnHwError(f"stopped after 10 failed trials in a row; the last: {last.user_attrs.get('fail_reason')} "
                         f"(all in {out}/trials.csv)")
    return _summary(study, out_p, trials, space, meta, why)


def trial_line(ft) -> str:
    ua = ft.user_attrs
    head = f"trial {ft.number} {ft.state.name.lower()}"
    params = " ".join(f"{k}={_short(v)}" for k, v in ft.params.items())
    if ft.state.name == "COMPLETE":
        fits = "fits" if ua.get("fits") else "DOES NOT FIT the board"
        same = f" (same parameters as trial {ua['same_as']}: not trained again)" if "same_as" in ua else ""
        return (f"{head}: accuracy {ft.values[0]:.4f} (test {ua.get('test_accuracy', float('nan')):.4f}), "
                f"{int(ft.values[1])} LUTs with encoder, {fits}, {ua.get('seconds', 0):.0f} s{same}; {params}")
    if ft.state.name == "PRUNED":
        p = ua.get("pruned") or {}
        return f"{head} at epoch {p.get('epoch')}: {p.get('rule', '')}; {params}"
    return f"{head}: {ua.get('fail_reason', 'no reason recorded')}; {params}"


def _short(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _safe_url(url: str) -> str:
    """The storage URL without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _points(text: str, space) -> list[dict]:
    """The points of one --enqueue value (inline JSON or a file), each checked against the space."""
    source = text
    if not text.lstrip().startswith(("{", "[")):
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise DwnHwError(f"--enqueue {source}: neither a JSON object nor a readable file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DwnHwError(f"--enqueue {source}: not JSON ({exc})") from None
    data = data if isinstance(data, list) else [data]
    for pt in data:
        if not isinstance(pt, dict) or not pt:
            raise DwnHwError(f"--enqueue {source}: each point is a non-empty JSON object of parameters, "
                             f"not {json.dumps(pt)}")
    return [space.check_point(pt, f"--enqueue {source}") for pt in data]


def _published(path):
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
        assert isinstance(data, list)
        for p in data:
            float(p["accuracy"]), float(p["luts"])
    except (ValueError, AssertionError, KeyError, TypeError):
        raise DwnHwError(f"--published {path}: must be a JSON list of {{\"label\", \"accuracy\" (0-1), \"luts\"}}") from None
    return data


def _summary(study, out: Path, target: int, space, meta, why: str = "done"):
    from dwn_hw.sweep import outputs

    doc = json.loads((out / "pareto.json").read_text()) if (out / "pareto.json").is_file() else None
    if doc is None:
        doc = outputs.write_outputs(study, out, space, meta)
    t = doc["trials"]
    front = doc["front"]
    best = max(front, key=lambda r: r["accuracy"]) if front else None
    text = (f"sweep: {t.get('COMPLETE', 0)} complete trials (target {target}; {t.get('PRUNED', 0)} pruned, "
            f"{t.get('FAIL', 0)} failed)" + (", stopped by --timeout" if why == "timeout" else "")
            + f"; Pareto front {len(front)} points")
    if best:
        text += f", best accuracy {best['accuracy']:.4f} at {best['luts']} LUTs (trial {best['number']})"
    click.echo(text + f"; {out}/trials.csv, pareto.json, pareto.png")


def _worker_argv(ctx) -> list[str]:
    """This command's options as a command line for one worker (without --jobs and --from)."""
    argv = ["sweep"]
    for p in ctx.command.params:
        if p.name in ("jobs", "worker_index", "from_csv", "enqueue"):
            continue
        value = ctx.params[p.name]
        long = [o for o in p.opts if o.startswith("--")][0]
        if getattr(p, "is_flag", False):
            if p.secondary_opts:
                argv.append(long if value else p.secondary_opts[0])
            elif value:
                argv.append(long)
        elif value is not None:
            argv += [long, str(value)]
    return argv


def _run_workers(base: list[str], jobs: int, out: Path, study, study_mod, target: int, write, quiet: bool) -> None:
    """``jobs`` worker processes running this same command; this one shows the progress bar."""
    procs = []
    for i in range(jobs):
        cmd = [sys.executable, "-m", "dwn_hw.cli"] + base + ["--jobs", "1", "--worker-index", str(i)]
        procs.append(subprocess.Popen(cmd, env=dict(os.environ)))
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=target, initial=min(study_mod.counts(study).complete, target), desc="complete trials",
                   unit="trial", file=sys.stderr, dynamic_ncols=True, disable=not sys.stderr.isatty())
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(2)
            if bar is not None:
                bar.n = min(study_mod.counts(study).complete, target)
                bar.refresh()
    except KeyboardInterrupt:
        # a terminal's Ctrl-C reached the workers too; a signal sent to this process alone did not
        t0 = time.monotonic()
        while any(p.poll() is None for p in procs) and time.monotonic() - t0 < 3:
            time.sleep(0.1)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        write()
        c = study_mod.counts(study)
        raise Interrupted(f"stopped by Ctrl-C with {c.complete} complete trials recorded in {out}; "
                          "run the same command again to continue") from None
    finally:
        if bar is not None:
            bar.close()
    write()
    bad = [p.returncode for p in procs if p.returncode != 0]
    if bad:
        raise DwnHwError(f"{len(bad)} of {jobs} workers failed (exit {', '.join(map(str, bad))}); see their lines above")
