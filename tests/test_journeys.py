"""User journeys: the roads the README and ``--help`` send users down, walked as they are written.

* train -> info -> export -> sim for one- and two-layer checkpoints, every pipeline preset, both
  ``--inputs`` kinds, ``--wrap stream``, with and without ``--board``: every bundle's vectors go
  through one shared Verilator build (each bundle exported with its own ``--prefix``), and two
  bundles also through ``dwn-hw sim`` and ``make -C OUT sim`` exactly as a user runs them;
* synth of a two-layer bundle exported without ``--board`` (the device core is regenerated and
  reports its own latency); the full place-and-route journeys are in the slow set;
* import-torch-dwn -> export;
* ``--force`` on a folder that is not a bundle, and on a bundle;
* the bad-input matrix: every user error ends with one ``error:`` line and exit status 2.

The README's quick start, line by line in a clean shell, is in the slow set (it places and
routes and trains for 20 s).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DWN = [str(VENV_BIN / "dwn-hw")]


def dwn(*args, cwd=None, env=None, timeout=600):
    return subprocess.run(DWN + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def ok(done):
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(home: Path) -> dict:
    """A shell as a new user has it: no venv activated, nothing of ours on PATH."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            # the pip caches of the tools (YoWASP's compiled WebAssembly) are the user's own
            "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two checkpoints trained as the README says (digits, one epoch so the suite stays fast)."""
    base = tmp_path_factory.mktemp("journey")
    paths = {}
    for name, layers in (("one", "60"), ("two", "120,60")):
        path = base / f"{name}.pt"
        ok(dwn("train", "--epochs", "1", "--layers", layers, "--n", "4", "-q", "-o", path, cwd=base))
        paths[name] = path
    return base, paths


def test_info_describes_both_checkpoints(models):
    _, paths = models
    for name, path in paths.items():
        out = ok(dwn("info", path)).stdout
        assert "digits" in out
        assert ("120" in out) == (name == "two")


EXPORTS = [  # (checkpoint, options): one- and two-layer models, every preset, both input kinds, the wrapper
    ("one", ["--pipeline", "none"]),
    ("one", ["--pipeline", "balanced"]),
    ("one", ["--pipeline", "max"]),
    ("one", ["--inputs", "bits"]),
    ("one", ["--wrap", "stream"]),
    ("two", ["--pipeline", "none"]),
    ("two", ["--pipeline", "balanced", "--board", "icebreaker"]),
    ("two", ["--pipeline", "max", "--board", "ulx3s", "--board", "arty_a7"]),
    ("two", ["--inputs", "bits", "--pipeline", "max"]),
]


@pytest.fixture(scope="module")
def bundles(models):
    base, paths = models
    out = []
    for i, (name, opts) in enumerate(EXPORTS):
        folder = base / f"b{i}"
        ok(dwn("export", paths[name], "--target", "verilog", "-o", folder, "--prefix", f"j{i}_", *opts))
        out.append(folder)
    return out


def test_every_exported_bundle_is_bit_exact_in_one_build(bundles, tmp_path):
    from dwn_hw.check.sim import harness_verilog, load_bench, run_units

    bench = load_bench()
    units, sources = [], []
    for i, folder in enumerate(bundles):
        spec, srcs = bench.load_bundle(folder)
        assert spec["expected_from"] == "pytorch"
        meta = json.loads((folder / "bundle.json").read_text())
        units.append({**spec, "ports": f"p{i}_", "name": folder.name, "class_width": meta["class_width"]})
        sources += [s for s in srcs if s not in sources]
    harness = tmp_path / "harness.v"
    harness.write_text(harness_verilog(units))
    result = run_units(units, sources + [harness], "dwn_harness", tmp_path / "build")
    for unit, folder in zip(result["units"], bundles):
        n = json.loads((folder / "bundle.json").read_text())["vectors"]
        assert unit["n"] == n and unit["matched"] == n, (folder, unit)
    assert result["ok"]


