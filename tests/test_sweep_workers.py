"""dwn-hw sweep on the real pipeline (digits, 2 epochs, <= 80 LUTs, yosys for the Arty A7): resume,
several workers on one storage, a worker killed mid-trial, Ctrl-C, a failing tool, PostgreSQL.

Each trial takes 10-20 s on a 2-core machine, so all of these are in the slow set.
"""
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]

TINY = {"version": "tiny-1", "fixed": {"epochs": 2, "lr_step": 10, "depth": 1},
        "params": {"luts": {"type": "int", "low": 20, "high": 80, "log": True},
                   "n": {"type": "int", "low": 3, "high": 5},
                   "bits": {"type": "int", "low": 1, "high": 3},
                   "encoder": {"type": "categorical", "choices": ["distributive", "uniform"]}}}


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def cmd(out, space, *args):
    return [sys.executable, "-m", "dwn_hw.cli", "sweep", "--dataset", "digits", "--out", str(out),
            "--space", str(space), "-q", *args]


def run(out, space, *args, check=True):
    p = subprocess.run(cmd(out, space, *args), capture_output=True, text=True, timeout=900)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def study_of(out, url=None):
    return optuna.load_study(study_name="dwn-sweep", storage=url or f"sqlite:///{Path(out) / 'study.db'}")


