"""scripts/seeds.py: seeds side by side, each seed's best validation epoch frozen, and a record small enough to
travel without its checkpoint; scripts/frontier.py reads that record in place of the checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--dataset", "digits", "--layers", "60", "--n", "4", "--val-split", "0.2", "--keep-best", "--device", "cpu"]


def _run(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "seeds.py"), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=600)


def test_two_seeds_are_trained_frozen_and_recorded(tmp_path):
    res = _run(tmp_path, "--seeds", "0,1", "--", *TRAIN, "--epochs", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["seeds"]) == {"0", "1"}
    fr = load_script("scripts/frontier.py")
    for s in (0, 1):
        rec = json.loads((tmp_path / f"seed{s}.run.json").read_text())
        assert rec["seed"] == s and rec["finished"] and rec["options"]["seed"] == s
        assert [h["epoch"] for h in rec["history"]] == [1, 2, 3]  # the whole run, not only up to the best epoch
        best = max(rec["history"], key=lambda h: (h["val_accuracy"], -h["epoch"]))
        assert rec["selected"]["epoch"] == best["epoch"]  # chosen on validation, never on test
        ir = json.loads((tmp_path / f"seed{s}.ir.json").read_text())
        assert ir["meta"]["training_metrics"]["best_epoch"] == best["epoch"]
        assert ir["meta"]["checked"]["against"] == "pytorch"
        # the frontier script takes the IR with its run.json where the checkpoint is not at hand
        got, ir_path = fr._run_record(tmp_path / f"seed{s}.ir.json")
        assert ir_path == tmp_path / f"seed{s}.ir.json" and got["selected"] == rec["selected"]
        assert fr.ir_test_accuracy(ir_path, "digits") == pytest.approx(ir["meta"]["accuracy"]["grid"])
    assert "seed 0: started" in res.stdout and "seed 1: started" in res.stdout


def test_deadline_stops_the_training_and_says_so(tmp_path):
    res = _run(tmp_path, "--seeds", "3", "--deadline", "15", "--", *TRAIN, "--epochs", "10000")
    assert res.returncode == 1, res.stdout + res.stderr  # a stopped run is not a finished one
    entry = json.loads((tmp_path / "summary.json").read_text())["seeds"]["3"]
    assert entry["stopped_at_deadline"] and entry["freeze_rc"] == 0
    rec = json.loads((tmp_path / "seed3.run.json").read_text())
    assert not rec["finished"] and 0 < len(rec["history"]) < 10000
    assert (tmp_path / "seed3.ir.json").exists()


def test_training_options_must_choose_on_validation(tmp_path):
    res = _run(tmp_path, "--", "--dataset", "digits", "--epochs", "1")
    assert res.returncode == 2 and "--keep-best and --val-split" in res.stderr
    assert not list(tmp_path.iterdir())  # nothing was started or written


def test_an_earlier_run_is_not_overwritten_without_force(tmp_path):
    (tmp_path / "seed0.log").write_text("the log of an earlier run\n")
    res = _run(tmp_path, "--seeds", "0", "--", *TRAIN, "--epochs", "1")
    assert res.returncode == 2 and "seed0.log exists" in res.stderr and "--force" in res.stderr
    assert (tmp_path / "seed0.log").read_text() == "the log of an earlier run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0.log"]
    res = _run(tmp_path, "--seeds", "0", "--force", "--", *TRAIN, "--epochs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "seed0.ir.json").exists() and "earlier run" not in (tmp_path / "seed0.log").read_text()


def test_an_ir_without_its_run_record_is_refused(tmp_path):
    fr = load_script("scripts/frontier.py")
    (tmp_path / "x.ir.json").write_text("{}")
    with pytest.raises(SystemExit, match="x.run.json"):
        fr._run_record(tmp_path / "x.ir.json")
