"""Formal equivalence against a reference built from the IR, and LUT readback from the netlist.

Each proof must be able to fail: a design built from an IR with one table bit flipped, or
checked with the wrong latency, is refused with a counterexample.
"""
from __future__ import annotations

import ast
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dwn_hw import ir as I
from dwn_hw.check.formal import prove
from dwn_hw.check.readback import lut_readback
from dwn_hw.check.reference import fold_constants, live_indices, reference_verilog

hdl = pytest.importorskip("dwn_hw.hdl")
ROOT = Path(__file__).resolve().parent.parent
DWN = [sys.executable, "-m", "dwn_hw.cli"]


def flip(ir: dict, layer: int, lut: int, address: int) -> dict:
    bad = copy.deepcopy(ir)
    text = bad["layers"][layer]["tables"][lut]
    bad["layers"][layer]["tables"][lut] = format(int(text, 16) ^ (1 << address), f"0{len(text)}x")
    return I.validate(bad)


def design(tmp_path: Path, ir: dict, inputs: str, pipeline: str, tag: str):
    text, info = hdl.build_top(ir, inputs=inputs, pipeline=pipeline)
    path = tmp_path / f"{tag}.v"
    path.write_text(text)
    return path, info


def observable_ir() -> dict:
    """One layer over raw bits with distinct inputs per LUT: every table bit reaches a score."""
    ir = I.random_ir(5, features=12, bits_per_feature=1, layers=[(9, 4)], k=3, encoder=False)
    for j, row in enumerate(ir["layers"][0]["mapping"]):
        assert len(set(row)) == len(row), "the test needs distinct inputs per LUT"
    return ir


@pytest.mark.parametrize("inputs,pipeline,kw", [
    ("features", "none", dict(signed=True, input_bits=4)),
    ("features", "balanced", dict(permute=True, mixed_n=True)),
    ("features", "max", dict(layers=[(20, 6), (14, 3), (6, 2)], k=3)),
    ("bits", "enc,l0,pop=1,arg=1", dict(permute=True)),
])
def test_generated_design_is_proven_equal_to_the_ir(tmp_path, inputs, pipeline, kw):
    params = dict(features=5, bits_per_feature=3, input_bits=3, layers=[(18, 4), (8, 3)], k=4)
    params.update(kw)
    ir = I.random_ir(31, **params)
    path, info = design(tmp_path, ir, inputs, pipeline, "gen")
    result = prove(ir, [path], info["top"], inputs, info["latency"], tmp_path / "proof")
    assert result["proven"], result["counterexample"]
    assert result["steps"] == info["latency"] + 1


@pytest.mark.parametrize("pipeline", ["none", "balanced"])
def test_one_flipped_table_bit_breaks_the_proof(tmp_path, pipeline):
    ir = observable_ir()
    path, info = design(tmp_path, flip(ir, 0, 4, 11), "bits", pipeline, "bad")
    result = prove(ir, [path], info["top"], "bits", info["latency"], tmp_path / "proof")
    assert not result["proven"]
    assert "model found" in result["counterexample"] and "in_data" in result["counterexample"]


def test_a_wrong_latency_breaks_the_proof(tmp_path):
    ir = observable_ir()
    path, info = design(tmp_path, ir, "bits", "balanced", "gen")
    assert prove(ir, [path], info["top"], "bits", info["latency"], tmp_path / "ok")["proven"]
    assert not prove(ir, [path], info["top"], "bits", info["latency"] + 1, tmp_path / "late")["proven"]


def test_reference_against_itself_with_a_flipped_bit(tmp_path):
    """The miter sees a difference between two references too (the proof is not vacuous)."""
    ir = observable_ir()
    (tmp_path / "r.v").write_text(reference_verilog(flip(ir, 0, 2, 5), "bits", 2, "other"))
    assert not prove(ir, [tmp_path / "r.v"], "other", "bits", 2, tmp_path / "p")["proven"]
    (tmp_path / "s.v").write_text(reference_verilog(ir, "bits", 2, "same"))
    assert prove(ir, [tmp_path / "s.v"], "same", "bits", 2, tmp_path / "q")["proven"]


def test_lut_readback_reads_every_table_and_finds_a_flipped_bit(tmp_path):
    def flippable(ir):
        """Layer-1 LUTs of 3+ inputs that read no constant (so address 5 means the same after folding)."""
        folded = fold_constants(ir, "features")
        return [j for j in range(10) if len(ir["layers"][1]["mapping"][j]) >= 3
                and folded["layers"][1]["mapping"][j] == ir["layers"][1]["mapping"][j]]

    ir = next(ir for ir in (I.random_ir(seed, features=6, bits_per_feature=4, input_bits=4,
                                        layers=[(24, 6), (10, 5)], k=2, mixed_n=True) for seed in range(8, 60))
              if flippable(ir))
    path, info = design(tmp_path, ir, "features", "balanced", "gen")
    good = lut_readback(ir, [path], info["top"], tmp_path / "good")
    assert good["problems"] == [] and good["luts"] > 0
    # generators fold constant inputs (off-grid thresholds, constant LUTs) into the tables
    folded = fold_constants(ir, "features")
    assert good["addresses"] == sum(1 << len(folded["layers"][i]["mapping"][j])
                                    for i, live in enumerate(live_indices(folded)[1]) for j in live)
    j = flippable(ir)[0]
    path, info = design(tmp_path, flip(ir, 1, j, 5), "features", "balanced", "bad")
    bad = lut_readback(ir, [path], info["top"], tmp_path / "bad")
    assert bad["problems"] == [f"layer 1 LUT {j}: netlist gives {1 - int(I.layer_tables(ir['layers'][1])[j][5])} "
                               f"at address 5, the IR {int(I.layer_tables(ir['layers'][1])[j][5])}"]


