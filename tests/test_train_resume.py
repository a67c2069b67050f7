"""Resume: a run stopped after any epoch continues exactly as if it had not stopped."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import dwn_hw
from dwn_hw.errors import DwnHwError
from dwn_hw.train import checkpoint
from dwn_hw.train.loop import TrainConfig, run

TINY = dict(bits=2, layers=[40, 20], n=[3], batch_size=128, lr_step=1, gamma=0.5)


def test_resume_equals_uninterrupted_run(tmp_path):
    straight, split = tmp_path / "a.pt", tmp_path / "b.pt"
    run(TrainConfig(**TINY, epochs=3), str(straight), progress=False)
    run(TrainConfig(**TINY, epochs=1), str(split), progress=False)
    assert checkpoint.read_record(split)["train_state"]["epoch"] == 1
    # the recorded options win; --epochs extends the run
    run(TrainConfig(epochs=99, layers=[7]), str(split), resume=True, epochs_override=3, progress=False)
    a, b = checkpoint.read_record(straight), checkpoint.read_record(split)
    assert b["train_state"]["epoch"] == 3 and b["options"]["layers"] == [40, 20]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["train_state"]["scheduler"] == b["train_state"]["scheduler"]
    assert [h["loss"] for h in a["train_state"]["history"]] == [h["loss"] for h in b["train_state"]["history"]]
    assert a["metrics"]["test_accuracy"] == b["metrics"]["test_accuracy"]


def test_resume_of_missing_file_starts_fresh_and_finished_run_is_kept(tmp_path):
    out = tmp_path / "m.pt"
    m1 = run(TrainConfig(**TINY, epochs=1), str(out), resume=True, progress=False)
    before = out.read_bytes()
    m2 = run(TrainConfig(**TINY, epochs=1), str(out), resume=True, progress=False)
    assert out.read_bytes() == before and m2["test_accuracy"] == m1["test_accuracy"]
    with pytest.raises(DwnHwError, match="already exists"):
        run(TrainConfig(**TINY, epochs=1), str(out), progress=False)


def test_kill_9_loses_at_most_the_epoch_in_flight(tmp_path):
    out = tmp_path / "k.pt"
    cmd = [sys.executable, "-m", "dwn_hw.train", "-q", "--layers", "40,20", "--n", "3", "--bits", "2",
           "--batch-size", "256", "--epochs", "500", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not out.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert out.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint"
        time.sleep(0.3)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = checkpoint.read_record(out)["train_state"]["epoch"]
    assert 1 <= done < 500
    assert not [p for p in tmp_path.iterdir() if p.name != "k.pt" and not p.name.endswith(".tmp")]
    metrics = run(TrainConfig(), str(out), resume=True, epochs_override=done + 1, progress=False)
    assert metrics["epochs"] == done + 1
    assert dwn_hw.load(out).meta["metrics"]["epochs"] == done + 1
