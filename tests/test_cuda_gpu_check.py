"""The prepared GPU check (bench/gpu_check.py, bench/gpu_check.sh) works without a GPU: its float64 reference
is torch-dwn's formula, its dry run on the CPU exercises every section, and a failing or stopped run still
prints one JSON object."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gc():
    return load_script("bench/gpu_check.py")


def _run(args, env_extra=None, timeout=240):
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no stdout; stderr:\n{proc.stderr[-3000:]}"
    return proc, json.loads(lines[-1])


def test_reference_is_the_formula_looped(gc):
    """The float64 reference that judges the kernels equals a literal loop over the EFD formula."""
    gen = torch.Generator().manual_seed(0)
    batch, inputs, num_luts, n, alpha, beta = 3, 5, 4, 3, 0.7, 0.3
    x = torch.randn(batch, inputs, generator=gen)
    mapping = torch.randint(0, inputs, (num_luts, n), generator=gen, dtype=torch.int32)
    luts = torch.rand(num_luts, 1 << n, generator=gen) * 2 - 1
    g = torch.randn(batch, num_luts, generator=gen)
    out, addr, grad_x, grad_luts = gc.reference_efd(x, mapping, luts, alpha, beta, g)

    want_gx = torch.zeros(batch, inputs, dtype=torch.float64)
    want_gl = torch.zeros(num_luts, 1 << n, dtype=torch.float64)
    for b, j in itertools.product(range(batch), range(num_luts)):
        a = sum(int(x[b, mapping[j, l]] > 0) << l for l in range(n))
        assert addr[b, j] == a and out[b, j] == luts[j, a].double()
        want_gl[j, a] += g[b, j].item()
        for l in range(n):
            total = 0.0
            for a2 in range(1 << n):
                dist = bin((a ^ a2) & ~(1 << l)).count("1")
                total += luts[j, a2].item() * beta ** dist * (1 if (a2 >> l) & 1 else -1)
            want_gx[b, mapping[j, l]] += g[b, j].item() * alpha * total
    assert torch.allclose(grad_luts, want_gl, atol=1e-12)
    assert torch.allclose(grad_x, want_gx, atol=1e-12)


def test_reference_agrees_with_cpu_back_end(gc):
    from dwn_hw.nn import cpu
    gen = torch.Generator().manual_seed(1)
    for n in (1, 4, 6):
        x, mapping, luts, g, alpha, beta = gc.random_case(n, 9, "fixed", torch.device("cpu"), gen)
        _, _, ref_gx, ref_gl = gc.reference_efd(x, mapping, luts, alpha, beta, g)
        _, addr = cpu.lut_forward(x, mapping, luts)
        gx, gl = cpu.lut_backward(g, addr, True, mapping, luts, alpha, beta, x.shape[1])
        assert gc.rel(gx, ref_gx) < 1e-5 and gc.rel(gl, ref_gl) < 1e-5


def test_dry_run_emits_complete_json(tmp_path):
    proc, result = _run([sys.executable, str(SCRIPT), "--dry-run", "--skip", "epoch,bench_model,train_cli"],
                        {"OUT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result["complete"] is True and result["dry_run"] is True
    assert result["errors"] == []
    assert result["kernels"]["ok"] and result["kernels"]["cases"] >= 12
    assert result["mapping"]["ok"] and result["layers"]["ok"]
    for batch in ("4", "16"):
        speed = result["bench_efd"][batch]["speedup"]
        assert set(speed) == {"forward", "backward", "forward+backward"}
        assert all(v > 0 for v in speed.values())
    assert result["summary"]["correct"] is True
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == result


def test_model_and_epoch_sections_run(gc, monkeypatch):
    import dwn_hw.nn.fused as fused
    monkeypatch.setattr(fused, "enabled", False)
    cpu = torch.device("cpu")
    timer = gc.Timer(cpu, budget_s=0.01, min_chunks=1)
    bench = gc.sec_bench_model(cpu, gc.impl_cpu_backend(), gc.impl_baseline_torch(), (4,), 80, timer)
    assert bench["4"]["ours_ms"]["backward"] > 0 and bench["4"]["baseline_ms"]["backward"] > 0
    epoch = gc.sec_epoch(cpu, gc.impl_baseline_torch(), 64, 80, 30, timer)
    for name in ("ours", "baseline"):
        assert epoch[name]["steps"] == 2 and epoch[name]["of_steps"] == 2
        assert 0.0 <= epoch[name]["test_accuracy"] <= 1.0
    # both runs start from the same seed and compute the same gradients: the same loss
    assert epoch["ours"]["last_loss"] == pytest.approx(epoch["baseline"]["last_loss"], rel=1e-4)
    assert "cannot be downloaded" in epoch["data"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU failure path")
def test_without_cuda_every_section_reports_and_json_still_comes():
    proc, result = _run([sys.executable, str(SCRIPT), "--skip", "mapping,layers,bench_model,epoch,train_cli"])
    assert proc.returncode == 0
    assert result["complete"] is True
    failed = {e["section"] for e in result["errors"]}
    assert {"env", "build", "kernels", "bench_efd"} <= failed
    build_error = next(e["error"] for e in result["errors"] if e["section"] == "build")
    assert "torch.cuda.is_available() is false" in build_error
    assert result["summary"]["correct"] is False


def test_shell_wrapper_prints_json_when_stopped():
    proc, result = _run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"],
                        {"PYTHON": sys.executable, "GPU_CHECK_TIMEOUT": "2"})
    assert proc.returncode in (124, 137)
    assert result["complete"] is False
    assert any("stopped by timeout after 2 s" in e["error"] for e in result["errors"])
