"""What a sweep leaves in ``DIR``: ``trials.csv``, ``pareto.json``, ``pareto.png``, rewritten whole after every trial.

Every file is written atomically (:mod:`dwn_hw.fsutil`), so a reader or a kill at any moment sees
the previous version or the new one. ``trials.csv`` holds enough to rebuild the study elsewhere
(:func:`rebuild_from_csv`, ``dwn-hw sweep --from trials.csv``).
"""
from __future__ import annotations

import csv
import inspect
import io
import json
import math
import shutil
from pathlib import Path

from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_bytes, atomic_write_text

__all__ = ["COLUMNS", "rows", "pareto_front", "write_outputs", "rebuild_from_csv", "read_csv"]

# columns before the parameters (each searched parameter NAME gets a column param_NAME after these)
COLUMNS = ["number", "state", "accuracy", "test_accuracy", "luts", "ffs", "carry", "fmax_mhz", "board_luts",
           "fits", "constraint", "dwn_luts", "layers", "epochs", "model_epoch", "seconds", "pruned_epoch",
           "fail_reason", "worker", "space_version", "val_history"]
PARAM = "param_"
# a trial that failed without recording why: its worker died, and the heartbeat check failed it
STALE_REASON = "worker stopped without recording a reason (killed?); failed by the heartbeat check"
_ATTRS = ("test_accuracy", "luts", "ffs", "carry", "fmax_mhz", "board_luts", "fits", "dwn_luts", "layers", "epochs",
          "model_epoch", "seconds", "fail_reason", "worker")


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)  # shortest text that reads back to the same float
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def rows(trials, space, space_version: str) -> list[dict]:
    """One dict per trial, in trial order: the CSV's rows."""
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        ua = t.user_attrs
        r = {"number": t.number, "state": t.state.name}
        r["accuracy"] = t.values[0] if t.values else ua.get("accuracy")
        for k in _ATTRS:
            r[k] = ua.get(k)
        c = ua.get("constraint")
        r["constraint"] = c[0] if c else None
        r["pruned_epoch"] = (ua.get("pruned") or {}).get("epoch")
        if t.state.name == "FAIL" and not r["fail_reason"]:
            r["fail_reason"] = STALE_REASON
        r["space_version"] = space_version
        r["val_history"] = ua.get("val_history")
        for name in space.params:
            r[PARAM + name] = t.params.get(name)
        out.append(r)
    return out


def _dominates(a, b) -> bool:
    return a["accuracy"] >= b["accuracy"] and a["luts"] <= b["luts"] and (a["accuracy"] > b["accuracy"]
                                                                          or a["luts"] < b["luts"])


def pareto_front(table: list[dict]) -> list[dict]:
    """Non-dominated complete, feasible rows by (accuracy up, luts down), sorted by LUTs."""
    pool = [r for r in table if r["state"] == "COMPLETE" and r.get("accuracy") is not None
            and r.get("luts") is not None and r.get("fits") is not False]
    front = [r for r in pool if not any(_dominates(o, r) for o in pool if o is not r)]
    # equal points: keep the earliest trial only
    seen, unique = set(), []
    for r in sorted(front, key=lambda r: (r["luts"], -r["accuracy"], r["number"])):
        key = (r["luts"], r["accuracy"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def write_outputs(study, out: Path, space, meta: dict, published: list | None = None,
                  prune_checkpoints: bool = True) -> dict:
    """Rewrite ``trials.csv``, ``pareto.json`` and ``pareto.png``; returns the pareto document."""
    out = Path(out)
    table = rows(study.get_trials(deepcopy=False), space, meta["space_version"])
    names = [PARAM + n for n in space.params]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS + names, lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: _cell(v) for k, v in r.items()})
    atomic_write_text(out / "trials.csv", buf.getvalue())

    front = pareto_front(table)
    on_front = {r["number"] for r in front}
    doc_front = []
    for r in front:
        tdir = out / "trials" / f"{r['number']:04d}"
        ir, ckpt = tdir / "dwn.ir.json", tdir / "model.pt"
        doc_front.append({
            "number": r["number"], "accuracy": r["accuracy"], "test_accuracy": r["test_accuracy"],
            "luts": r["luts"], "ffs": r["ffs"], "carry": r["carry"], "fmax_mhz": r["fmax_mhz"],
            "board_luts": r["board_luts"], "dwn_luts": r["dwn_luts"], "layers": r["layers"],
            "model_epoch": r["model_epoch"],
            "params": {n[len(PARAM):]: r[n] for n in names if r.get(n) is not None},
            "ir": str(ir.relative_to(out)) if ir.is_file() else None,
            "checkpoint": str(ckpt.relative_to(out)) if ckpt.is_file() else None,
            "metrics": str((tdir / "metrics.json").relative_to(out)) if (tdir / "metrics.json").is_file() else None,
        })
    states = {}
    for r in table:
        states[r["state"]] = states.get(r["state"], 0) + 1
    doc = {**meta, "objectives": {"accuracy": "maximize (validation split)", "luts": "minimize (core with encoder)"},
           "trials": states, "front": doc_front}
    atomic_write_text(out / "pareto.json", json.dumps(doc, indent=1) + "\n")
    plot(table, front, out / "pareto.png", meta, published)
    if prune_checkpoints:
        # keep the IR and metrics of every trial, the checkpoint only while it is on the front
        for r in table:
            if r["state"] == "COMPLETE" and r["number"] not in on_front:
                ckpt = out / "trials" / f"{r['number']:04d}" / "model.pt"
                if ckpt.is_file():
                    ckpt.unlink()
            if r["state"] in ("PRUNED", "FAIL"):
                d = out / "trials" / f"{r['number']:04d}"
                for item in ("model.pt", "bundle"):
                    p = d / item
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    elif p.is_file():
                        p.unlink()
    return doc


