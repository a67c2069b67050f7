"""The Optuna side of ``dwn-hw sweep``: storage, samplers, and the loop one worker runs.

The study lives in an RDB storage (SQLite at ``DIR/study.db`` by default, PostgreSQL or any
SQLAlchemy URL with ``--storage``), so any number of workers on any machines work one study: each
asks the storage for the next trial, and a trial is never handed out twice. Every worker beats a
heartbeat for its running trial; a trial whose heartbeat is older than ``2 x heartbeat`` seconds
(its worker was killed) is failed by the next worker that looks, and tried once more with the
same parameters (:class:`optuna.storages.RetryFailedTrialCallback`).
"""
from __future__ import annotations

import hashlib
import inspect
import os
import random
import re
import socket
import time
import warnings
from dataclasses import dataclass

from dwn_hw.errors import DwnHwError

__all__ = ["open_storage", "open_study", "make_sampler", "worker_seed", "run_worker", "counts", "SAMPLERS",
           "DIRECTIONS"]

SAMPLERS = ("tpe", "nsga2", "random")
DIRECTIONS = ("maximize", "minimize")  # validation accuracy, LUTs


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # heartbeats and the retry callback are marked experimental; the sweep depends on them knowingly
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def new_constraint_api() -> bool:
    """Optuna >= 5 records constraints with ``trial.set_constraint``; 4.x through ``constraints_func``."""
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


def open_storage(url: str, heartbeat: int):
    """An :class:`optuna.storages.RDBStorage` with a heartbeat and one retry of killed trials."""
    import optuna
    from optuna.storages import RDBStorage

    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    _quiet_optuna()
    engine = {}
    if url.startswith("sqlite"):
        # several processes write one file: wait for the lock instead of failing at once
        engine = {"connect_args": {"timeout": 120}}
    else:
        engine = {"pool_pre_ping": True}
    kw = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback"
          in inspect.signature(RDBStorage.__init__).parameters else "failed_trial_callback")  # Optuna < 4.9
    for attempt in range(6):
        try:
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=int(heartbeat),
                              grace_period=2 * int(heartbeat), **{kw: retry(max_retry=1)})
        except ImportError as exc:
            raise DwnHwError(f"storage {url!r} needs a database driver that is not installed: {exc}"
                             " (pip install 'dwn-hw[sweep]' brings psycopg 3 for postgresql:// URLs)") from None
        except Exception as exc:  # sqlalchemy.exc.* : a wrong URL, a server that is down
            if not (isinstance(exc, optuna.exceptions.OptunaError) or type(exc).__module__.startswith("sqlalchemy")):
                raise
            text = " ".join(str(exc).split())
            # Workers that start together race to create the tables of a new storage ("table studies
            # already exists", a UNIQUE constraint on alembic_version): the loser tries again.
            if attempt < 5 and re.search(r"already exists|UNIQUE constraint|duplicate key|database is locked", text):
                time.sleep(0.2 + random.random() * (attempt + 1))
                continue
            raise DwnHwError(f"cannot open storage {url!r}: {text[:300]}") from None


def _constraints(trial) -> list[float]:
    return list(trial.user_attrs.get("constraint") or [0.0])


def make_sampler(kind: str, seed: int):
    import optuna

    # infeasible models (board build does not fit) are constraints > 0: the samplers steer away
    con = {} if new_constraint_api() else {"constraints_func": _constraints}
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, **con)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16, **con)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise DwnHwError(f"sampler must be one of {', '.join(SAMPLERS)}, not {kind!r}")


def worker_seed(seed: int, index: int, trials_so_far: int = 0) -> int:
    """The sampler seed of one worker process: from ``--seed``, the host, the process, the index
    and the number of trials the study had when the worker started.

    Workers started by the same command on other machines (or twice on one, or again later) get
    different seeds, so they draw different suggestions; each trial records its worker's seed.
    """
    text = f"{seed}:{socket.gethostname()}:{os.getpid()}:{index}:{trials_so_far}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def trials_in(storage, name: str) -> int:
    """How many trials the study ``name`` holds (0 when it does not exist yet)."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def open_study(storage, name: str, sampler, attrs: dict, create: bool = True):
    """Create the study or load it; a loaded study must have been made with the same ``attrs``."""
    import optuna

    try:
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, directions=list(DIRECTIONS),
                                    load_if_exists=True)
    except ValueError as exc:  # e.g. directions differ from the stored ones
        raise DwnHwError(f"cannot continue study {name!r}: {exc}") from None
    old = study.user_attrs
    if not old:
        for k, v in attrs.items():
            study.set_user_attr(k, v)
        if hasattr(study, "set_metric_names"):  # names for optuna-dashboard
            study.set_metric_names(["accuracy", "luts"])
        return study
    for k, v in attrs.items():
        if k in old and old[k] != v:
            raise DwnHwError(f"study {name!r} was made with {k} {old[k]!r}, this command has {v!r}; "
                             "use another --out (or --study-name) for a different search")
    return study


@dataclass
class Counts:
    complete: int = 0
    running: int = 0
    waiting: int = 0
    pruned: int = 0
    failed: int = 0


def counts(study) -> Counts:
    from optuna.trial import TrialState as S

    c = Counts()
    for t in study.get_trials(deepcopy=False):
        if t.state == S.COMPLETE:
            c.complete += 1
        elif t.state == S.RUNNING:
            c.running += 1
        elif t.state == S.WAITING:
            c.waiting += 1
        elif t.state == S.PRUNED:
            c.pruned += 1
        elif t.state == S.FAIL:
            c.failed += 1
    return c


def run_worker(study, objective, target: int, deadline: float | None, on_trial=None, poll: float = 2.0,
               max_failures: int | None = None) -> str:
    """Run trials until the study has ``target`` complete ones; returns why it stopped.

    ``"done"`` (target reached), ``"timeout"`` (``deadline``, a ``time.time()`` value, passed: no trial
    starts after it), ``"failures"`` (``max_failures`` trials in a row failed in this worker).
    A trial starts only while complete + running trials are below ``target``, so several workers
    together finish with exactly ``target`` complete trials unless one fails or is pruned (then
    the others draw another). ``on_trial(study, frozen_trial)`` runs after every trial this worker
    finishes; Ctrl-C propagates after Optuna has recorded the trial in flight as failed.
    """
    import optuna

    in_a_row = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        c = counts(study)
        if c.complete >= target:
            return "done"
        if deadline is not None and time.time() >= deadline:
            return "timeout"
        if max_failures is not None and in_a_row >= max_failures:
            return "failures"
        if c.complete + c.running >= target:
            time.sleep(poll)  # the others' trials may finish the study; or fail, then we take over
            continue
        finished = []
        study.optimize(objective, n_trials=1, catch=(Exception,),
                       callbacks=[lambda st, ft: finished.append(ft)])
        for ft in finished:
            in_a_row = in_a_row + 1 if ft.state == optuna.trial.TrialState.FAIL else 0
            if on_trial is not None:
                on_trial(study, ft)
