"""Loud, not silent: collapsed thresholds, uneven class groups, one-class data, bad files, tool-owned outputs."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from dwn_hw.errors import DwnHwError, DwnHwWarning, show
from dwn_hw.ir.grid import collapse_text, grid_thresholds, threshold_collapse
from dwn_hw.outputs import check_replaceable, is_tool_output, mark
from dwn_hw.train.arch import group_sizes, make_arch

DWN = [sys.executable, "-m", "dwn_hw.cli"]


def dwn(*args, cwd):
    return subprocess.run(DWN + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)


def error_line(proc) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_collapse_found_with_its_numbers_and_constant_features_are_not_one():
    theta = np.array([[0.1, 0.5, 0.9], [0, 0, 0], [3, 7, 12], [-5, 300, 400]], np.float32)
    g = grid_thresholds(theta, 1.0, 8, False)
    rep = threshold_collapse(theta, g, 1.0, 8, False)
    assert rep["features"] == 2 and rep["thresholds"] == 3 and rep["edge_features"] == 1
    assert rep["example"]["feature"] == 0 and rep["example"]["grid"] == [0, 0, 0]
    text = collapse_text(rep)
    assert "2 of 4 features" in text and "0.1" in text and "np." not in text
    # the same thresholds on a grid fine enough: nothing collapses; identical thresholds never do
    assert threshold_collapse(theta[:3], grid_thresholds(theta[:3], 255.0, 16, False), 255.0, 16, False) is None
    const = np.zeros((2, 3), np.float32)
    assert threshold_collapse(const, grid_thresholds(const, 1.0, 4, False), 1.0, 4, False) is None


def test_group_splits():
    assert group_sizes(100, 7) == [15] * 6 + [10]
    with pytest.warns(DwnHwWarning, match=r"100 LUTs do not split evenly into 7 classes.*15 LUTs each.*10"):
        make_arch(12, [100], [4], 7, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_arch(12, [100], [4], 10, 1.0)     # even: no warning
    with pytest.raises(DwnHwError, match="without a LUT"):
        make_arch(12, [100], [4], 30, 1.0)     # groups of 4: classes 25..29 get nothing


def test_show_prints_plain_numbers():
    assert show(np.float64(2.5)) == "2.5" and show(np.int64(3)) == "3" and show("a") == "'a'"
    assert show(np.array([1, 2])) == "[1, 2]"


def test_outputs_replace_only_their_own(tmp_path):
    ours, theirs = tmp_path / "m.json", tmp_path / "notes.json"
    ours.write_text(json.dumps(mark({"a": 1}, "train-metrics")))
    theirs.write_text('{"a": 1}')
    assert is_tool_output(ours) and not is_tool_output(theirs)
    check_replaceable(ours, False)
    check_replaceable(tmp_path / "new.json", False)
    with pytest.raises(DwnHwError, match="--force"):
        check_replaceable(theirs, False)
    check_replaceable(theirs, True)
    with pytest.raises(DwnHwError, match="folder"):
        check_replaceable(tmp_path, True)


def test_train_metrics_json_replaces_its_own_refuses_others(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("my notes\n")
    base = ["train", "--epochs", "1", "--layers", "20", "-q", "--metrics-json", metrics]
    line = error_line(dwn(*base, "-o", "a.pt", cwd=tmp_path))
    assert "metrics.json" in line and "--force" in line and metrics.read_text() == "my notes\n"
    assert not (tmp_path / "a.pt").exists()           # refused before training
    assert dwn(*base, "-o", "a.pt", "--force", cwd=tmp_path).returncode == 0
    first = json.loads(metrics.read_text())
    assert first["tool"] == "dwn-hw" and first["epochs"] == 1
    proc = dwn(*base, "-o", "b.pt", cwd=tmp_path)     # our own file: replaced without --force
    assert proc.returncode == 0, proc.stderr
    assert json.loads(metrics.read_text())["total_seconds"] != first["total_seconds"]


def test_one_class_refused_missing_class_warned(tmp_path):
    (tmp_path / "one.csv").write_text("label,a,b\n" + "".join(f"1,{i},{i % 3}\n" for i in range(10)))
    line = error_line(dwn("train", "--dataset", "csv:one.csv", "-o", "x.pt", cwd=tmp_path))
    assert "one class only" in line and "--label-column" in line
    (tmp_path / "two.csv").write_text("label,a,b\n" + "".join(f"{1 + i % 2},{i},{i % 3}\n" for i in range(20)))
    proc = dwn("train", "--dataset", "csv:two.csv", "-o", "x.pt", "--epochs", "1", "--layers", "9", "-q",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warn = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warn) == 1 and "class 0" in warn[0] and "no training sample" in warn[0]


@pytest.mark.parametrize("setup, args, needle", [
    (lambda p: None, ["train", "--dataset", "csv:{tmp}", "-o", "x.pt"], "is a folder"),
    (lambda p: (p / "d.csv").write_text("label,a\n0,1\n1,2\n"), ["train", "--dataset", "npz:d.csv", "-o", "x.pt"],
     "csv:PATH"),
    (lambda p: (p / "e.pt").write_bytes(b""), ["info", "e.pt"], "e.pt"),
    (lambda p: (p / "t.pt").write_bytes(b"PK\x03\x04garbage"), ["eval", "t.pt"], "truncated"),
    (lambda p: (p / "t.pt").write_bytes(b"PK\x03\x04garbage"), ["freeze", "t.pt", "-o", "a.json"], "truncated"),
    (lambda p: None, ["freeze", "missing.pt", "-o", "a.json"], "does not exist"),
])
def test_bad_paths_and_files_are_one_line(tmp_path, setup, args, needle):
    setup(tmp_path)
    line = error_line(dwn(*[a.format(tmp=tmp_path) for a in args], cwd=tmp_path))
    assert needle in line


@pytest.fixture(scope="module")
def unit_model(tmp_path_factory):
    """A torch-dwn style state dict with thresholds fitted on digits scaled into [0, 1], and that data as CSV."""
    import torch

    import dwn_hw
    from sklearn.datasets import load_digits

    tmp = tmp_path_factory.mktemp("unit")
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    (tmp / "unit.csv").write_text("label," + ",".join(f"f{i}" for i in range(64)) + "\n" + "".join(
        f"{int(lab)}," + ",".join(f"{v:.6f}" for v in row) + "\n" for row, lab in zip(x, y)))
    torch.manual_seed(0)
    xt = torch.tensor(x, dtype=torch.float32)
    enc = dwn_hw.DistributiveThermometer(3).fit(xt)
    bits = enc.binarize(xt).flatten(1)
    model = torch.nn.Sequential(dwn_hw.LUTLayer(bits.shape[1], 100, n=4, mapping="learnable"),
                                dwn_hw.GroupSum(k=10, tau=3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    yt = torch.tensor(y)
    for _ in range(2):
        for i in range(0, len(y), 32):
            loss = torch.nn.functional.cross_entropy(model(bits[i:i + 32]), yt[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(model.state_dict(), tmp / "state.pt")
    np.save(tmp / "th.npy", enc.thresholds.numpy())
    return tmp


def test_import_collapse_warns_and_the_check_line_says_so(unit_model):
    base = ["import-torch-dwn", "state.pt", "--thresholds", "th.npy", "--classes", "10", "--tau", "3",
            "--input-bits", "8", "--dataset", "csv:unit.csv", "--force"]
    proc = dwn(*base, "-o", "a.pt", cwd=unit_model)
    assert proc.returncode == 0, proc.stderr
    warn = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warn) == 1 and "collapse" in warn[0] and "--input-scale" in warn[0] and "--input-bits" in warn[0]
    acc = [ln for ln in proc.stdout.splitlines() if ln.startswith("accuracy")][0]
    fl, gr = [float(v) for v in __import__("re").findall(r"([\d.]+) %", acc)]
    assert gr < fl - 5                                   # the collapse costs accuracy, and it is shown
    assert "NOT the model" in proc.stdout
    proc = dwn(*base, "--input-scale", "255", "-o", "b.pt", cwd=unit_model)
    assert proc.returncode == 0, proc.stderr
    assert "warning: thresholds collapse" not in proc.stderr and "NOT the model" not in proc.stdout
    fl2, gr2 = [float(v) for v in __import__("re").findall(
        r"([\d.]+) %", [ln for ln in proc.stdout.splitlines() if ln.startswith("accuracy")][0])]
    assert abs(fl2 - gr2) < 2 and gr2 > gr


@pytest.mark.parametrize("content, needle", [(b"", "is empty"), (b"[[0.1, 0.2]]", "is JSON"),
                                             (b"0.1,0.2\n", "is text")])
def test_bad_thresholds_files(unit_model, tmp_path, content, needle):
    th = tmp_path / "th.bad"
    th.write_bytes(content)
    line = error_line(dwn("import-torch-dwn", "state.pt", "--thresholds", th, "--classes", "10",
                          "--input-bits", "8", "-o", tmp_path / "x.pt", cwd=unit_model))
    assert needle in line and "numpy.save" in line


def test_import_uneven_groups_warn(unit_model, tmp_path):
    proc = dwn("import-torch-dwn", "state.pt", "--thresholds", "th.npy", "--classes", "7", "--input-bits", "8",
               "--input-scale", "255", "-o", tmp_path / "x.pt", cwd=unit_model)
    assert proc.returncode == 0, proc.stderr
    assert any(ln.startswith("warning: ") and "into 7 classes" in ln for ln in proc.stderr.splitlines())
