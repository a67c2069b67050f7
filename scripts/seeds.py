"""Train one recipe with several seeds side by side, then freeze each seed's best validation epoch.

    python scripts/seeds.py --out DIR --seeds 0,1,2 [--deadline SECONDS] -- TRAIN_OPTIONS...

Meant for one GPU machine (``--device cuda`` among TRAIN_OPTIONS; the seeds share the GPU) or a many-core
CPU. TRAIN_OPTIONS are ``dwn-hw train`` options and must contain ``--keep-best`` and ``--val-split``; the
script adds ``--seed S -o DIR/seed<S>.pt``. For each seed it writes, in DIR:

- ``seed<S>.log``: the training's output (one line per epoch: validation and test accuracy);
- ``seed<S>.ir.json``: ``dwn-hw freeze`` of ``seed<S>.best.pt`` (checked against the PyTorch forward);
- ``seed<S>.run.json``: the seed, the training options, the selected epoch and the per-epoch history,
  read from the checkpoint: what ``scripts/frontier.py --add NAME --runs DIR/seed0.ir.json,...`` needs
  when the checkpoints (hundreds of MB) stay behind.

Without ``--force`` the script refuses to start when DIR holds an earlier run's files of these seeds.
``--deadline`` stops the trainings that are still running after that many seconds (Ctrl-C: each keeps its
last whole epoch, and ``run.json`` says ``"finished": false``), so that the freezing still fits a time
limit. ``summary.json`` lists the seeds and what became of each.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwn_hw.fsutil import atomic_write_text  # noqa: E402


def run_record(best: Path, last: Path, finished: bool) -> dict:
    """The small part of a run that says which run and which epoch it is: the seed, options and selected
    epoch of the ``--keep-best`` checkpoint, the whole history (also the epochs after the best one) of the
    last epoch's checkpoint."""
    from dwn_hw.train.checkpoint import read_record

    rec = read_record(best)
    history = (read_record(last) if last.exists() else rec)["train_state"]["history"]
    return {"seed": int(rec["seed"]), "options": rec["options"], "selected": rec.get("selected"),
            "history": history, "finished": finished, "checkpoint": best.name}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--deadline", type=float, default=None, help="stop trainings still running after this many s")
    ap.add_argument("--force", action="store_true", help="replace the files of an earlier run in --out "
                    "(passed on to dwn-hw train)")
    ap.add_argument("train", nargs=argparse.REMAINDER, help="-- then dwn-hw train options")
    a = ap.parse_args(argv)
    train = a.train[1:] if a.train[:1] == ["--"] else a.train
    if "--keep-best" not in train or "--val-split" not in train:
        ap.error("the training options must contain --keep-best and --val-split (the epoch is chosen on validation)")
    seeds = [int(s) for s in a.seeds.split(",") if s]
    try:  # freezing validates the IR; find out now, not after the training
        import jsonschema  # noqa: F401
    except ImportError:
        ap.error("freezing needs jsonschema (one of dwn-hw's dependencies); install it before training")
    if "--resume" in train:
        ap.error("--resume is not supported here: continue a seed with dwn-hw train -o DIR/seed<S>.pt --resume")
    ours = [a.out / f"seed{s}{ext}" for s in seeds for ext in (".pt", ".best.pt", ".log", ".ir.json", ".run.json")]
    there = [p for p in ours + [a.out / "summary.json"] if p.exists()]
    if there and not a.force:
        ap.error(f"{there[0]} exists (an earlier run's); pass --force to replace that run's files")
    if a.force and "--force" not in train:
        train = [*train, "--force"]
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    procs = {}
    for s in seeds:
        cmd = [sys.executable, "-m", "dwn_hw.train", *train, "--seed", str(s), "-o", str(a.out / f"seed{s}.pt")]
        log = open(a.out / f"seed{s}.log", "w")
        log.write("$ dwn-hw train " + " ".join(cmd[3:]) + "\n")
        log.flush()
        procs[s] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"seed {s}: started", flush=True)
    stopped = set()
    while any(p.poll() is None for p, _ in procs.values()):
        if a.deadline is not None and time.monotonic() - t0 > a.deadline:
            for s, (p, _) in procs.items():
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
                    stopped.add(s)
            for p, _ in procs.values():
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
            break
        time.sleep(2)
    train_s = time.monotonic() - t0
    summary = {"train_options": train, "seeds": {}, "train_seconds": round(train_s, 1)}
    for s, (p, log) in procs.items():
        log.close()
        best = a.out / f"seed{s}.best.pt"
        entry = {"rc": p.wait(), "stopped_at_deadline": s in stopped}
        if best.exists():
            ir = a.out / f"seed{s}.ir.json"
            t1 = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "dwn_hw.cli", "freeze", str(best), "-o", str(ir), "--force"],
                                 cwd=ROOT, capture_output=True, text=True)
            entry.update(freeze_rc=out.returncode, freeze_seconds=round(time.monotonic() - t1, 1),
                         freeze_output=(out.stdout + out.stderr)[-2000:])
            rec = run_record(best, a.out / f"seed{s}.pt", finished=entry["rc"] == 0 and s not in stopped)
            atomic_write_text(a.out / f"seed{s}.run.json", json.dumps(rec, indent=1, default=str) + "\n")
            entry["selected"] = rec["selected"]
            if ir.exists():
                entry["ir_accuracy"] = json.loads(ir.read_text())["meta"].get("accuracy")
        summary["seeds"][str(s)] = entry
        print(f"seed {s}: {json.dumps({k: v for k, v in entry.items() if k != 'freeze_output'})}", flush=True)
    atomic_write_text(a.out / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    return 0 if all(e["rc"] == 0 and e.get("freeze_rc") == 0 for e in summary["seeds"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
