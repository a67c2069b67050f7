"""`dwn-hw train --keep-best`: the checkpoint of the best validation epoch, kept beside the last one."""
import pytest
import torch

from dwn_hw.freeze import freeze
from dwn_hw.train import checkpoint
from dwn_hw.train.loop import TrainConfig, best_path, run

CFG = dict(bits=3, layers=[60], n=[6], batch_size=64, epochs=5, val_split=0.25, keep_best=True, lr=0.03)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("kb") / "model.pt"
    metrics = run(TrainConfig(**CFG), str(out), progress=False)
    return out, metrics


def test_best_file_holds_the_epoch_of_the_highest_validation_accuracy(trained):
    out, metrics = trained
    assert best_path(out) == out.with_name("model.best.pt")
    last, best = checkpoint.read_record(out), checkpoint.read_record(best_path(out))
    history = last["train_state"]["history"]
    vals = [h["val_accuracy"] for h in history]
    want = vals.index(max(vals)) + 1  # the first epoch with the highest value
    assert best["selected"]["epoch"] == want == metrics["best_epoch"] == best["train_state"]["epoch"]
    assert best["selected"]["val_accuracy"] == max(vals) == metrics["best_val_accuracy"]
    assert len(best["train_state"]["history"]) == want and best["metrics"]["epochs"] == want
    # the kept file is that epoch's model: the frozen IR reproduces that epoch's test accuracy
    ir = freeze(str(best_path(out)))
    assert ir["meta"]["accuracy"]["grid"] == pytest.approx(history[want - 1]["test_accuracy"])
    if want != len(vals):  # later epochs went to OUT only: different weights
        key = next(k for k in last["state_dict"] if last["state_dict"][k].is_floating_point())
        assert not torch.equal(last["state_dict"][key], best["state_dict"][key])


def test_keep_best_needs_a_validation_split(tmp_path, cli_exit):
    code, err = cli_exit("train", "--layers", "20", "--epochs", "1", "--keep-best", "-o", str(tmp_path / "m.pt"))
    assert code == 2 and "needs --val-split" in err and not (tmp_path / "m.pt").exists()


def test_an_earlier_best_file_is_not_overwritten_without_force(tmp_path, cli_exit):
    best = tmp_path / "m.best.pt"
    best.write_bytes(b"someone's file")
    args = ["train", "--layers", "20", "--epochs", "1", "--val-split", "0.2", "--keep-best", "-o", str(tmp_path / "m.pt")]
    code, err = cli_exit(*args)
    assert code == 2 and "m.best.pt already exists" in err and best.read_bytes() == b"someone's file"
    code, _ = cli_exit(*args, "--force")
    assert code == 0 and checkpoint.read_record(best)["selected"]["epoch"] == 1


def test_resume_keeps_the_option_and_the_best_so_far(tmp_path):
    out = tmp_path / "r.pt"
    run(TrainConfig(**{**CFG, "epochs": 2}), str(out), progress=False)
    first = checkpoint.read_record(best_path(out))["selected"]
    metrics = run(TrainConfig(), str(out), resume=True, epochs_override=4, progress=False)
    vals = [h["val_accuracy"] for h in checkpoint.read_record(out)["train_state"]["history"]]
    assert len(vals) == 4 and checkpoint.read_record(out)["options"]["keep_best"] is True
    sel = checkpoint.read_record(best_path(out))["selected"]
    assert sel["epoch"] == vals.index(max(vals)) + 1 == metrics["best_epoch"]
    assert sel["val_accuracy"] >= first["val_accuracy"]
