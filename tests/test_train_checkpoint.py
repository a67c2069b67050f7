"""Checkpoints: safe to load, self-contained, rebuilt by dwn_hw.load, bad files refused in one line."""
import os

import numpy as np
import pytest
import torch

import dwn_hw
from dwn_hw.errors import DwnHwError
from dwn_hw.train import checkpoint
from dwn_hw.datasets import load_test_set
from dwn_hw.train.loop import TrainConfig, run

TINY = dict(bits=2, layers=[40, 20], n=[3], epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "model.pt"
    metrics = run(TrainConfig(**TINY), str(out), progress=False)
    return out, metrics


def _plain(obj, path="root"):
    """Only the types the issue allows: tensors, dicts, lists, str, int, float, bool, None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)), f"{path} key {k!r}"
            _plain(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _plain(v, f"{path}[{i}]")
    else:
        assert obj is None or isinstance(obj, (torch.Tensor, str, int, float, bool)), f"{path}: {type(obj)}"


def test_weights_only_load_and_contents(trained):
    out, metrics = trained
    rec = torch.load(out, weights_only=True)
    _plain(rec)
    assert rec["format_version"] == checkpoint.FORMAT_VERSION
    assert rec["encoder"]["kind"] == "distributive" and tuple(rec["encoder"]["thresholds"].shape) == (64, 2)
    assert rec["grid"]["input_bits"] == 5 and rec["classes"] == [str(i) for i in range(10)]
    layers = rec["architecture"]["layers"]
    assert [spec["output_size"] for spec in layers] == [40, 20]
    assert layers[0]["mapping"] == "learnable" and layers[1]["mapping"] == "random"
    assert all(isinstance(spec["alpha"], float) for spec in layers)
    assert rec["train_state"]["epoch"] == 1 and rec["data"]["spec"] == "digits"
    assert 0.0 <= rec["metrics"]["test_accuracy"] <= 1.0
    assert rec["metrics"] == {k: v for k, v in metrics.items() if k != "total_seconds"}


def test_load_rebuilds_model_and_forward_q_matches(trained):
    out, metrics = trained
    ck = dwn_hw.load(out)
    q, y = load_test_set(ck.meta)
    scores = ck.forward_q(q)
    assert scores.shape == (len(y), 10)
    x = torch.from_numpy(q).to(torch.float32) / torch.tensor(ck.grid.scale_array())
    with torch.no_grad():
        direct = ck.model(ck.encoder.binarize(x))
    assert torch.equal(scores, direct)
    acc = float((scores.argmax(1).numpy() == y).mean())
    assert acc == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    ints = ck.scores_q(q)
    assert ints.dtype == np.int64 and np.all(ints.sum(axis=1) <= 20)
    assert np.array_equal(ck.predict_q(q), scores.argmax(1).numpy())
    with pytest.raises(DwnHwError, match="outside the 5-bit grid"):
        ck.forward_q(np.full((1, 64), 40))


def test_truncated_file_refused(trained, tmp_path):
    data = trained[0].read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DwnHwError, match="truncated"):
        dwn_hw.load(bad)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_code_running_pickle_refused(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "x": _Evil()}, bad)
    with pytest.raises(DwnHwError, match="could run code"):
        dwn_hw.load(bad)


def test_newer_version_and_foreign_files_refused(trained, tmp_path):
    rec = torch.load(trained[0], weights_only=True)
    rec["format_version"] = checkpoint.FORMAT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(rec, newer)
    with pytest.raises(DwnHwError, match="format version 2.*upgrade"):
        dwn_hw.load(newer)
    other = tmp_path / "sd.pt"
    torch.save({"luts": torch.zeros(2)}, other)
    with pytest.raises(DwnHwError, match="not a dwn-hw checkpoint"):
        dwn_hw.load(other)
    with pytest.raises(DwnHwError, match="does not exist"):
        dwn_hw.load(tmp_path / "none.pt")


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "unknown data set 'cifar'"),
    (["--resume", "-o", "CUT"], "truncated"),
    (["-o", "TRAINED"], "already exists"),
    (["--resume", "--layers", "3,2", "-o", "TRAINED"], "drop --layers"),
    (["--resume", "--shift", "1", "-o", "TRAINED"], "drop --shift"),
    (["--layers", "5", "-o", "NEW"], "fewer than the 10 classes"),
    (["--dataset", "csv:NOFILE", "-o", "NEW"], "does not exist"),
])
def test_cli_errors_are_one_line_exit_2(trained, tmp_path, capsys, args, message):
    from dwn_hw.cli import main

    bad = tmp_path / "cut.pt"
    bad.write_bytes(trained[0].read_bytes()[:100])
    names = {"CUT": str(bad), "TRAINED": str(trained[0]), "NEW": str(tmp_path / "new.pt"),
             "csv:NOFILE": f"csv:{tmp_path}/no.csv"}
    with pytest.raises(SystemExit) as exc:
        main(["train", "-q", *[names.get(a, a) for a in args]])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], lines
    assert not (tmp_path / "new.pt").exists()


def test_save_is_atomic_on_failure(trained, tmp_path, monkeypatch):
    target = tmp_path / "m.pt"
    target.write_bytes(trained[0].read_bytes())

    def boom(*a, **k):
        raise RuntimeError("disk full")

    rec = checkpoint.read_record(target)
    monkeypatch.setattr(checkpoint.torch, "save", boom)
    with pytest.raises(RuntimeError):
        checkpoint.save_record(rec, target)
    assert target.read_bytes() == trained[0].read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_device_choice(monkeypatch):
    from dwn_hw.train.loop import Dist, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto", Dist()).type == "cpu"
    with pytest.raises(DwnHwError, match="no CUDA device"):
        pick_device("cuda", Dist())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("auto", Dist(1, 2, 1)).type == "cpu"  # two processes cannot share one GPU under NCCL
    assert pick_device("auto", Dist()) == torch.device("cuda", 0)
    with pytest.raises(DwnHwError, match="needs 2 GPUs"):
        pick_device("cuda", Dist(0, 2, 0))
