"""The hardware install: ``pip install ".[hw]"`` in a fresh venv pulls no torch and runs the whole flow
from an IR file (info, eval on a CSV, export, ``make sim``, synth).

Slow (a fresh venv and a pip install from the checkout, then a Verilator build and a place and route).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dwn_hw.ir import evaluate, save
from dwn_hw.ir.random import random_ir

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, env, cwd, timeout=900):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_hw_install_has_no_torch_and_runs_the_flow_from_an_ir(tmp_path):
    start = time.monotonic()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    run([bin_dir / "python", "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", f"{ROOT}[hw]"],
        env, tmp_path)
    installed = tmp_path / "installed.txt"
    installed.write_text(run([bin_dir / "python", "-m", "pip", "freeze"], env, tmp_path).stdout)
    names = {line.split("==")[0].split(" @ ")[0].lower() for line in installed.read_text().splitlines()}
    assert not names & {"torch", "tqdm", "scikit-learn"}, sorted(names)
    probe = subprocess.run([bin_dir / "python", "-c", "import torch"], capture_output=True, text=True, env=env)
    assert probe.returncode != 0 and "torch" in probe.stderr

    # a small random IR (the committed models are large) and a CSV test set on its grid
    ir = random_ir(3, features=6, bits_per_feature=3, input_bits=4, layers=((24, 4), (12, 3)), k=3)
    save(ir, tmp_path / "model.ir.json")
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, size=(60, 6))
    q[0], q[1] = 0, 15    # the whole 4-bit range, so the CSV's own grid is the IR's
    labels = evaluate(ir, q)[1]
    rows = ["label," + ",".join(f"f{i}" for i in range(6))]
    rows += [f"{c}," + ",".join(map(str, r)) for c, r in zip(labels, q)]
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n")

    dwn = bin_dir / "dwn-hw"
    info = run([dwn, "info", "model.ir.json", "--json"], env, tmp_path)
    assert json.loads(info.stdout)["LUTs"] == str(sum(len(layer["mapping"]) for layer in ir["layers"]))
    scored = run([dwn, "eval", "model.ir.json", "--dataset", "csv:test.csv"], env, tmp_path)
    assert "IR evaluator" in scored.stdout and "accuracy" in scored.stdout
    run([dwn, "export", "model.ir.json", "-o", "out", "--board", "icebreaker"], env, tmp_path)
    sim = run(["make", "-C", "out", "sim"], env, tmp_path)
    n = json.loads((tmp_path / "out" / "bundle.json").read_text())["vectors"]
    assert f"{n}/{n}" in sim.stdout
    run([dwn, "synth", "out", "--board", "icebreaker"], env, tmp_path)
    assert (tmp_path / "out" / "synth" / "icebreaker" / "report.json").is_file()
    print(f"hw install and flow: {time.monotonic() - start:.0f} s")