def test_the_wrapper_and_the_device_cores_are_in_their_bundles(bundles):
    stream = json.loads((bundles[4] / "bundle.json").read_text())
    assert "rtl/dwn_stream.v" in stream["rtl"] and (bundles[4] / "rtl" / "dwn_stream.v").is_file()
    meta = json.loads((bundles[7] / "bundle.json").read_text())
    assert set(meta["rtl_device"]) == {"ecp5", "xilinx"}
    for family, entry in meta["rtl_device"].items():
        assert (bundles[7] / entry["rtl"]).is_file()
        assert isinstance(entry["latency"], int) and entry["latency"] >= 1


def test_dwn_hw_sim_and_make_sim_as_a_user_runs_them(bundles, tmp_path):
    done = ok(dwn("sim", bundles[1]))
    n = json.loads((bundles[1] / "bundle.json").read_text())["vectors"]
    assert f"{n}/{n}" in done.stdout
    # `make -C OUT sim` from a shell where no venv is activated (the README's quick start)
    done = subprocess.run(["make", "-C", str(bundles[5]), "sim"], capture_output=True, text=True,
                          env=clean_env(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    n = json.loads((bundles[5] / "bundle.json").read_text())["vectors"]
    assert f"{n}/{n}" in done.stdout
    # every tool output went under build/, and make clean takes all of it away
    assert (bundles[5] / "build").is_dir()
    ok(subprocess.run(["make", "-C", str(bundles[5]), "clean"], capture_output=True, text=True))
    assert not (bundles[5] / "build").exists()


def test_synth_regenerates_the_device_core_with_its_own_latency(bundles):
    """A two-layer bundle exported without --board synthesizes for a board (yosys only here)."""
    from dwn_hw import ir as irmod
    from dwn_hw.hdl import build_top

    folder = bundles[5]
    meta = json.loads((folder / "bundle.json").read_text())
    done = ok(dwn("synth", folder, "--board", "icebreaker", "--no-core-pnr", "--no-board-build", "-q"))
    report = json.loads((folder / "synth" / "icebreaker" / "report.json").read_text())
    _, info = build_top(irmod.load(folder / "dwn.ir.json"), inputs=meta["inputs"], pipeline=meta["pipeline"],
                        name=meta["top"], lut_style="ice40")
    assert report["core"]["latency_cycles"] == info["latency"]
    assert f"latency {info['latency']} cycles" in done.stdout


def test_import_torch_dwn_then_export(tmp_path):
    torch = pytest.importorskip("torch")
    from test_freeze_torch_dwn import torch_dwn_state

    sd, theta = torch_dwn_state(3)
    torch.save(sd, tmp_path / "sd.pt")
    np.save(tmp_path / "th.npy", theta)
    ok(dwn("import-torch-dwn", tmp_path / "sd.pt", "--thresholds", tmp_path / "th.npy", "--classes", "3",
           "--input-bits", "8", "-o", tmp_path / "m.pt"))
    ok(dwn("export", tmp_path / "m.pt", "-o", tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "bundle.json").read_text())["classes"] == 3


def test_force_never_replaces_a_folder_that_is_not_a_bundle(models, tmp_path):
    _, paths = models
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    (mine / "sub" / "data.csv").write_text("1,2\n")
    done = dwn("export", paths["one"], "-o", mine, "--force")
    assert done.returncode == 2 and done.stderr.startswith("error:") and len(done.stderr.splitlines()) == 1
    assert (mine / "notes.txt").read_text() == "my notes" and (mine / "sub" / "data.csv").is_file()
    # a bundle is replaced; a file the user put into it survives the replacement
    out = tmp_path / "out"
    ok(dwn("export", paths["one"], "-o", out))
    (out / "my_notes.txt").write_text("keep me")
    ok(dwn("export", paths["two"], "-o", out, "--force"))
    assert (out / "my_notes.txt").read_text() == "keep me"
    assert "120" in (out / "dwn.ir.json").read_text() or json.loads((out / "bundle.json").read_text())
    # -o . --force from inside a folder that is not a bundle: one line, nothing touched
    done = dwn("export", paths["one"], "-o", ".", "--force", cwd=mine)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert (mine / "notes.txt").is_file()


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    (base / "adir").mkdir()
    (base / "empty.npy").write_bytes(b"")
    (base / "th.json").write_text('{"a": 1}')
    (base / "data.csv").write_text("label,a,b\n0,1,2\n1,3,4\n")
    (base / "one_class.csv").write_text("label,a,b\n" + "".join(f"1,{i},{i + 1}\n" for i in range(40)))
    (base / "not_a_model.pt").write_bytes(b"this is not a checkpoint")
    (base / "afile.txt").write_text("x")
    return base


BAD = [  # argv with {b} for the fixture folder; each must end with one error line and exit 2
    "train --dataset csv:{b}/adir -o {b}/m.pt",
    "train --dataset npz:{b}/data.csv -o {b}/m.pt",
    "train --dataset csv:{b}/missing.csv -o {b}/m.pt",
    "train --dataset csv:{b}/one_class.csv -o {b}/m.pt",
    "train --dataset nosuch -o {b}/m.pt",
    "train --layers 10,x -o {b}/m.pt",
    "train --epochs 0 -o {b}/m.pt",
    "train --nosuchoption",
    "info {b}/not_a_model.pt",
    "info {b}/missing.pt",
    "eval {b}/not_a_model.pt",
    "freeze {b}/adir -o {b}/x.json",
    "export {b}/missing.pt -o {b}/o",
    "export {b}/not_a_model.pt -o {b}/o",
    "export {b}/afile.txt -o {b}/o",
    "sim {b}/afile.txt",
    "sim {b}/adir",
    "verify {b}/adir",
    "synth {b}/adir --board icebreaker",
    "synth {b}/adir --board nosuchboard",
    "run {b}/adir --port sim",
    "import-torch-dwn {b}/not_a_model.pt --thresholds {b}/empty.npy --classes 2 -o {b}/i.pt",
    "import-torch-dwn {b}/not_a_model.pt --thresholds {b}/th.json --classes 2 -o {b}/i.pt",
    "export",
]


@pytest.mark.parametrize("argv", BAD)
def test_bad_input_gets_one_error_line_and_exit_2(bad_inputs, argv):
    done = dwn(*shlex.split(argv.format(b=bad_inputs)), cwd=bad_inputs, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "np.float" not in done.stderr and "np.int" not in done.stderr


def quick_start_lines() -> list[str]:
    """The commands of the README's quick start block, as written."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n```\n(.*?)```", text, re.S).group(1)
    return [ln.split("  #")[0].strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_quick_start_uses_only_what_the_repository_gives():
    lines = quick_start_lines()
    assert lines and all(ln.startswith((".venv/bin/dwn-hw ", "make ")) for ln in lines), lines
    assert not any("--formal" in ln for ln in lines), "the quick start must not hide an 11-minute proof"


@pytest.mark.slow
def test_quick_start_runs_as_written_in_a_clean_shell(tmp_path):
    """Each line of the README's quick start, in order, in a shell with nothing activated."""
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    env = clean_env(tmp_path)
    for line in quick_start_lines():
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["bitstream"]


@pytest.mark.slow
@pytest.mark.parametrize("board", ["icebreaker", "ulx3s"])
def test_two_layer_bundle_places_and_routes_on_open_flows(bundles, board):
    folder = bundles[5]
    done = ok(dwn("synth", folder, "--board", board, "-q", timeout=3600))
    report = json.loads((folder / "synth" / board / "report.json").read_text())
    assert report["fits"] and report["fmax_mhz"] and report["bitstream"]
    assert f"latency {report['latency_cycles']} cycles" in done.stdout
