"""A checkpoint goes to a lint-clean bundle whose expectations come from PyTorch (the new-user path)."""
import json
import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.slow
def test_train_then_export_digits(tmp_path):
    code = "import sys; from dwn_hw.cli import main; main(sys.argv[1:])"
    train = subprocess.run([sys.executable, "-c", code, "train", "--epochs", "1", "-o", str(tmp_path / "model.pt")],
                           capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-2000:]
    out = tmp_path / "bundle"
    export = subprocess.run([sys.executable, "-c", code, "export", str(tmp_path / "model.pt"), "--target", "verilog",
                             "-o", str(out)], capture_output=True, text=True, timeout=900)
    assert export.returncode == 0, export.stderr[-2000:]
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["expected_from"] == "pytorch" and meta["inputs"] == "features"

    from dwn_hw.check.lint import lint
    from dwn_hw.ir import evaluate, load

    rtl = [out / "rtl" / "dwn_top.v"]
    assert lint(rtl, meta["top"]) == []
    assert lint([out / "rtl" / "lint_waivers.vlt"] + rtl, meta["top"], wall=True) == []
    with np.load(out / "vectors" / "vectors.npz") as data:
        scores, classes = evaluate(load(out / "dwn.ir.json"), data["inputs"])
        assert (scores == data["scores"]).all() and (classes == data["classes"]).all()
        assert len(classes) == meta["vectors"] > 100  # the recorded test set, not only edge inputs
