"""`dwn-hw export --force` replaces only a marked bundle, atomically, and never deletes a user's file."""
import json
import os
import subprocess
import sys

import pytest

from dwn_hw import export as export_mod
from dwn_hw.bundle import FORMAT, is_bundle, read_bundle
from dwn_hw.errors import DwnHwError
from dwn_hw.export import export_bundle
from dwn_hw.ir import random_ir, save


@pytest.fixture(scope="module")
def ir_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("f") / "model.json"
    save(random_ir(8, features=4, bits_per_feature=2, input_bits=3, layers=[(12, 3)], k=2), path)
    return path


def cli(*args, cwd=None):
    code = "import sys; from dwn_hw.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd)


def tree(root):
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def one_error_line(done, needle):
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr


def test_a_folder_that_is_not_a_bundle_is_refused_and_untouched(ir_file, tmp_path):
    notes = tmp_path / "mine"
    (notes / "sub").mkdir(parents=True)
    (notes / "notes.txt").write_text("my notes")
    (notes / "sub" / "data.csv").write_text("1,2\n")
    before = tree(notes)
    done = cli("export", str(ir_file), "-o", str(notes), "--force")
    one_error_line(done, "is not a dwn-hw bundle")
    assert str(notes) in done.stderr
    assert tree(notes) == before
    # without --force the line says why --force would not help either
    one_error_line(cli("export", str(ir_file), "-o", str(notes)), "not a dwn-hw bundle")


def test_a_file_is_refused(ir_file, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    one_error_line(cli("export", str(ir_file), "-o", str(f), "--force"), "is a file")
    assert f.read_text() == "keep me"


def test_a_bundle_of_an_older_version_is_refused(ir_file, tmp_path):
    out = tmp_path / "old"
    export_bundle(ir_file, out)
    meta = json.loads((out / "bundle.json").read_text())
    del meta["format"], meta["files"]
    (out / "bundle.json").write_text(json.dumps(meta))
    before = tree(out)
    one_error_line(cli("export", str(ir_file), "-o", str(out), "--force"), "delete the folder yourself")
    assert tree(out) == before


def test_force_keeps_every_file_the_bundle_did_not_write(ir_file, tmp_path):
    out = tmp_path / "b"
    first = export_bundle(ir_file, out, pipeline="none")
    assert first["format"] == FORMAT and is_bundle(out) and "bundle.json" in first["files"]
    assert all((out / f).is_file() for f in first["files"])
    (out / "notes.md").write_text("results of my run")
    (out / "rtl" / "my_top.v").write_text("module my_top; endmodule\n")
    (out / "mine" / "deep").mkdir(parents=True)
    (out / "mine" / "deep" / "x.bin").write_bytes(b"\x00\x01")
    (out / "empty").mkdir()
    (out / "build" / "sim").mkdir(parents=True)          # a tool output: may go
    (out / "build" / "sim" / "big.o").write_bytes(b"0" * 100)
    notes = []
    second = export_bundle(ir_file, out, pipeline="max", force=True, wrap="stream", notify=notes.append)
    assert read_bundle(out) == second and second["pipeline"] != first["pipeline"]
    assert (out / "rtl" / "dwn_stream.v").is_file()
    assert (out / "notes.md").read_text() == "results of my run"
    assert (out / "rtl" / "my_top.v").read_text() == "module my_top; endmodule\n"
    assert (out / "mine" / "deep" / "x.bin").read_bytes() == b"\x00\x01"
    assert (out / "empty").is_dir()
    assert not (out / "build").exists()
    assert len(notes) == 1 and "kept 3 file(s)" in notes[0] and "notes.md" in notes[0]
    # carried files are still the user's: not in the new bundle's list, so the next --force keeps them too
    assert "notes.md" not in second["files"]
    export_bundle(ir_file, out, pipeline="none", force=True, notify=notes.append)
    assert (out / "notes.md").read_text() == "results of my run"
    assert not (out / "rtl" / "dwn_stream.v").exists()       # the bundle's own file went with it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_a_users_file_where_the_new_bundle_writes_is_refused(ir_file, tmp_path):
    out = tmp_path / "b"
    export_bundle(ir_file, out, pipeline="none")
    (out / "rtl" / "dwn_stream.v").write_text("my own wrapper")
    before = tree(out)
    with pytest.raises(DwnHwError, match="dwn_stream.v"):
        export_bundle(ir_file, out, force=True, wrap="stream")
    assert tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_old_bundle_stays_until_the_new_one_is_complete(ir_file, tmp_path, monkeypatch):
    out = tmp_path / "b"
    export_bundle(ir_file, out, pipeline="none")
    (out / "notes.md").write_text("mine")
    before = tree(out)

    def broken(dest):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_mod, "_copy_bench", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_bundle(ir_file, out, pipeline="max", force=True)
    assert tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_dot_and_odd_paths(ir_file, tmp_path):
    out = tmp_path / "b"
    assert cli("export", str(ir_file), "-o", str(out) + "/").returncode == 0     # dir/ works
    # -o . from inside the bundle: refused in one line, nothing changed
    before = tree(out)
    one_error_line(cli("export", str(ir_file), "-o", ".", "--force", cwd=out), "current folder")
    (out / "sub").mkdir()
    one_error_line(cli("export", str(ir_file), "-o", "..", "--force", cwd=out / "sub"), "current folder")
    (out / "sub").rmdir()
    assert tree(out) == before
    # a relative path with .. resolves; a symlink to a bundle replaces the bundle it points at
    (tmp_path / "w").mkdir()
    done = cli("export", str(ir_file), "-o", "../b", "--force", "--pipeline", "max", cwd=tmp_path / "w")
    assert done.returncode == 0, done.stderr
    assert read_bundle(out)["pipeline"] != json.loads(before["bundle.json"])["pipeline"]
    os.symlink(out, tmp_path / "link")
    done = cli("export", str(ir_file), "-o", str(tmp_path / "link"), "--force", "--pipeline", "none")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link").is_symlink() and read_bundle(tmp_path / "link") == read_bundle(out)
    # -o . in a folder that is not a bundle
    one_error_line(cli("export", str(ir_file), "-o", ".", "--force", cwd=tmp_path / "w"), "not a dwn-hw bundle")
