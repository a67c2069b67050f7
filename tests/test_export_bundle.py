"""dwn-hw export from IR files: bundle layout, vectors, lint, atomicity, CLI errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from dwn_hw import export as export_mod
from dwn_hw.errors import DwnHwError
from dwn_hw.export import edge_and_random_inputs, export_bundle
from dwn_hw.check.lint import lint
from dwn_hw.ir import evaluate, grid_range, random_ir, save

FIELDS = ("top", "latency", "in_width", "features", "input_bits", "signed", "classes", "score_width", "inputs",
          "expected_from", "vectors", "pipeline", "dwn_hw_version")


@pytest.fixture(scope="module")
def ir_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "model.json"
    save(random_ir(4, features=6, bits_per_feature=3, input_bits=5, signed=True, layers=[(40, 6), (18, 4)], k=3),
         path)
    return path


@pytest.fixture(scope="module")
def bundle(ir_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "bundle"
    info = export_bundle(ir_file, out, pipeline="balanced", wrap="stream")
    return out, info


def test_layout_and_bundle_json(bundle):
    out, info = bundle
    for rel in ("rtl/dwn_top.v", "rtl/dwn_stream.v", "rtl/lint_waivers.vlt", "dwn.ir.json", "bundle.json",
                "vectors/vectors.npz", "README.md", "tb"):
        assert (out / rel).exists(), rel
    meta = json.loads((out / "bundle.json").read_text())
    assert meta == info
    for field in FIELDS:
        assert field in meta, field
    assert meta["expected_from"] == "ir" and meta["inputs"] == "features" and meta["signed"] is True
    assert meta["in_width"] == 6 * 5 and meta["top"] == "dwn_top" and meta["latency"] >= 1
    assert not list(out.parent.glob(".bundle.*")), "temporary folder left behind"


def test_tb_comes_from_the_shipped_sim_folder(bundle):
    from dwn_hw.resources import data_path

    out, _ = bundle
    shipped = sorted(p.name for p in data_path("sim").iterdir()
                     if p.name not in ("__init__.py", "__pycache__") and not p.name.startswith("."))
    assert sorted(p.name for p in (out / "tb").iterdir()) == shipped
    if (data_path("rtl_templates") / "Makefile.j2").exists():
        assert (out / "Makefile").exists()


def test_vectors_are_edges_and_randoms_with_ir_expectations(bundle, ir_file):
    out, info = bundle
    from dwn_hw.ir import load

    ir = load(ir_file)
    with np.load(out / "vectors" / "vectors.npz") as data:
        q, scores, classes = data["inputs"], data["scores"], data["classes"]
    assert q.dtype == np.int64 and scores.dtype == np.int64 and classes.dtype == np.int64
    assert len(q) == info["vectors"] == len(scores) == len(classes)
    s, c = evaluate(ir, q)
    assert (s == scores).all() and (c == classes).all()
    qmin, qmax = grid_range(ir["encoder"])
    assert (q[0] == qmin).all() and (q[1] == qmax).all()
    th = np.asarray(ir["encoder"]["thresholds"])
    for t in range(th.shape[1]):  # every threshold is probed at t-1, t and t+1
        for d in (-1, 0, 1):
            assert any((row == np.clip(th[:, t] + d, qmin, qmax)).all() for row in q)


def test_bundle_rtl_is_lint_clean_with_its_waiver_file(bundle):
    out, info = bundle
    rtl = [out / "rtl" / "dwn_top.v"]
    assert lint(rtl, info["top"]) == []
    assert lint([out / "rtl" / "lint_waivers.vlt"] + rtl, info["top"], wall=True) == []
    both = [out / "rtl" / "dwn_stream.v"] + rtl
    assert lint(both, info["stream"]["top"]) == []


def test_readme_describes_ports_and_files(bundle):
    out, info = bundle
    text = (out / "README.md").read_text()
    for needle in ("rtl/dwn_top.v", "bundle.json", "vectors/vectors.npz", "out_scores", "in_data", "rtl/dwn_stream.v",
                   f"latency {info['latency']}"):
        assert needle in text, needle


def test_existing_out_is_refused_without_force(bundle, ir_file):
    out, _ = bundle
    with pytest.raises(DwnHwError, match="already exists"):
        export_bundle(ir_file, out)


def test_force_replaces_and_bits_inputs(ir_file, tmp_path):
    out = tmp_path / "b"
    export_bundle(ir_file, out, pipeline="none")
    info = export_bundle(ir_file, out, inputs="bits", pipeline="max", force=True, prefix="x_")
    assert info["inputs"] == "bits" and info["top"] == "x_dwn_top" and info["pipeline"].startswith("enc")
    with np.load(out / "vectors" / "vectors.npz") as data:
        bits, scores = data["inputs"], data["scores"]
    assert bits.dtype == np.uint8 and bits.shape[1] == info["in_width"] == 6 * 3
    from dwn_hw.ir import evaluate_bits, load

    assert (evaluate_bits(load(ir_file), bits)[0] == scores).all()


def test_interrupted_export_leaves_nothing(ir_file, tmp_path, monkeypatch):
    def broken(dest):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_mod, "_copy_bench", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_bundle(ir_file, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_edge_inputs_without_encoder():
    ir = random_ir(1, features=5, bits_per_feature=2, layers=[(8, 3)], k=2, encoder=False)
    bits = edge_and_random_inputs(ir, count=10)
    assert bits.dtype == np.uint8 and bits.shape == (12, 10)
    assert (bits[0] == 0).all() and (bits[1] == 1).all()


def test_recorded_test_set_is_used(tmp_path):
    ir = random_ir(2, features=4, bits_per_feature=2, input_bits=3, layers=[(10, 3)], k=2)
    q = np.random.default_rng(0).integers(0, 8, size=(17, 4))
    np.savez(tmp_path / "test.npz", inputs=q)
    ir["meta"]["test_set"] = {"npz": "test.npz"}
    save(ir, tmp_path / "m.json")
    info = export_bundle(tmp_path / "m.json", tmp_path / "b", pipeline="none")
    assert info["vectors"] == 17
    with np.load(tmp_path / "b" / "vectors" / "vectors.npz") as data:
        assert (data["inputs"] == q).all()


def _cli(*args):
    code = "import sys; from dwn_hw.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_cli_export_and_one_line_errors(ir_file, tmp_path):
    ok = _cli("export", str(ir_file), "--target", "verilog", "-o", str(tmp_path / "b"),
              "--pipeline", "enc,l0,pop=2,arg=1")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "b" / "bundle.json").read_text())["pipeline"] == "enc,l0,pop=2,arg=1"
    bad = _cli("export", str(ir_file), "-o", str(tmp_path / "c"), "--pipeline", "enc,bogus")
    assert bad.returncode == 2 and "error: pipeline token 'bogus'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_missing_model_is_named(tmp_path):
    with pytest.raises(DwnHwError, match="nope.json"):
        export_bundle(tmp_path / "nope.json", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_export_of_an_ir_never_imports_torch(ir_file, tmp_path):
    code = (f"import sys; import dwn_hw.hdl, dwn_hw.hdl.stream, dwn_hw.hdl.estimate; "
            f"from dwn_hw.export import export_bundle; "
            f"export_bundle({str(ir_file)!r}, {str(tmp_path / 'b')!r}, pipeline='none', wrap='stream'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_board_files_and_device_rtl(ir_file, tmp_path):
    boards = pytest.importorskip("dwn_hw.synth.boards")
    xilinx = next(b for b in boards.list_boards() if boards.load_board(b).family == "xilinx")
    ice40 = next(b for b in boards.list_boards() if boards.load_board(b).family == "ice40")
    info = export_bundle(ir_file, tmp_path / "b", pipeline="none", boards=[xilinx, ice40])
    for name in (xilinx, ice40):
        assert (tmp_path / "b" / "synth" / name).is_dir() and any((tmp_path / "b" / "synth" / name).iterdir())
        assert f"synth/{name}/" in (tmp_path / "b" / "README.md").read_text()
    # the model has n = 6: LUT6 primitives for the Xilinx board, SB_LUT4 trees for iCE40
    assert {f: c["rtl"] for f, c in info["rtl_device"].items()} == {"ice40": "rtl/ice40/dwn_top.v",
                                                                    "xilinx": "rtl/xilinx/dwn_top.v"}
    assert {f: c["lut_style"] for f, c in info["rtl_device"].items()} == {"ice40": "ice40", "xilinx": "xilinx"}
    device = (tmp_path / "b" / "rtl" / "xilinx" / "dwn_top.v").read_text()
    portable = (tmp_path / "b" / "rtl" / "dwn_top.v").read_text()
    assert "LUT6 #(.INIT(" in device and "LUT6" not in portable

    def module_line(text):
        return next(line for line in text.splitlines() if line.startswith("module "))

    assert module_line(device) == module_line(portable)  # same top module header
    with pytest.raises(DwnHwError, match="nosuchboard"):
        export_bundle(ir_file, tmp_path / "c", boards=["nosuchboard"])
    assert info["top"] == "dwn_top"
