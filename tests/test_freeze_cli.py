"""The freezer's commands as a new user runs them: checkpoint, IR file and torch-dwn state dict."""
import json

import numpy as np
import pytest
import torch

import dwn_hw as dwn
import dwn_hw.ir as I
from dwn_hw.cli import main
from dwn_hw.freeze import bundle_inputs


def run(capsys, *args):
    """Run ``dwn-hw ARGS``; returns (exit status, stdout + stderr)."""
    try:
        main(list(map(str, args)))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A digits checkpoint written by the trainer's own code (one short epoch)."""
    from click.testing import CliRunner
    from dwn_hw.cli import cli

    path = tmp_path_factory.mktemp("ck") / "model.pt"
    res = CliRunner().invoke(cli, ["train", "--layers", "120,60", "--epochs", "1", "--bits", "2",
                                   "--batch-size", "64", "-o", str(path)])
    assert res.exit_code == 0, res.output
    return path


def test_checkpoint_info_freeze_eval(checkpoint, tmp_path, capsys):
    code, out = run(capsys, "info", checkpoint)
    assert code == 0 and "digits" in out and "layer 1" in out and "60 LUTs" in out
    ir_path = tmp_path / "m.ir.json"
    code, out = run(capsys, "freeze", checkpoint, "-o", ir_path)
    assert code == 0, out
    assert "checked: IR equals the PyTorch forward" in out and "LUTs:" in out
    ir = I.load(ir_path)
    acc = ir["meta"]["accuracy"]
    assert acc["dataset"] == "digits" and acc["float"] == acc["grid"]
    assert ir["meta"]["tool"].startswith("dwn-hw ")
    code, out = run(capsys, "freeze", checkpoint, "-o", ir_path)
    assert code == 2 and "--force" in out
    code, out = run(capsys, "info", ir_path, "--json")
    assert code == 0 and json.loads(out)["LUTs"] == "180"
    code, out = run(capsys, "eval", ir_path)
    assert code == 0 and f"accuracy {acc['grid']:.4f}" in out and "IR evaluator" in out
    code, out = run(capsys, "eval", checkpoint, "--dataset", "digits")
    assert code == 0 and f"accuracy {acc['float']:.4f}" in out and "PyTorch" in out
    code, out = run(capsys, "eval", ir_path, "--dataset", "nope")
    assert code == 2 and "unknown data set 'nope'" in out


def test_bundle_inputs_from_checkpoint(checkpoint):
    b = bundle_inputs(checkpoint)
    assert b["expected_from"] == "pytorch"
    assert b["inputs"].dtype == np.int64 and b["scores"].dtype == np.int64 and b["classes"].dtype == np.int64
    assert b["inputs"].shape[1] == 64 and len(b["inputs"]) == len(b["scores"]) == len(b["classes"]) > 300
    ck = dwn.load(checkpoint)
    np.testing.assert_array_equal(b["scores"], ck.scores_q(b["inputs"]))   # the trainer's own forward
    np.testing.assert_array_equal(b["classes"], b["scores"].argmax(1))
    s, c = I.evaluate(b["ir"], b["inputs"])
    np.testing.assert_array_equal(s, b["scores"])


def test_torch_dwn_state_dict_through_every_command(tmp_path, capsys):
    torch.manual_seed(0)
    th = np.sort(np.random.default_rng(0).uniform(0, 16, size=(64, 2)), axis=1).astype(np.float32)
    m = torch.nn.Sequential(dwn.LUTLayer(128, 40, 6, mapping="learnable"), torch.nn.Flatten(),
                            dwn.LUTLayer(40, 20, 3), dwn.GroupSum(10, tau=2.0))
    torch.save(m.state_dict(), tmp_path / "state.pt")
    torch.save(m, tmp_path / "whole.pt")
    np.save(tmp_path / "th.npy", th)
    np.save(tmp_path / "perm.npy", np.random.default_rng(1).permutation(20))
    code, out = run(capsys, "info", tmp_path / "state.pt")
    assert code == 0 and "learnable mapping" in out and "40 LUTs" in out
    code, out = run(capsys, "freeze", tmp_path / "state.pt", "-o", tmp_path / "x.json")
    assert code == 2 and "import-torch-dwn" in out
    base = ["import-torch-dwn", tmp_path / "state.pt", "--thresholds", tmp_path / "th.npy", "--classes", 10,
            "--tau", 2.0, "--randperm", tmp_path / "perm.npy", "-o", tmp_path / "imp.pt"]
    code, out = run(capsys, *base)
    assert code == 2 and "--input-bits 5" in out
    code, out = run(capsys, *base, "--input-bits", 5)
    assert code == 0 and "checked" in out, out
    code, out = run(capsys, "import-torch-dwn", tmp_path / "whole.pt", "--thresholds", tmp_path / "th.npy",
                    "--classes", 10, "--input-bits", 5, "-o", tmp_path / "w.pt")
    assert code == 2 and "state_dict()" in out and not (tmp_path / "w.pt").exists()
    code, out = run(capsys, "info", tmp_path / "imp.pt")
    assert code == 0 and "none recorded" in out
    code, out = run(capsys, "freeze", tmp_path / "imp.pt", "-o", tmp_path / "imp.ir.json")
    assert code == 0 and "random and edge" in out
    ir = I.load(tmp_path / "imp.ir.json")
    assert ir["groupsum"]["permutation"] == np.load(tmp_path / "perm.npy").tolist()
    code, out = run(capsys, "eval", tmp_path / "imp.ir.json")
    assert code == 2 and "--dataset" in out
    code, out = run(capsys, "eval", tmp_path / "imp.ir.json", "--dataset", "digits")
    assert code == 0 and "accuracy" in out


def test_info_and_freeze_refuse_other_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code, out = run(capsys, "info", tmp_path / "notes.txt")
    assert code == 2 and "neither an IR" in out
    code, out = run(capsys, "info", tmp_path / "missing.pt")
    assert code == 2 and "does not exist" in out
    (tmp_path / "bad.json").write_text('{"format": "dwn-hw-ir", "version": 1}')
    code, out = run(capsys, "info", tmp_path / "bad.json")
    assert code == 2 and "encoder" in out


def test_info_and_eval_on_an_ir_never_import_torch(tmp_path):
    import subprocess
    import sys

    ir = I.random_ir(3, features=64, bits_per_feature=2, input_bits=5, layers=[(30, 4), (20, 3)], k=10)
    I.save(ir, tmp_path / "r.ir.json")
    code = ("import sys\nfrom dwn_hw.cli import main\n"
            f"for args in (['info', {str(tmp_path / 'r.ir.json')!r}], "
            f"['eval', {str(tmp_path / 'r.ir.json')!r}, '--dataset', 'digits']):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert not e.code, e.code\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout and out.stdout.strip().endswith("False")