def rows(out):
    with open(Path(out) / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def wait_for(pred, timeout=300, step=0.5):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(step)
    return False


def test_trials_3_then_5_is_one_resumed_study(tmp_path, space):
    out = tmp_path / "s"
    p = run(out, space, "--trials", "3")
    assert "sweep: 3 complete trials" in p.stdout
    first = {t.number: (t.values, t.params, t.user_attrs["test_accuracy"]) for t in study_of(out).trials}
    run(out, space, "--trials", "5")
    study = study_of(out)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 5
    for n, (values, params, test) in first.items():
        t = study.trials[n]
        assert (t.values, t.params, t.user_attrs["test_accuracy"]) == (values, params, test)
    table = rows(out)
    assert len(table) == len(study.trials)
    for r, t in zip(table, study.trials):
        assert int(r["number"]) == t.number and r["state"] == t.state.name
        if t.state.name == "COMPLETE":
            assert float(r["accuracy"]) == t.values[0] and int(r["luts"]) == t.values[1]
            assert 0 < float(r["test_accuracy"]) <= 1 and int(r["ffs"]) > 0 and float(r["seconds"]) > 0
    doc = json.loads((out / "pareto.json").read_text())
    front = {p["number"] for p in doc["front"]}
    best = {t.number for t in study.best_trials}
    assert front <= best and all(any(study.trials[b].values == study.trials[f].values for f in front) for b in best)
    for p in doc["front"]:
        ir = json.loads((out / p["ir"]).read_text())
        assert ir["encoder"]["kind"] == "thermometer" and (out / p["checkpoint"]).is_file()
    assert (out / "pareto.png").stat().st_size > 1000


def test_two_workers_on_one_storage_share_the_work(tmp_path, space):
    out = tmp_path / "s"
    procs = [subprocess.Popen(cmd(out, space, "--trials", "4"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    study = study_of(out)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and len(study.trials) == 4
    workers = {t.user_attrs["worker"].split(" ")[0] for t in done}
    assert len(workers) == 2, workers  # both worked
    assert len({tuple(sorted(t.params.items())) for t in done}) == 4  # no point drawn twice
    lines = [ln for o in outs for ln in o[1].splitlines() if ln.startswith("trial ")]
    assert sorted(int(ln.split()[1]) for ln in lines) == [0, 1, 2, 3]  # each trial run by one worker


def test_jobs_2_runs_two_worker_processes(tmp_path, space):
    out = tmp_path / "s"
    p = run(out, space, "--trials", "3", "--jobs", "2")
    study = study_of(out)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 3 and len(study.trials) == 3
    assert len({t.user_attrs["worker"].split(" ")[0] for t in done}) == 2
    assert "sweep: 3 complete trials" in p.stdout and len(rows(out)) == 3


def test_worker_killed_mid_trial_and_restarted_continues(tmp_path, space):
    out = tmp_path / "s"
    p = subprocess.Popen(cmd(out, space, "--trials", "2", "--heartbeat", "2"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    assert wait_for(lambda: (out / "trials" / "0000" / "train.log").exists())
    time.sleep(1)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert study_of(out).trials[0].state.name == "RUNNING"  # nobody knows yet
    r = run(out, space, "--trials", "2", "--heartbeat", "2")
    study = study_of(out)
    t0 = study.trials[0]
    assert t0.state.name == "FAIL"
    retried = [t for t in study.trials if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == 0]
    assert len(retried) == 1 and retried[0].params == t0.params
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 2
    assert "heartbeat" in rows(out)[0]["fail_reason"]
    assert "sweep: 2 complete trials" in r.stdout


def test_ctrl_c_stops_after_recording_what_finished(tmp_path, space):
    out = tmp_path / "s"
    p = subprocess.Popen(cmd(out, space, "--trials", "50"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    assert wait_for(lambda: (out / "trials.csv").exists() and any(r["state"] == "COMPLETE" for r in rows(out)))
    assert wait_for(lambda: (out / "trials" / f"{len(rows(out)):04d}" / "train.log").exists(), 60)
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: stopped by Ctrl-C with ") and "run the same command again" in last
    study = study_of(out)
    table = rows(out)
    assert len(table) == len(study.trials)  # trials.csv rewritten after the stop
    assert table[-1]["state"] == "FAIL" and "interrupted" in table[-1]["fail_reason"]
    assert all(r["state"] == "COMPLETE" for r in table[:-1])
    assert not [t for t in study.trials if t.state.name == "RUNNING"]


def test_ctrl_c_with_jobs_2_stops_every_worker(tmp_path, space):
    out = tmp_path / "s"
    p = subprocess.Popen(cmd(out, space, "--trials", "50", "--jobs", "2"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert wait_for(lambda: (out / "trials.csv").exists() and any(r["state"] == "COMPLETE" for r in rows(out)))
    os.killpg(p.pid, signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: stopped by Ctrl-C with ")
    study = study_of(out)
    assert not [t for t in study.trials if t.state.name == "RUNNING"]
    assert len(rows(out)) == len(study.trials)


def test_a_failing_tool_is_recorded_and_the_study_goes_on(tmp_path, space, monkeypatch, capsys):
    from dwn_hw.cli import main
    from dwn_hw.synth import flows
    from dwn_hw.synth.toolchain import ToolFailed

    real, calls = flows.run_tool, []

    def flaky(command, cwd, log, label, quiet=False):
        calls.append(label)
        if len(calls) == 3:  # the first yosys run of the second trial
            raise ToolFailed(label, 1, log, ["ERROR: planted failure for the test"])
        return real(command, cwd, log, label, quiet)

    monkeypatch.setattr(flows, "run_tool", flaky)
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--dataset", "digits", "--out", str(tmp_path / "s"), "--space", str(space), "-q",
              "--trials", "2"])
    assert exc.value.code == 0
    study = study_of(tmp_path / "s")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs["fail_reason"].startswith("synth: yosys core failed (exit 1): ERROR: planted")
    assert "trial 1 fail: synth: yosys core failed" in capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin():
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "initdb").exists():
            return root
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def test_postgresql_storage(tmp_path, space):
    """A throwaway PostgreSQL cluster (unprivileged user, Unix socket only) holds the study."""
    pytest.importorskip("psycopg")
    pgbin = _pg_bin()
    if pgbin is None:
        pytest.skip("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    run_as = []
    user = os.environ.get("USER") or "postgres"
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        user = "nobody"
        run_as = ["runuser", "-u", user, "--"]
    base = Path(f"/tmp/dwn_pg_{os.getpid()}")
    shutil.rmtree(base, ignore_errors=True)
    (base / "sock").mkdir(parents=True)
    if run_as:
        shutil.chown(base, user)
        shutil.chown(base / "sock", user)
    data, port = base / "data", _free_port()
    subprocess.run(run_as + [str(pgbin / "initdb"), "-D", str(data), "-A", "trust", "-U", user],
                   check=True, capture_output=True)
    subprocess.run(run_as + [str(pgbin / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "start",
                             "-o", f"-k {base / 'sock'} -p {port} -c listen_addresses=''"], check=True,
                   capture_output=True)
    try:
        url = f"postgresql://{user}@/postgres?host={base / 'sock'}&port={port}"
        out = tmp_path / "s"
        run(out, space, "--trials", "2", "--storage", url)
        study = study_of(out, url)
        assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 2
        assert not (out / "study.db").exists() and len(rows(out)) == 2
    finally:
        subprocess.run(run_as + [str(pgbin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
