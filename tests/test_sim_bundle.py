"""An export bundle simulates as a user runs it: `make sim` in the bundle, and `dwn-hw sim OUT`.

One Verilator build serves every test here (the bundle's sim_build is reused).
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dwn_hw import ir as I

pytest.importorskip("dwn_hw.export")
ROOT = Path(__file__).resolve().parent.parent
DWN = [sys.executable, "-m", "dwn_hw.cli"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    base = tmp_path_factory.mktemp("bundle")
    ir = I.random_ir(21, features=7, bits_per_feature=3, input_bits=4, signed=True,
                     layers=[(30, 5), (12, 3)], k=4, permute=True)
    I.save(ir, base / "model.json")
    out = base / "out"
    done = subprocess.run(DWN + ["export", str(base / "model.json"), "--target", "verilog", "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def make_sim(out: Path, *args):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["make", "-s", "sim", *args], cwd=out, capture_output=True, text=True, env=env)


def test_make_sim_passes_and_says_where_expectations_came_from(bundle):
    done = make_sim(bundle)
    assert done.returncode == 0, done.stdout + done.stderr
    n = json.loads((bundle / "bundle.json").read_text())["vectors"]
    assert f"bit-exact: {n}/{n} (expected from ir)" in done.stdout


def test_dwn_hw_sim_runs_the_same_bench(bundle):
    done = subprocess.run(DWN + ["sim", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bit-exact:" in done.stdout and "/" in done.stdout


def test_a_wrong_expectation_fails_with_a_mismatch_table(bundle):
    path = bundle / "vectors" / "vectors.npz"
    original = path.read_bytes()
    with np.load(path) as z:
        q, s, c = z["inputs"], z["scores"].copy(), z["classes"].copy()
    s[2, 1] = (s[2, 1] + 1) % 2          # still fits the score width
    c[9] = (c[9] + 1) % s.shape[1]
    try:
        np.savez(path, inputs=q, scores=s, classes=c)
        direct = subprocess.run([sys.executable, "tb/run_sim.py"], cwd=bundle, capture_output=True, text=True)
        via_make = make_sim(bundle)
    finally:
        path.write_bytes(original)
    assert direct.returncode == 1, direct.stdout + direct.stderr
    assert via_make.returncode != 0 and "bit-exact" in via_make.stdout
    assert f"bit-exact: {len(q) - 2}/{len(q)}" in direct.stdout
    table = direct.stdout.split("first mismatches")[1]
    rows = [line.split() for line in table.splitlines()[2:] if line.strip() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [2, 9]
    assert rows[0][2] == "[" + ",".join(map(str, s[2])) + "]/" + str(c[2])   # the expected column


def test_bench_needs_no_dwn_hw():
    """The bundle's bench imports only the standard library, numpy and cocotb."""
    allowed = {"argparse", "json", "os", "shutil", "sys", "time", "zipfile", "pathlib", "numpy", "cocotb",
               "cocotb_tools", "verilator", "hashlib", "__future__"}
    for name in ("run_sim.py", "test_dwn.py"):
        tree = ast.parse((ROOT / "sim" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] in allowed, (name, mod)


def test_make_sim_from_a_clean_shell_then_make_clean(bundle, tmp_path):
    """The quick start's `make -C out sim` with no venv on PATH (env -i, HOME kept): the Makefile finds
    the Python that ran the export; every output goes under build/, and `make clean` removes it all."""
    import shutil

    shutil.rmtree(bundle / "build", ignore_errors=True)
    before = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*"))
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/bin:/bin"}
    assert str(Path(sys.executable).parent) not in env["PATH"]
    done = subprocess.run(["make", "-C", str(bundle), "sim"], cwd=tmp_path, capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    n = json.loads((bundle / "bundle.json").read_text())["vectors"]
    assert f"bit-exact: {n}/{n} (expected from ir)" in done.stdout
    assert (bundle / "build" / "sim").is_dir()
    after = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.parts[len(bundle.parts)] != "build")
    assert after == before, set(after) ^ set(before)
    # a Python without cocotb: one error line that says what to install and which PYTHON= to pass
    bad = subprocess.run(["make", "-s", "-C", str(bundle), "sim", f"PYTHON={tmp_path / 'no' / 'python'}"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode != 0
    err = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "pip install" in err[0] and "PYTHON=" in err[0], bad.stderr
    # a relative PYTHON is taken from the caller's folder ($PWD), not the bundle's
    rel = os.path.relpath(sys.executable, tmp_path)
    again = subprocess.run(["make", "-s", "-C", str(bundle), "sim", f"PYTHON={rel}"], cwd=tmp_path,
                           capture_output=True, text=True, env=dict(env, PWD=str(tmp_path)))
    assert again.returncode == 0 and "bit-exact" in again.stdout, again.stdout + again.stderr
    assert subprocess.run(["make", "-s", "-C", str(bundle), "clean"], env=env).returncode == 0
    assert not (bundle / "build").exists()
    assert sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*")) == before