@pytest.mark.parametrize("module", ["verify", "reference", "formal", "readback"])
def test_verify_never_imports_the_generator(module):
    tree = ast.parse((ROOT / "dwn_hw" / "check" / f"{module}.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.startswith("dwn_hw.hdl") or m == "torch"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    pytest.importorskip("dwn_hw.export")
    base = tmp_path_factory.mktemp("vb")
    I.save(I.random_ir(12, features=6, bits_per_feature=3, input_bits=4, layers=[(24, 5), (9, 3)], k=3),
           base / "m.json")
    done = subprocess.run(DWN + ["export", str(base / "m.json"), "-o", str(base / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return base / "out"


def test_dwn_hw_verify_on_a_bundle(bundle):
    done = subprocess.run(DWN + ["verify", "--formal", "--luts", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "formal: proven equal" in done.stdout and "LUT readback:" in done.stdout


def test_dwn_hw_verify_fails_on_a_tampered_bundle(bundle, tmp_path):
    ir = I.load(bundle / "dwn.ir.json")
    layer, lut = 1, 0
    (tmp_path / "b").mkdir()
    for name in ("bundle.json", "rtl"):
        src = bundle / name
        dst = tmp_path / "b" / name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.write_bytes(src.read_bytes())
    # the bundle's IR says one thing, its Verilog another
    row = ir["layers"][layer]["mapping"][lut]
    I.save(flip(ir, layer, lut, (1 << len(row)) - 1), tmp_path / "b" / "dwn.ir.json")
    # no flags: the fast LUT read-back only, said in one line
    done = subprocess.run(DWN + ["verify", str(tmp_path / "b")], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "LUT readback:" in done.stdout and f"layer {layer} LUT {lut}" in done.stdout
    assert "formal" not in done.stdout
    plan = [line for line in done.stderr.splitlines() if line.startswith("verify: ")]
    assert len(plan) == 1 and "LUT read-back" in plan[0] and "--formal" in plan[0], done.stderr
    done = subprocess.run(DWN + ["verify", "--formal", str(tmp_path / "b")], capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "formal: NOT equal" in done.stdout and "LUT readback" not in done.stdout
    assert "equivalence proof" in done.stderr


def test_verify_on_a_file_or_a_plain_folder(tmp_path):
    (tmp_path / "f.json").write_text("{}")
    (tmp_path / "plain").mkdir()
    for target, needle in ((tmp_path / "f.json", "is not a folder"), (tmp_path / "plain", "not an export bundle")):
        done = subprocess.run(DWN + ["verify", str(target)], capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and needle in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("breaker,needle", [
    (lambda p: (p / "dwn.ir.json").unlink(), "dwn.ir.json is missing"),
    (lambda p: (p / "bundle.json").write_text("[1, 2"), "not valid JSON"),
    (lambda p: (p / "rtl" / "dwn_top.v").unlink(), "is missing; re-export"),
])
def test_verify_bad_bundles(bundle, tmp_path, breaker, needle):
    b = tmp_path / "b"
    shutil.copytree(bundle, b, ignore=shutil.ignore_patterns("build"))
    breaker(b)
    done = subprocess.run(DWN + ["verify", str(b)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and needle in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_digits_shaped_model_is_proven_and_read_back(tmp_path):
    """The size of the default digits model (64 features x 3 bits, 500 LUTs n=4, 10 classes of 50)."""
    ir = I.random_ir(11, features=64, bits_per_feature=3, input_bits=5, layers=[(500, 4)], k=10)
    path, info = design(tmp_path, ir, "features", "balanced", "gen")
    assert lut_readback(ir, [path], info["top"], tmp_path / "luts")["problems"] == []
    result = prove(ir, [path], info["top"], "features", info["latency"], tmp_path / "proof")
    assert result["proven"] and result["method"].startswith("split"), result


def test_fold_constants_keeps_the_function():
    """Folding constant inputs into the tables changes no score on any input."""
    for seed in range(6):
        ir = I.random_ir(seed, features=5, bits_per_feature=4, input_bits=3, layers=[(30, 4), (12, 3)], k=3,
                         mixed_n=True)
        q = np.random.default_rng(seed).integers(0, 8, size=(400, 5))
        want = I.evaluate(ir, q)
        got = I.evaluate(I.validate(fold_constants(ir, "features")), q)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