def plot(table, front, path: Path, meta: dict, published: list | None = None) -> bool:
    """All trials, the front and optional published points; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    done = [r for r in table if r["state"] == "COMPLETE" and r.get("luts") is not None and r.get("accuracy") is not None]
    ok = [r for r in done if r.get("fits") is not False]
    bad = [r for r in done if r.get("fits") is False]
    if ok:
        ax.scatter([r["luts"] for r in ok], [100 * r["accuracy"] for r in ok], s=14, c="0.6", label="trials")
    if bad:
        ax.scatter([r["luts"] for r in bad], [100 * r["accuracy"] for r in bad], s=18, c="tab:red", marker="x",
                   label="does not fit the board")
    if front:
        ax.step([r["luts"] for r in front], [100 * r["accuracy"] for r in front], where="post", c="tab:blue")
        ax.scatter([r["luts"] for r in front], [100 * r["accuracy"] for r in front], s=30, c="tab:blue",
                   label="Pareto front (validation)", zorder=3)
        for r in front:
            ax.annotate(str(r["number"]), (r["luts"], 100 * r["accuracy"]), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")
    for i, p in enumerate(published or []):
        ax.scatter([p["luts"]], [100 * p["accuracy"]], marker="*", s=60, c="tab:orange",
                   label="published (their tool and accounting)" if i == 0 else None)
        ax.annotate(p.get("label", ""), (p["luts"], 100 * p["accuracy"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    if done:
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"LUTs of the core with encoder ({meta.get('board')}, yosys)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"dwn-hw sweep: {meta.get('dataset')} on {meta.get('board')}, "
                 f"{len(done)} complete trials", fontsize=9)
    ax.grid(alpha=0.3)
    if done or published:
        ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return True


def read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            data = list(csv.DictReader(f))
    except OSError as exc:
        raise DwnHwError(f"--from {path}: cannot read it ({exc.strerror or exc})") from None
    if not data or "number" not in data[0] or "state" not in data[0]:
        raise DwnHwError(f"--from {path}: not a trials.csv of dwn-hw sweep (no number/state columns, or no rows)")
    return data


def _num(text: str):
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return text
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def _param(text: str, dist):
    import optuna.distributions as od

    if isinstance(dist, od.IntDistribution):
        return int(float(text))
    if isinstance(dist, od.FloatDistribution):
        return float(text)
    for choice in dist.choices:
        if _cell(choice) == text:
            return choice
    raise ValueError(f"{text!r} is not one of the choices {list(dist.choices)}")


def rebuild_from_csv(study, path: Path, space, space_version: str) -> int:
    """Add every row of a trials.csv to an empty ``study`` (``add_trial``); returns the rows added.

    Trials keep their numbers when the file holds trials 0..N-1 in order (what a sweep writes).
    RUNNING rows (a trial in flight when the file was written) come back as FAIL.
    """
    from optuna.trial import TrialState, create_trial

    data = read_csv(Path(path))
    if study.get_trials(deepcopy=False):
        raise DwnHwError(f"--from {path}: the study in this --out already has trials; --from seeds a new study only")
    versions = {r.get("space_version") for r in data} - {None, ""}
    if versions and versions != {space_version}:
        raise DwnHwError(f"--from {path}: its trials used space {', '.join(sorted(versions))}, this command "
                         f"{space_version}; give the same --space")
    dists = space.distributions()
    data.sort(key=lambda r: int(r["number"]))
    for i, r in enumerate(data):
        if int(r["number"]) != i:
            raise DwnHwError(f"--from {path}: trial numbers must run 0, 1, 2, ... (row {i} is trial {r['number']})")
    for r in data:
        state = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED}.get(r["state"], TrialState.FAIL)
        params, pd = {}, {}
        for name, dist in dists.items():
            if r.get(PARAM + name, "") != "":
                try:
                    params[name] = _param(r[PARAM + name], dist)
                except ValueError as exc:
                    raise DwnHwError(f"--from {path}: trial {r['number']} {name}: {exc}") from None
                pd[name] = dist
        ua = {}
        for k in _ATTRS:
            v = r.get(k, "")
            if v == "":
                continue
            if k == "fits":
                ua[k] = v == "True"
            elif k == "layers":
                ua[k] = json.loads(v)
            elif k in ("fail_reason", "worker"):
                ua[k] = v
            else:
                ua[k] = _num(v)
        if r.get("val_history"):
            ua["val_history"] = json.loads(r["val_history"])
        if r.get("pruned_epoch"):
            ua["pruned"] = {"epoch": int(r["pruned_epoch"]), "rule": "recorded in an earlier study"}
        if r.get("accuracy", "") != "":
            ua["accuracy"] = float(r["accuracy"])
        ua["rebuilt_from"] = str(path)
        system, constraints = {}, None
        if r.get("constraint", "") != "":
            ua["constraint"] = [float(r["constraint"])]
            if "constraints" in inspect.signature(create_trial).parameters:  # Optuna >= 5
                constraints = {"fits": float(r["constraint"])}
            else:
                system["constraints"] = [float(r["constraint"])]
        if state == TrialState.FAIL and r["state"] != "FAIL":
            ua["fail_reason"] = f"was {r['state']} when {Path(path).name} was written"
        values = None
        if state == TrialState.COMPLETE:
            if r.get("accuracy", "") == "" or r.get("luts", "") == "":
                raise DwnHwError(f"--from {path}: complete trial {r['number']} lacks accuracy or luts")
            values = [float(r["accuracy"]), float(r["luts"])]
        study.add_trial(create_trial(state=state, values=values, params=params, distributions=pd,
                                     user_attrs=ua, system_attrs=system,
                                     **({"constraints": constraints} if constraints else {})))
    return len(data)
